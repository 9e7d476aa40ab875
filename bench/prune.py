"""Prune + purge time for embedded stores of 50, 200 and 800 runs.

Each store: 4 registered models, N/4 versions each (a run, a LoggedModel with a small
MLmodel + 4 KB model file, a version tagged gate=passed), champion on version 1. The
store is built once per size with cheap artifacts (no training), then copied (paths in
the database rewritten) for each repeat; prune_store(retain=5) removes N - 4*6 runs
(newest 5 + the champion stay per model). Prints a table of medians and ONE JSON line.

    .venv/bin/python bench/prune.py [--sizes 50,200,800] [--repeats 3]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import load_settings  # noqa: E402

MODELS = ("bench_a", "bench_b", "bench_c", "bench_d")
RETAIN = 5


def settings_for(root: Path):
    return load_settings({
        "APP_ENV": "test", "DATA_DIR": str(root), "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(root / "mlartifacts"), "DATABASE_URL": f"sqlite:///{root}/app.db",
    })


def build(root: Path, runs: int) -> float:
    import mlflow
    from mlflow import MlflowClient

    started = time.perf_counter()
    settings = settings_for(root)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)  # the SQL registry resolves models:/ through it
    client = MlflowClient(settings.mlflow_tracking_uri)
    exp = client.create_experiment("clinical-ml-studio", artifact_location=(root / "mlartifacts").as_uri())
    model_dir = root / "tiny-model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: none\n")
    (model_dir / "model.bin").write_bytes(b"\0" * 4096)
    for name in MODELS:
        client.create_registered_model(name)
        for _ in range(runs // len(MODELS)):
            run_id = client.create_run(exp, tags={"model_name": name}).info.run_id
            lm = client.create_logged_model(exp, name=name, source_run_id=run_id)
            client.log_model_artifacts(lm.model_id, str(model_dir))
            client.finalize_logged_model(lm.model_id, "READY")
            client.create_model_version(name, source=f"models:/{lm.model_id}", run_id=run_id,
                                        model_id=lm.model_id, tags={"gate": "passed", "model_id": lm.model_id})
            client.set_terminated(run_id)
        client.set_registered_model_alias(name, "champion", "1")
    shutil.rmtree(model_dir)
    return time.perf_counter() - started


def clone(template: Path, root: Path) -> None:
    shutil.copytree(template, root)
    con = sqlite3.connect(root / "mlflow.db")
    try:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for column in con.execute(f"PRAGMA table_info('{table}')").fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    con.execute(f'UPDATE "{table}" SET "{column[1]}" = replace("{column[1]}", ?, ?) WHERE "{column[1]}" LIKE ?',
                                (str(template), str(root), f"%{template}%"))
        con.commit()
    finally:
        con.close()


def timed_prune(root: Path) -> tuple[float, float, int, int]:
    """(total seconds, gc seconds, pruned runs, freed bytes)."""
    import mlflow.cli

    from core.pruning import prune_store

    gc_seconds = [0.0]
    real_main = mlflow.cli.gc.main

    def timed_gc(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real_main(*args, **kwargs)
        finally:
            gc_seconds[0] += time.perf_counter() - t

    mlflow.cli.gc.main = timed_gc
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            report = prune_store(settings_for(root), retain=RETAIN, max_age_days=7)
            total = time.perf_counter() - started
    finally:
        mlflow.cli.gc.main = real_main
    if not report.ok:
        raise SystemExit(f"prune failed: {report.errors}")
    return total, gc_seconds[0], len(report.deleted_runs), report.freed_bytes or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,800")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    import mlflow.cli  # noqa: F401 - import cost (~1.5 s) paid once, not inside the first timing

    results = []
    with tempfile.TemporaryDirectory(prefix="cms-bench-prune-") as tmp:
        for size in sizes:
            template = Path(tmp) / f"template-{size}"
            template.mkdir()
            build_s = build(template, size)
            rows = []
            for i in range(args.repeats):
                root = Path(tmp) / f"store-{size}-{i}"
                clone(template, root)
                rows.append(timed_prune(root))
                shutil.rmtree(root)
            total = statistics.median(r[0] for r in rows)
            gc_s = statistics.median(r[1] for r in rows)
            pruned = rows[0][2]
            results.append({"runs": size, "pruned_runs": pruned, "build_s": round(build_s, 1),
                            "prune_s_median": round(total, 3), "gc_s_median": round(gc_s, 3),
                            "s_per_pruned_run": round(total / pruned, 4), "freed_bytes": rows[0][3],
                            "prune_s_all": [round(r[0], 3) for r in rows]})
            shutil.rmtree(template)
            print(f"built {size} runs in {build_s:.1f} s; prune medians over {args.repeats}: {total:.2f} s", file=sys.stderr)
    print(f"{'runs':>6} {'pruned':>7} {'prune s':>9} {'of which gc':>12} {'s / pruned run':>15} {'freed KB':>9}")
    for r in results:
        print(f"{r['runs']:>6} {r['pruned_runs']:>7} {r['prune_s_median']:>9.2f} {r['gc_s_median']:>12.2f} "
              f"{r['s_per_pruned_run']:>15.4f} {r['freed_bytes'] / 1024:>9.0f}")
    per_run = [r["s_per_pruned_run"] for r in results]
    print(json.dumps({"bench": "prune", "repeats": args.repeats, "retain": RETAIN, "results": results,
                      "max_s_per_pruned_run": max(per_run), "target_s_per_pruned_run": 0.2}))


if __name__ == "__main__":
    main()
