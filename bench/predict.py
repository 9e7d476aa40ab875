"""Latency of ONE prediction per model, in process (validation included).

Trains each model (the Bayesian one with BAYES_* settings: 4 x 1000 + 1000 by default, so
its predictions average 4000 draws), saves and reloads it as the service would, then times
predict(values) on held-out rows. Prints p50/p99 per model and ends with one JSON line.
Usage: .venv/bin/python bench/predict.py [--n 2000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import core  # noqa: E402,F401 - host device count before JAX
import numpy as np  # noqa: E402

TARGETS_MS = {"breast_cancer_bayes": 5.0, "iris_random_forest": 20.0, "iris_logistic_regression": 20.0, "breast_cancer_stub": 20.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="predictions per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1000, help="BAYES_WARMUP")
    parser.add_argument("--samples", type=int, default=1000, help="BAYES_SAMPLES")
    args = parser.parse_args()

    from core.config import load_settings
    from core.data import load_dataset
    from core.models import MODEL_NAMES, get_spec, load_predictor

    root = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    settings = load_settings(
        {
            "DATA_DIR": str(root),
            "BAYES_WARMUP": str(args.warmup),
            "BAYES_SAMPLES": str(args.samples),
            "JAX_CACHE_DIR": str(Path(tempfile.gettempdir()) / "cms-bench-jax-cache"),
        },
        read_dotenv=False,
    )
    results = {}
    load_before = os.getloadavg()[0]
    print(f"{'model':<28}{'draws':>7}{'p50 ms':>10}{'p99 ms':>10}{'target p99':>12}")
    for name in MODEL_NAMES:
        spec = get_spec(name)
        trained = spec.train(settings)
        artifacts = trained.predictor.save(root / name)
        predictor = load_predictor(name, artifacts)
        rows = load_dataset(spec.dataset).X_test.to_dict("records")
        for row in rows[:20]:
            predictor.predict(row)  # warm caches
        p50s, p99s = [], []
        for _ in range(args.repeats):
            times = np.empty(args.n)
            for i in range(args.n):
                row = rows[i % len(rows)]
                t = time.perf_counter()
                predictor.predict(row)
                times[i] = time.perf_counter() - t
            p50s.append(float(np.percentile(times, 50) * 1e3))
            p99s.append(float(np.percentile(times, 99) * 1e3))
        draws = getattr(predictor, "n_draws", None)
        results[name] = {
            "p50_ms": round(statistics.median(p50s), 4),
            "p99_ms": round(statistics.median(p99s), 4),
            "target_p99_ms": TARGETS_MS[name],
            "draws": draws,
        }
        r = results[name]
        print(f"{name:<28}{draws or '-':>7}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{'< ' + str(r['target_p99_ms']):>12}", flush=True)
    load_after = os.getloadavg()[0]
    print(f"(medians of {args.repeats} repeats x {args.n} single predictions; 1-min load average "
          f"{load_before:.2f} before, {load_after:.2f} after, {os.cpu_count()} CPUs)")
    summary = {"bench": "predict", "n": args.n, "repeats": args.repeats, "models": results,
               "load_avg": [round(load_before, 2), round(load_after, 2)], "cpus": os.cpu_count()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
