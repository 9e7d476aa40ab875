"""Bench the Bayesian fit (4 chains x 1000 warmup x 1000 draws by default).

Each repeat runs two fresh processes: COLD (an empty JAX persistent compilation cache) and
then WARM (the cache the cold run just filled). Prints each run, the medians, and ends with
one JSON line. Usage: .venv/bin/python bench/train_bayes.py [--repeats 3]

--compare instead fits each candidate predictor set (in this process, several seeds) and
prints held-out AUC/Brier, sampler health and a 10-fold CV Brier of a plain logistic
regression on the training split: the table behind the choice in docs/models.md.
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
FIELDS = ("compile_s", "sampling_s", "fit_s", "fit_cpu_s", "min_ess_bulk", "ess_bulk_per_s", "divergences", "max_rhat", "roc_auc", "brier", "process_s")
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


CANDIDATES = {
    "anchor5 (mean radius, smoothness, concave pts, symmetry, area)": [
        "mean radius", "mean smoothness", "mean concave points", "mean symmetry", "mean area"],
    "w3 (worst radius, smoothness, concave pts)": ["worst radius", "worst smoothness", "worst concave points"],
    "w3+texture (w3 + worst texture)": ["worst radius", "worst texture", "worst smoothness", "worst concave points"],
    "w3+symmetry (w3 + worst symmetry)": ["worst radius", "worst smoothness", "worst concave points", "worst symmetry"],
    "w3+texture+area": ["worst radius", "worst texture", "worst smoothness", "worst concave points", "worst area"],
}


def compare(args: argparse.Namespace) -> None:
    """Fit every candidate set with several seeds; medians per set; one JSON line."""
    sys.path.insert(0, str(ROOT))
    import core  # noqa: F401
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core.config import load_settings
    from core.data import load_dataset
    from core.models._common import binary_metrics
    from core.models.cancer_bayes import fit

    settings = load_settings(
        {
            "DATA_DIR": tempfile.mkdtemp(prefix="bench-bayes-"),
            "BAYES_CHAINS": str(args.chains),
            "BAYES_WARMUP": str(args.warmup),
            "BAYES_SAMPLES": str(args.samples),
            "JAX_CACHE_DIR": str(Path(tempfile.gettempdir()) / "cms-bench-compare-jax-cache"),
        },
        read_dotenv=False,
    )
    data = load_dataset("breast_cancer")
    folds = StratifiedKFold(10, shuffle=True, random_state=0)
    table = {}
    cols = ("cv_brier_lr", "roc_auc", "brier", "divergences", "max_rhat", "min_ess_bulk", "sampling_s", "ess_bulk_per_s")
    print(f"{'set':<64}" + "".join(f"{c:>14}" for c in cols))
    for label, predictors in CANDIDATES.items():
        cv = -cross_val_score(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
            data.X_train[predictors + ["mean texture"]], data.y_train, cv=folds, scoring="neg_brier_score",
        ).mean()
        rows = []
        for seed in range(args.seeds):
            predictor, m, _ = fit(settings, predictors=predictors, seed=seed)
            p = predictor.predict_frame(data.X_test)["probability"].to_numpy()
            rows.append({**m, **binary_metrics(data.y_test, p)})
        med = {k: statistics.median(r[k] for r in rows) for k in cols[1:]}
        med["divergences"] = sum(r["divergences"] for r in rows)  # total over seeds
        med["max_rhat"] = max(r["max_rhat"] for r in rows)
        med["cv_brier_lr"] = float(cv)
        table[label] = {k: round(float(v), 4) for k, v in med.items()}
        print(f"{label:<64}" + "".join(f"{med[c]:>14.4f}" for c in cols), flush=True)
    print(f"(medians over {args.seeds} seeds; divergences summed, R-hat max over seeds)")
    print(json.dumps({"bench": "compare_predictors", "seeds": args.seeds, "sets": table}))


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
    parser.add_argument("--compare", action="store_true", help="compare candidate predictor sets")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per set with --compare")
    parser.add_argument("--child", metavar="CACHE_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return
    if args.child:
        child(args.child, args.chains, args.warmup, args.samples)
        return

    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"cold": [], "warm": []}
    header = f"{'run':<8}" + "".join(f"{f:>15}" for f in FIELDS)
    # fit_cpu_s: CPU seconds of all threads during the fit. On a shared, loaded machine wall
    # times stretch but CPU time hardly does: on an idle box the fit's wall time lies between
    # fit_cpu_s / CPUs (all parallel) and fit_cpu_s (nothing parallel).
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
    load_after = os.getloadavg()[0]
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")
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
        "best_fit_s": {mode: round(min(r["fit_s"] for r in rs), 4) for mode, rs in runs.items()},
        "load_avg": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
