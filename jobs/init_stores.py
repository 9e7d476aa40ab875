"""Prepare every store before the app (or several of its processes) starts.

    python -m jobs.init_stores

Creates DATA_DIR, the MLflow schema and experiment (once, from one process: SQLite schema
creation races when processes do it together), the user and audit tables, the development
secret key, and the first admin when there are no users (its password printed once).
Ends with one JSON line; exit 0 on success, 3 on a configuration or store error.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from core.config import load_settings
from core.errors import StudioError

EXIT_OK, EXIT_CONFIG = 0, 3


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m jobs.init_stores", description=__doc__.split("\n\n")[0]).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.jax_cache_dir.mkdir(parents=True, exist_ok=True)
        from core.audit import AuditLog
        from core.auth import UserStore, resolve_secret_key
        from core.registry import Registry
        from jobs.seed_user import first_admin

        experiment_id = Registry(settings).ensure_store()
        resolve_secret_key(settings)
        store = UserStore(settings.database_url)
        AuditLog(settings.database_url)  # creates its table
        admin = first_admin(store)
    except StudioError as exc:
        print(json.dumps({"job": "init_stores", "ok": False, "error": str(exc)}), flush=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    summary = {"job": "init_stores", "ok": True, "experiment_id": experiment_id, "first_admin": admin["action"]}
    print(json.dumps(summary, sort_keys=True), flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
