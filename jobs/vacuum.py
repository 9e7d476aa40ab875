"""Store-wide pruning for a cron: every registered model keeps its newest --retain runs
(plus aliased versions and the newest passing one); runs that back no registered version
go once older than --max-age-days; then mlflow gc, and optionally VACUUM of SQLite.

Prints ONE JSON line on stdout (deleted runs/versions/logged models, bytes before and
after, seconds, errors); everything else (MLflow and gc chatter) goes to stderr.
Exit 0 on success, 1 on any failure, so the scheduler can alert.

    python -m jobs.vacuum [--retain N] [--max-age-days D] [--dry-run] [--vacuum-db]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from typing import Sequence

from core.errors import StudioError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.vacuum",
        description=(
            "Prune the MLflow store: keep the newest N runs per registered model, every "
            "aliased version (champion ...) and the newest passing version; delete runs "
            "that back no registered version once older than the age limit; purge them "
            "with mlflow gc. Prints one JSON line; exit 0 ok, 1 on any failure."
        ),
    )
    parser.add_argument("--retain", type=int, default=None, metavar="N",
                        help="runs kept per model (default: RETAIN_RUNS_PER_MODEL, 5)")
    parser.add_argument("--max-age-days", type=float, default=None, metavar="D",
                        help="delete runs backing no registered version once older than D days (default 7)")
    parser.add_argument("--dry-run", action="store_true", help="report what would go; delete nothing")
    parser.add_argument("--vacuum-db", action="store_true",
                        help="VACUUM a SQLite tracking store afterwards (SQLite never shrinks by itself)")
    parser.add_argument(
        "--backend-store-uri", default=os.environ.get("MLFLOW_BACKEND_STORE_URI"), metavar="URI",
        help="with an http(s) MLFLOW_TRACKING_URI: the server's database (postgresql://...), so gc can purge "
             "the rows too (default: $MLFLOW_BACKEND_STORE_URI; without it only artifacts are freed)",
    )
    return parser


def run(args: argparse.Namespace) -> tuple[int, dict[str, object]]:
    """Prune and return (exit code, summary dict). Never raises for store trouble."""
    started = time.perf_counter()
    try:
        from core.config import get_settings
        from core.pruning import prune_store

        settings = get_settings()
        logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        db = settings.sqlite_path()
        if db is not None and not db.is_file():
            # Opening it would create an empty store and "succeed" at pruning nothing: the
            # classic cron mistake on Railway, where the volume belongs to the app service.
            return 1, {"ok": False, "seconds": round(time.perf_counter() - started, 3),
                       "error": f"no MLflow store at {db}: is the volume mounted in this service? "
                                "(a Railway volume attaches to one service only)"}
        report = prune_store(settings, retain=args.retain, max_age_days=args.max_age_days,
                             dry_run=args.dry_run, vacuum_db=args.vacuum_db,
                             backend_store_uri=args.backend_store_uri)
    except StudioError as exc:
        return 1, {"ok": False, "error": str(exc), "seconds": round(time.perf_counter() - started, 3)}
    except Exception as exc:  # noqa: BLE001 - a cron wants a line and an exit code, not a traceback
        logging.getLogger("jobs.vacuum").exception("vacuum failed")
        return 1, {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                   "seconds": round(time.perf_counter() - started, 3)}
    summary = report.summary()
    for key in ("kept", "deleted_version_ids", "deleted_run_ids", "deleted_logged_model_ids"):
        summary.pop(key, None)  # ids stay in the log; the line stays one short line
    return (0 if report.ok else 1), summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0; a usage error is a failure like any other
        if not exc.code:
            return 0
        print(json.dumps({"ok": False, "error": "bad arguments (see --help)"}))
        return 1
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # mlflow gc echoes one line per object
        code, summary = run(args)
    stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
