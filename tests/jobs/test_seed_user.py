"""jobs.seed_user: create, idempotent update, first admin, bad input, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.auth import UserStore
from jobs import seed_user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return tmp_path


def _run(capsys, *argv: str) -> tuple[int, dict, str]:
    code = seed_user.main(list(argv))
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]), out


def _store(tmp_path: Path) -> UserStore:
    return UserStore(f"sqlite:///{tmp_path}/app.db", bcrypt_rounds=4)


def test_create_from_env_then_idempotent(env, capsys, monkeypatch):
    monkeypatch.setenv("NEW_PW", "a good password")
    code, summary, out = _run(capsys, "--username", "Nurse1", "--role", "clinician", "--name", "Nurse One", "--password-env", "NEW_PW")
    assert code == 0 and summary["action"] == "created" and summary["password"] == "env"
    assert "a good password" not in out
    store = _store(env)
    user = store.get("nurse1")
    assert user.role == "clinician" and user.name == "Nurse One"
    assert store.verify_password("nurse1", "a good password")
    # the same command again changes nothing (and keeps sessions alive)
    code, summary, _ = _run(capsys, "--username", "Nurse1", "--role", "clinician", "--name", "Nurse One", "--password-env", "NEW_PW")
    assert code == 0 and summary["action"] == "unchanged"
    assert store.get("nurse1").sessions_valid_after is None
    # a role change updates, and keeps the password
    code, summary, _ = _run(capsys, "--username", "nurse1", "--role", "analyst")
    assert summary["action"] == "updated" and summary["changed"] == ["role"] and summary["password"] == "kept"
    assert store.get("nurse1").role == "analyst" and store.verify_password("nurse1", "a good password")


def test_generated_password_printed_once(env, capsys):
    code, summary, out = _run(capsys, "--username", "doc", "--role", "analyst")
    assert code == 0 and summary["password"] == "generated"
    line = next(l for l in out.splitlines() if l.startswith("Generated password"))
    password = line.rsplit(": ", 1)[1]
    assert _store(env).verify_password("doc", password)
    assert password not in out.strip().splitlines()[-1]
    # re-running does not print (or change) a password
    code, summary, out = _run(capsys, "--username", "doc", "--role", "analyst")
    assert summary["action"] == "unchanged" and "Generated password" not in out
    assert _store(env).verify_password("doc", password)


def test_first_admin_only_once(env, capsys):
    code, summary, out = _run(capsys, "--first-admin")
    assert code == 0 and summary["action"] == "created" and summary["username"] == "admin"
    password = next(l for l in out.splitlines() if l.startswith("Generated password")).rsplit(": ", 1)[1]
    assert _store(env).verify_password("admin", password)
    assert _store(env).get("admin").role == "admin"
    code, summary, out = _run(capsys, "--first-admin")
    assert code == 0 and summary == {"job": "seed_user", "action": "skipped", "reason": "users exist", "users": 1}
    assert "password" not in out.lower()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--username", "", "--role", "admin"], "Username"),
        (["--username", "x" * 500, "--role", "admin"], "too long"),
        (["--username", "ok", "--role", "admin", "--password-env", "MISSING_VAR_XYZ"], "MISSING_VAR_XYZ"),
        (["--username", "ok", "--role", "admin", "--password-env", "LONG_PW"], "72 bytes"),
        (["--username", "ok", "--role", "admin", "--email", "nope"], "Email"),
        (["--role", "admin"], "required"),
    ],
)
def test_bad_input_exit_2_and_nothing_stored(env, capsys, monkeypatch, argv, fragment):
    monkeypatch.setenv("LONG_PW", "p" * 73)
    code, summary, _ = _run(capsys, *argv)
    assert code == 2 and summary["action"] == "error" and fragment in summary["error"]
    assert _store(env).count() == 0


def test_unknown_role_rejected_by_argparse(env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        seed_user.main(["--username", "u", "--role", "superuser"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_malformed_database_url_exit_3(env, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    code, summary, _ = _run(capsys, "--first-admin")
    assert code == 3 and "DATABASE_URL" in summary["error"]


def test_runs_as_a_module(env):
    run_env = {**os.environ, "SEED_PW": "module password"}
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.seed_user", "--username", "m", "--role", "clinician", "--password-env", "SEED_PW"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["action"] == "created"
    assert _store(env).verify_password("m", "module password")


def test_password_prompt_on_a_terminal(env, capsys, monkeypatch):
    answers = iter(["typed password 1", "typed password 1", "one", "new password 22", "new password 33"])
    monkeypatch.setattr(seed_user.getpass, "getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(seed_user.sys.stdin, "isatty", lambda: True)
    code, summary, out = _run(capsys, "--username", "tty", "--role", "analyst")
    assert code == 0 and summary["password"] == "prompt" and "typed password 1" not in out
    assert _store(env).verify_password("tty", "typed password 1")
    # a too-short entry, then two entries that differ: refused, nothing changes
    code, summary, _ = _run(capsys, "--username", "tty", "--role", "analyst", "--reset-password")
    assert code == 2 and "too short" in summary["error"].lower()
    code, summary, _ = _run(capsys, "--username", "tty", "--role", "analyst", "--reset-password")
    assert code == 2 and "differ" in summary["error"]
    assert _store(env).verify_password("tty", "typed password 1")
