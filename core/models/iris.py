"""Iris classifiers: random forest and logistic regression, as scikit-learn pipelines."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import feature_info, load_dataset, validate_features
from core.models import IRIS_FEATURES
from core.models._common import (
    artifact_path,
    load_skops,
    read_json,
    report,
    save_skops,
    scatter_rows,
    validate_frame,
    write_json,
)
from core.models.types import ClassPrediction, GateResult, Progress, TrainedModel, floors_gate

DATASET = "iris"
# Held-out floors. Iris is easy (published held-out accuracy ~0.95); a model below these
# is broken, not unlucky.
IRIS_FLOORS = {"accuracy": 0.85, "f1_macro": 0.85}
IRIS_LOG_LOSS_CEILING = 0.5
# 50 trees: as accurate as 100 on iris, and half the per-prediction cost (sklearn loops
# over trees in Python), which keeps p99 of one prediction well under 20 ms.
N_TREES = 50


class IrisPredictor:
    """A fitted pipeline plus the class names; predicts from a mapping of feature values."""

    def __init__(self, model_name: str, pipeline: object, class_names: list[str]) -> None:
        self.model_name = model_name
        self.input_features = list(IRIS_FEATURES)
        self.class_names = list(class_names)
        self.pipeline = pipeline
        self._infos = feature_info(DATASET, self.input_features)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline.predict_proba(X)  # type: ignore[attr-defined]

    def predict(self, values: Mapping[str, object]) -> ClassPrediction:
        checked = validate_features(values, self._infos)
        x = np.array([[checked[f] for f in self.input_features]])
        proba = self._proba(x)[0]
        best = int(np.argmax(proba))
        return ClassPrediction(
            model_name=self.model_name,
            label=self.class_names[best],
            probabilities={c: float(p) for c, p in zip(self.class_names, proba)},
        )

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Columns: label, one probability_<class> per class, error ('' if scored)."""
        X, valid, errors = validate_frame(df, self._infos)
        proba = self._proba(X) if len(X) else np.zeros((0, len(self.class_names)))
        cols = {f"probability_{c}": proba[:, i] for i, c in enumerate(self.class_names)}
        out = scatter_rows(df, valid, cols, errors)
        labels = np.array([""] * len(df), dtype=object)
        labels[valid] = [self.class_names[i] for i in np.argmax(proba, axis=1)] if len(X) else []
        out.insert(0, "label", labels)
        return out

    def save(self, directory: Path) -> dict[str, Path]:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return {
            "model": save_skops(self.pipeline, directory / "model.skops"),
            "meta": write_json(
                directory / "meta.json",
                {"model_name": self.model_name, "class_names": self.class_names, "input_features": self.input_features},
            ),
        }

    @classmethod
    def load(cls, model_name: str, artifacts: Mapping[str, str | Path]) -> "IrisPredictor":
        meta = read_json(artifacts, "meta")
        pipeline = load_skops(artifact_path(artifacts, "model"))
        return cls(model_name, pipeline, meta["class_names"])


def _make_pipeline(name: str) -> object:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "iris_random_forest":
        return Pipeline([("forest", RandomForestClassifier(n_estimators=N_TREES, random_state=0))])
    return Pipeline([("scale", StandardScaler()), ("logreg", LogisticRegression(C=1.0, max_iter=1000))])


def _train(name: str, settings: Settings, progress: Progress | None) -> TrainedModel:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    report(progress, 0.0, "loading iris")
    data = load_dataset(DATASET)
    pipeline = _make_pipeline(name)
    report(progress, 0.2, "fitting")
    pipeline.fit(data.X_train[IRIS_FEATURES].to_numpy(), data.y_train)  # type: ignore[attr-defined]
    predictor = IrisPredictor(name, pipeline, list(data.target_names))
    report(progress, 0.8, "scoring the held-out split")
    proba = predictor._proba(data.X_test[IRIS_FEATURES].to_numpy())
    pred = np.argmax(proba, axis=1)
    metrics = {
        "accuracy": float(accuracy_score(data.y_test, pred)),
        "f1_macro": float(f1_score(data.y_test, pred, average="macro")),
        "log_loss": float(log_loss(data.y_test, proba, labels=[0, 1, 2])),
        "n_train": float(len(data.y_train)),
        "n_test": float(len(data.y_test)),
    }
    steps = dict(pipeline.steps)  # type: ignore[attr-defined]
    params: dict[str, object] = {"dataset": DATASET, "features": ",".join(IRIS_FEATURES)}
    for step, est in steps.items():
        params[f"{step}"] = type(est).__name__
    if "forest" in steps:
        params["n_estimators"] = steps["forest"].n_estimators
    if "logreg" in steps:
        params["C"] = steps["logreg"].C
    report(progress, 1.0, "done")
    return TrainedModel(name=name, predictor=predictor, metrics=metrics, params=params, gate=iris_gate(metrics))


def iris_gate(metrics: Mapping[str, float]) -> GateResult:
    return floors_gate(metrics, IRIS_FLOORS, {"log_loss": IRIS_LOG_LOSS_CEILING})


def train_random_forest(settings: Settings, progress: Progress | None = None) -> TrainedModel:
    return _train("iris_random_forest", settings, progress)


def train_logistic_regression(settings: Settings, progress: Progress | None = None) -> TrainedModel:
    return _train("iris_logistic_regression", settings, progress)
