"""Train models, register them and move `champion` where the quality gate passes.

    python -m jobs.train --all                 # every model (the default)
    python -m jobs.train --model breast_cancer_bayes
    python -m jobs.train --all --if-missing    # only models without a loadable champion

Prints ONE JSON line on stdout (logs go to stderr). Exit codes: 0 every requested model
trained and passed (or was skipped), 1 a training failed, 2 bad arguments or settings,
3 a training was rejected by the quality gate (champion unchanged).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
import time
from typing import Any, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3
log = logging.getLogger("jobs.train")


def _parser(model_names: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.train",
        description="Train models into the MLflow registry (settings from the environment / .env).",
        epilog="Exit codes: 0 ok, 1 a training failed, 2 bad arguments or settings, 3 rejected by the quality gate.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", action="append", choices=list(model_names), metavar="NAME",
                       help=f"model to train (repeatable): {', '.join(model_names)}")
    which.add_argument("--all", action="store_true", help="train every model (default)")
    parser.add_argument("--if-missing", action="store_true",
                        help="skip models whose champion exists and whose artifacts are on disk")
    return parser


def _train_one(registry: Any, settings: Any, name: str, if_missing: bool) -> dict[str, Any]:
    from core.errors import StudioError
    from core.models import get_spec

    if if_missing:
        version = registry.champion_version(name)
        if version is not None:
            try:
                registry.load_version(name, version)
                return {"skipped": True, "version": version, "reason": f"champion version {version} loads"}
            except StudioError as error:  # ModelUnavailable, ArtifactsMissing
                log.warning("%s champion %s does not load (%s): retraining", name, version, error)
    started = time.perf_counter()
    try:
        trained = get_spec(name).train(settings, None)
        info = registry.log_training(trained)
    except Exception as error:
        log.exception("training %s failed", name)
        message = str(error) if isinstance(error, StudioError) else f"{type(error).__name__}: {error}"
        return {"error": message, "seconds": round(time.perf_counter() - started, 2)}
    result: dict[str, Any] = {
        "version": info.version,
        "gate": "passed" if info.gate_passed else "rejected",
        "gate_reason": info.gate_reason,
        "champion": info.is_champion,
        "metrics": {k: round(v, 6) for k, v in info.metrics.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }
    if settings.mlflow_gc_after_train:
        result["prune"] = _prune(settings, name)
    return result


def _prune(settings: Any, name: str) -> dict[str, Any]:
    """Registry-aware pruning after a training; a failure is reported, not fatal."""
    try:
        from core.pruning import prune_model

        report = prune_model(settings, name)
    except Exception as error:
        log.warning("pruning %s failed: %s", name, error)
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    # errors met while deleting or purging land in the report, not in an exception
    return {"ok": report.ok, **dataclasses.asdict(report)}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import core  # noqa: F401  - host device count before JAX is imported
    from core.config import load_settings
    from core.errors import StudioError
    from core.models import MODEL_NAMES

    args = _parser(MODEL_NAMES).parse_args(argv)
    started = time.perf_counter()
    try:
        settings = load_settings()
        logging.getLogger().setLevel(settings.log_level)
        from core.registry import Registry

        registry = Registry(settings)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
            registry.ensure_store()
    except StudioError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return EXIT_USAGE
    names = list(dict.fromkeys(args.model)) if args.model else list(MODEL_NAMES)
    if not args.model:  # the stub first, as at app start-up: it is the fallback
        from core.service import START_ORDER

        names = [n for n in START_ORDER if n in names] + [n for n in names if n not in START_ORDER]
    results: dict[str, dict[str, Any]] = {}
    with contextlib.redirect_stdout(sys.stderr):
        for name in names:
            results[name] = _train_one(registry, settings, name, args.if_missing)
    failed = [n for n, r in results.items() if "error" in r]
    rejected = [n for n, r in results.items() if r.get("gate") == "rejected"]
    summary = {
        "ok": not failed and not rejected,
        "models": results,
        "failed": failed,
        "rejected": rejected,
        "seconds": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(summary, default=str), flush=True)
    if failed:
        return EXIT_FAILED
    if rejected:
        return EXIT_REJECTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
