"""Helpers shared by the model tests (not collected: no test_ prefix)."""
from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from core.data import load_dataset

ENTRY = str(Path(__file__).resolve().parents[3] / "core" / "models" / "pyfunc_entry.py")
PIP = ["mlflow", "scikit-learn", "skops", "numpy", "pandas"]


def log_and_load(predictor, name: str, root: Path, with_config: bool):
    """Log a predictor as a models-from-code pyfunc to a temp SQLite store and load it back.

    The process-wide tracking URI is restored afterwards so other tests are not affected."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    uri = f"sqlite:///{root}/m.db"
    with _use_tracking_uri(uri):
        client = mlflow.MlflowClient(uri)
        exp = client.get_experiment_by_name("t")
        exp_id = exp.experiment_id if exp else client.create_experiment("t", artifact_location=(root / "art").as_uri())
        artifacts = {k: str(v) for k, v in predictor.save(root / f"save-{name}").items()}
        with mlflow.start_run(experiment_id=exp_id):
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=ENTRY,
                artifacts=artifacts,
                model_config={"model_name": name} if with_config else None,
                pip_requirements=PIP,
            )
        return mlflow.pyfunc.load_model(info.model_uri)


def known_cases() -> dict[int, dict[str, float]]:
    """The held-out malignant (1) and benign (0) cases nearest to each class's median."""
    data = load_dataset("breast_cancer")
    out = {}
    for label in (0, 1):
        X = data.X_test[data.y_test == label]
        z = (X - X.median()) / data.X_train.std()
        out[label] = X.iloc[int(np.argmin((z**2).sum(axis=1).to_numpy()))].to_dict()
    return out
