"""Each model round-trips through MLflow (models-from-code pyfunc) with equal predictions."""
from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from core.data import load_dataset
from core.models import get_spec
from tests.conftest import make_settings

ENTRY = str(Path(__file__).resolve().parents[3] / "core" / "models" / "pyfunc_entry.py")
PIP = ["mlflow", "scikit-learn", "skops", "numpy", "pandas"]


def log_and_load(predictor, name: str, root: Path, with_config: bool):
    uri = f"sqlite:///{root}/m.db"
    mlflow.set_tracking_uri(uri)
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


@pytest.mark.parametrize("name,with_config", [
    ("iris_random_forest", True),
    ("iris_logistic_regression", False),
    ("breast_cancer_stub", True),
])
def test_round_trip_through_mlflow(name, with_config, tmp_path):
    trained = get_spec(name).train(make_settings(tmp_path))
    loaded = log_and_load(trained.predictor, name, tmp_path, with_config)
    X = load_dataset(get_spec(name).dataset).X_test
    out = loaded.predict(X)
    pd.testing.assert_frame_equal(out.reset_index(drop=True), trained.predictor.predict_frame(X).reset_index(drop=True))
    rich = loaded.unwrap_python_model().predictor
    assert rich.model_name == name
    row = X.iloc[0].to_dict()
    assert rich.predict(row) == trained.predictor.predict(row)
