"""Bench the Bayesian fit (4 chains x 1000 warmup x 1000 draws by default).

Each repeat runs two fresh processes: COLD (an empty JAX persistent compilation cache) and
then WARM (the cache the cold run just filled). Prints each run, the medians, and ends with
one JSON line. Usage: .venv/bin/python bench/train_bayes.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("compile_s", "sampling_s", "fit_s", "min_ess_bulk", "ess_bulk_per_s", "divergences", "max_rhat", "roc_auc", "brier", "process_s")
TARGETS = {"cold fit_s": "< 5", "warm fit_s": "< 2", "ess_bulk_per_s": ">= 1000", "divergences": "0", "max_rhat": "<= 1.01"}


def child(cache_dir: str, chains: int, warmup: int, samples: int) -> None:
    """One fit in this process; prints its metrics as JSON."""
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    import core  # noqa: F401 - host device count before JAX
    from core.config import load_settings
    from core.models.cancer_bayes import train

    data_dir = tempfile.mkdtemp(prefix="bench-bayes-")
    settings = load_settings(
        {
            "DATA_DIR": data_dir,
            "BAYES_CHAINS": str(chains),
            "BAYES_WARMUP": str(warmup),
            "BAYES_SAMPLES": str(samples),
            "JAX_CACHE_DIR": cache_dir,
        },
        read_dotenv=False,
    )
    trained = train(settings)
    out = {k: float(trained.metrics[k]) for k in FIELDS if k in trained.metrics}
    out["process_s"] = time.perf_counter() - t0
    out["gate_passed"] = trained.gate.passed
    print(json.dumps(out))


def run_child(cache_dir: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # the child sets its own via `import core`
    cmd = [sys.executable, __file__, "--child", cache_dir, "--chains", str(args.chains), "--warmup", str(args.warmup), "--samples", str(args.samples)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--child", metavar="CACHE_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chains, args.warmup, args.samples)
        return

    runs: dict[str, list[dict]] = {"cold": [], "warm": []}
    header = f"{'run':<8}" + "".join(f"{f:>15}" for f in FIELDS)
    print(f"breast_cancer_bayes: {args.chains} chains x {args.warmup} warmup x {args.samples} draws, {args.repeats} repeats")
    print(header)
    for i in range(args.repeats):
        cache = tempfile.mkdtemp(prefix="bench-jax-cache-")
        for mode in ("cold", "warm"):
            r = run_child(cache, args)
            runs[mode].append(r)
            print(f"{mode + str(i + 1):<8}" + "".join(f"{r[f]:>15.3f}" for f in FIELDS), flush=True)
    medians = {mode: {f: statistics.median(r[f] for r in rs) for f in FIELDS} for mode, rs in runs.items()}
    print("medians")
    for mode, m in medians.items():
        print(f"{mode:<8}" + "".join(f"{m[f]:>15.3f}" for f in FIELDS))
    print("targets: " + ", ".join(f"{k} {v}" for k, v in TARGETS.items()))
    summary = {
        "bench": "train_bayes",
        "chains": args.chains,
        "warmup": args.warmup,
        "samples": args.samples,
        "repeats": args.repeats,
        "cold": {k: round(v, 4) for k, v in medians["cold"].items()},
        "warm": {k: round(v, 4) for k, v in medians["warm"].items()},
        "max_divergences": max(r["divergences"] for rs in runs.values() for r in rs),
        "max_rhat": max(r["max_rhat"] for rs in runs.values() for r in rs),
        "all_gates_passed": all(r["gate_passed"] for rs in runs.values() for r in rs),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
