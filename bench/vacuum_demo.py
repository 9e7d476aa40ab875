"""Demonstration: train several versions, print the store size, run the vacuum job,
print the size again.

Trains the cheap models once (iris random forest, iris logistic regression, breast-cancer
stub) and logs each --versions times through the real Registry into a throwaway store,
then runs `python -m jobs.vacuum --retain N --vacuum-db` as a cron would, and checks the
champions still load. Ends with ONE JSON line.

    .venv/bin/python bench/vacuum_demo.py [--versions 8] [--retain 2] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.config import load_settings  # noqa: E402

MODELS = ("iris_random_forest", "iris_logistic_regression", "breast_cancer_stub")


def env_for(root: Path) -> dict[str, str]:
    return {
        "APP_ENV": "development", "DATA_DIR": str(root), "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(root / "mlartifacts"), "DATABASE_URL": f"sqlite:///{root}/app.db",
        "TRAIN_ON_START": "0", "MLFLOW_GC_AFTER_TRAIN": "0",
    }


def human(n: int | None) -> str:
    if n is None:
        return "unknown"
    return f"{n / 1024 / 1024:.2f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def show(label: str, usage) -> None:
    print(f"{label:<28} artifacts {human(usage.artifact_bytes):>10}   database {human(usage.db_bytes):>10}   "
          f"total {human(usage.total_bytes):>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=8, help="versions logged per model")
    parser.add_argument("--retain", type=int, default=2, help="--retain passed to jobs.vacuum")
    parser.add_argument("--keep", type=Path, default=None, help="build the store here and keep it")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="cms-vacuum-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    env = env_for(root)
    settings = load_settings(env)

    from core.models import get_spec
    from core.pruning import store_usage
    from core.registry import Registry

    registry = Registry(settings)
    started = time.perf_counter()
    for name in MODELS:
        trained = get_spec(name).train(settings)
        for _ in range(args.versions):
            registry.log_training(trained)
    registry.set_champion("iris_logistic_regression", 1)  # an old champion must survive
    print(f"trained {len(MODELS)} models x {args.versions} versions in {time.perf_counter() - started:.1f} s "
          f"into {root}")
    before = store_usage(settings)
    show("before vacuum", before)

    job = subprocess.run([sys.executable, "-m", "jobs.vacuum", "--retain", str(args.retain), "--vacuum-db"],
                         cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    line = json.loads(job.stdout.strip().splitlines()[-1])
    print(f"python -m jobs.vacuum --retain {args.retain} --vacuum-db  -> exit {job.returncode}: "
          f"{line.get('deleted_runs')} runs, {line.get('deleted_versions')} versions, "
          f"{line.get('deleted_logged_models')} logged models deleted in {line.get('seconds')} s")
    after = store_usage(settings)
    show("after vacuum", after)

    fresh = Registry(settings)
    champions = {name: fresh.load_champion(name).version for name in MODELS}
    remaining = {name: [v.version for v in fresh.list_versions(name)] for name in MODELS}
    print(f"champions still loadable: {champions}; versions left: {remaining}")
    print(json.dumps({
        "bench": "vacuum_demo", "models": len(MODELS), "versions_per_model": args.versions, "retain": args.retain,
        "exit_code": job.returncode, "artifact_bytes_before": before.artifact_bytes,
        "artifact_bytes_after": after.artifact_bytes, "db_bytes_before": before.db_bytes,
        "db_bytes_after": after.db_bytes, "deleted_runs": line.get("deleted_runs"),
        "vacuum_seconds": line.get("seconds"), "champions": champions,
    }))


if __name__ == "__main__":
    main()
