"""Create or update a user, or seed the first admin.

    python -m jobs.seed_user --username U --role R [--name N] [--email E] [--password-env VAR]
    python -m jobs.seed_user --first-admin

The password comes from the environment variable named by --password-env, else a prompt
(when stdin is a terminal), else it is generated and printed once. Re-running with the
same arguments changes nothing: an existing user keeps its password unless one is given
(or --reset-password). --first-admin creates user `admin` only while the store is empty
and prints its password once; otherwise it prints nothing secret.

Ends with one JSON line (never containing a password). Exit codes: 0 done, 2 bad input,
3 configuration or database error, 1 unexpected failure.
"""
from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from typing import Sequence

from core.auth import ROLES, UserExists, UserStore, generate_password, normalize_username, validate_password
from core.config import load_settings
from core.errors import ConfigError, InvalidInput, StudioError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CONFIG = 0, 1, 2, 3
FIRST_ADMIN = "admin"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs.seed_user", description=__doc__.split("\n\n")[0])
    p.add_argument("--username", help="login name (letters, digits, . _ - @; stored lower-case)")
    p.add_argument("--role", choices=ROLES, help="admin, clinician or analyst")
    p.add_argument("--name", help="display name (default: the username)")
    p.add_argument("--email", help="email address (optional)")
    p.add_argument("--password-env", metavar="VAR", help="name of an environment variable holding the password")
    p.add_argument("--reset-password", action="store_true", help="set a new password for an existing user (prompted or generated)")
    p.add_argument("--first-admin", action="store_true", help="create user 'admin' if there are no users yet; else do nothing")
    return p


def _emit(summary: dict[str, object]) -> None:
    print(json.dumps({"job": "seed_user", **summary}, sort_keys=True), flush=True)


def _password_from(args: argparse.Namespace, *, needed: bool) -> tuple[str | None, str]:
    """(password, source). source: env | prompt | generated | kept."""
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise InvalidInput(f"Environment variable {args.password_env} is unset or empty.", field="password")
        return validate_password(value), "env"
    if not needed:
        return None, "kept"
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        validate_password(first)
        if getpass.getpass("Repeat password: ") != first:
            raise InvalidInput("The two passwords differ.", field="password")
        return first, "prompt"
    return generate_password(), "generated"


def _print_once(username: str, password: str) -> None:
    print(f"Generated password for user '{username}': {password}", flush=True)
    print("It is shown only this once: store it now, then change it.", flush=True)


def first_admin(store: UserStore) -> dict[str, object]:
    count = store.count()
    if count:
        return {"action": "skipped", "reason": "users exist", "users": count}
    password = generate_password()
    try:
        store.create_user(FIRST_ADMIN, password, "admin", name="Administrator")
    except UserExists:  # another replica won the race
        return {"action": "skipped", "reason": "users exist", "users": store.count()}
    _print_once(FIRST_ADMIN, password)
    return {"action": "created", "username": FIRST_ADMIN, "role": "admin", "password": "generated"}


def seed(store: UserStore, args: argparse.Namespace) -> dict[str, object]:
    if args.username is None or not args.role:
        raise InvalidInput("--username and --role are required (or use --first-admin).", field="username")
    username = normalize_username(args.username)
    existing = store.get(username)
    if existing is None:
        password, source = _password_from(args, needed=True)
        assert password is not None
        user = store.create_user(username, password, args.role, name=args.name, email=args.email)
        if source == "generated":
            _print_once(username, password)
        return {"action": "created", "username": user.username, "role": user.role, "password": source}
    password, source = _password_from(args, needed=args.reset_password)
    changed = []
    if args.role != existing.role:
        store.set_role(username, args.role)
        changed.append("role")
    if (args.name is not None and args.name.strip() != existing.name) or (args.email is not None and (args.email.strip() or None) != existing.email):
        store.update_details(username, name=args.name, email=args.email)
        changed.append("details")
    if password is not None and (args.reset_password or not store.verify_password(username, password)):
        store.reset_password(username, password)
        changed.append("password")
        if source == "generated":
            _print_once(username, password)
    user = store.get(username)
    assert user is not None
    return {
        "action": "updated" if changed else "unchanged",
        "changed": changed,
        "username": user.username,
        "role": user.role,
        "disabled": user.disabled,
        "password": source if "password" in changed else "kept",
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        store = UserStore(settings.database_url)
        summary = first_admin(store) if args.first_admin else seed(store, args)
    except StudioError as exc:  # bad input, auth refusals (exit 2) and configuration (exit 3)
        _emit({"action": "error", "error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - a cron/CLI wants an exit code, not a traceback
        _emit({"action": "error", "error": type(exc).__name__})
        print(f"error: unexpected {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILED
    _emit(summary)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
