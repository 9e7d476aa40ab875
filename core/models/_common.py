"""Helpers shared by the model modules: skops persistence, batch validation, metrics."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from core.data import FeatureInfo, validate_features
from core.errors import ArtifactsMissing, InvalidInput

# Types skops may load besides its built-in safe list. Listed explicitly (never "trust
# whatever is in the file"): the pipelines we save contain only these.
SKOPS_TRUSTED_TYPES = [
    "sklearn.tree._tree.Tree",
]


def save_skops(obj: Any, path: Path) -> Path:
    import skops.io as sio

    sio.dump(obj, path)
    return path


def load_skops(path: str | Path) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # zipfile/json/OS errors: all mean an unusable file
        raise ArtifactsMissing(f"Model file {path} is missing or unreadable: {exc}") from exc
    unexpected = [t for t in untrusted if t not in SKOPS_TRUSTED_TYPES]
    if unexpected:
        raise ArtifactsMissing(f"Model file {path} holds types we do not trust: {', '.join(unexpected)}.")
    try:
        return sio.load(path, trusted=SKOPS_TRUSTED_TYPES)
    except Exception as exc:
        raise ArtifactsMissing(f"Model file {path} could not be loaded: {exc}") from exc


def write_json(path: Path, payload: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))
    return path


def read_json(artifacts: Mapping[str, str | Path], key: str) -> dict[str, Any]:
    path = artifact_path(artifacts, key)
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactsMissing(f"Artifact '{key}' ({path}) is missing or unreadable: {exc}") from exc


def artifact_path(artifacts: Mapping[str, str | Path], key: str) -> Path:
    if key not in artifacts:
        raise ArtifactsMissing(f"Artifact '{key}' is not among the model's artifacts ({', '.join(artifacts)}).")
    path = Path(artifacts[key])
    if not path.exists():
        raise ArtifactsMissing(f"Artifact '{key}' is missing: {path} does not exist.")
    return path


def load_npz(artifacts: Mapping[str, str | Path], key: str) -> dict[str, np.ndarray]:
    path = artifact_path(artifacts, key)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:  # zip/format errors of a truncated file included
        raise ArtifactsMissing(f"Artifact '{key}' ({path}) is unreadable: {exc}") from exc


def validate_frame(df: pd.DataFrame, infos: list[FeatureInfo]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate each row; returns (X of valid rows, valid mask, error message per row)."""
    rows = df.to_dict("records")
    valid = np.zeros(len(rows), dtype=bool)
    errors = [""] * len(rows)
    X = []
    for i, row in enumerate(rows):
        try:
            checked = validate_features(row, infos)
        except InvalidInput as exc:
            errors[i] = str(exc)
            continue
        valid[i] = True
        X.append([checked[info.name] for info in infos])
    return np.asarray(X, dtype=float).reshape(-1, len(infos)), valid, errors


def scatter_rows(df: pd.DataFrame, valid: np.ndarray, columns: dict[str, np.ndarray], errors: list[str]) -> pd.DataFrame:
    """Frame aligned with df: results where valid, NaN elsewhere, plus an 'error' column."""
    out = pd.DataFrame(index=df.index)
    for name, values in columns.items():
        full = np.full(len(df), np.nan, dtype=float)
        full[valid] = values
        out[name] = full
    out["error"] = errors
    return out


def report(progress: Callable[[float, str], None] | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Held-out metrics of a probability of class 1 (malignant)."""
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "n_test": float(len(y)),
    }


def calibration(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Reliability curve data on the held-out split: per bin mean predicted vs observed."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = idx == b
        if mask.any():
            bins.append(
                {
                    "bin_lower": float(edges[b]),
                    "bin_upper": float(edges[b + 1]),
                    "mean_predicted": float(p[mask].mean()),
                    "observed_rate": float(y[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    ece = sum(b["count"] * abs(b["mean_predicted"] - b["observed_rate"]) for b in bins) / max(len(y), 1)
    return {"n_bins": n_bins, "strategy": "uniform", "bins": bins, "expected_calibration_error": float(ece)}


def held_out_scores(y: np.ndarray, p: np.ndarray) -> tuple[dict[str, float], dict[str, dict]]:
    """Metrics of a cancer model's held-out probabilities (binary_metrics plus
    calibration_ece) and its extra artifact 'calibration.json' (the reliability curve),
    kept in memory: the registry writes it into the run, so no temporary file is left."""
    metrics = binary_metrics(y, p)
    calib = calibration(y, p)
    metrics["calibration_ece"] = calib["expected_calibration_error"]
    return metrics, {"calibration.json": calib}
