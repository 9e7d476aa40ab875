"""Fallback breast-cancer model: a fast scikit-learn logistic regression.

Serves while the Bayesian model is missing, training or failed. Its interval is honest
but not Bayesian: at train time the logistic regression is refitted on BOOTSTRAP_DRAWS
bootstrap resamples of the (standardized) training split; an interval is the percentile
range of those refits' probabilities. Every prediction says is_fallback=True.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import feature_info, load_dataset, validate_features
from core.models._cancer import CANCER_INPUTS, sigmoid
from core.models._common import (
    artifact_path,
    held_out_scores,
    load_npz,
    load_skops,
    read_json,
    report,
    save_skops,
    scatter_rows,
    validate_frame,
    write_json,
)
from core.models.types import CancerPrediction, Contribution, GateResult, Progress, TrainedModel, floors_gate

NAME = "breast_cancer_stub"
DATASET = "breast_cancer"
BOOTSTRAP_DRAWS = 200
C = 1.0
# A fallback must still be good: floors on the held-out split.
STUB_FLOORS = {"roc_auc": 0.97, "accuracy": 0.90}
STUB_BRIER_CEILING = 0.06
NOTE = "Fallback model (logistic regression); interval from a bootstrap of the training set."


class StubPredictor:
    """Pipeline (scaler + logistic regression) plus bootstrap coefficient draws."""

    def __init__(self, pipeline: object, boot_coef: np.ndarray, boot_intercept: np.ndarray, credible_mass: float) -> None:
        self.model_name = NAME
        self.input_features = list(CANCER_INPUTS)
        self.pipeline = pipeline
        self.boot_coef = np.asarray(boot_coef, dtype=float)  # (draws, features)
        self.boot_intercept = np.asarray(boot_intercept, dtype=float)  # (draws,)
        self.credible_mass = float(credible_mass)
        self._infos = feature_info(DATASET, self.input_features)
        steps = dict(pipeline.steps)  # type: ignore[attr-defined]
        self._mean = np.asarray(steps["scale"].mean_, dtype=float)
        self._scale = np.asarray(steps["scale"].scale_, dtype=float)
        self._coef = np.asarray(steps["logreg"].coef_[0], dtype=float)
        self._intercept = float(steps["logreg"].intercept_[0])

    def _tails(self) -> tuple[float, float]:
        alpha = (1.0 - self.credible_mass) / 2.0
        return 100 * alpha, 100 * (1.0 - alpha)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Point probability of malignancy (the full-data fit), in NumPy."""
        Z = (X - self._mean) / self._scale
        return sigmoid(Z @ self._coef + self._intercept)

    def predict(self, values: Mapping[str, object]) -> CancerPrediction:
        checked = validate_features(values, self._infos)
        x = np.array([checked[f] for f in self.input_features])
        z = (x - self._mean) / self._scale
        p = float(sigmoid(z @ self._coef + self._intercept))
        draws = sigmoid(self.boot_coef @ z + self.boot_intercept)
        lo_q, hi_q = self._tails()
        lower, upper = np.percentile(draws, [lo_q, hi_q])
        contrib_draws = self.boot_coef * z  # (draws, features)
        c_lo, c_hi = np.percentile(contrib_draws, [lo_q, hi_q], axis=0)
        contributions = [
            Contribution(feature=f, mean=float(self._coef[j] * z[j]), lower=float(c_lo[j]), upper=float(c_hi[j]))
            for j, f in enumerate(self.input_features)
        ]
        return CancerPrediction(
            model_name=NAME,
            probability=p,
            lower=float(min(lower, p)),
            upper=float(max(upper, p)),
            credible_mass=self.credible_mass,
            texture_group=None,
            contributions=contributions,
            probability_draws=draws,
            is_fallback=True,
            note=NOTE,
        )

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Columns: probability, lower, upper, is_fallback (1.0), error ('' if scored)."""
        X, valid, errors = validate_frame(df, self._infos)
        p = self.probabilities(X)
        Z = (X - self._mean) / self._scale
        draws = sigmoid(Z @ self.boot_coef.T + self.boot_intercept)  # (rows, draws)
        lo_q, hi_q = self._tails()
        if len(X):
            lower, upper = np.percentile(draws, [lo_q, hi_q], axis=1)
            lower, upper = np.minimum(lower, p), np.maximum(upper, p)
        else:
            lower = upper = np.zeros(0)
        cols = {"probability": p, "lower": lower, "upper": upper, "is_fallback": np.ones(len(X))}
        return scatter_rows(df, valid, cols, errors)

    def save(self, directory: Path) -> dict[str, Path]:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        npz = directory / "bootstrap.npz"
        np.savez(npz, coef=self.boot_coef, intercept=self.boot_intercept)
        return {
            "model": save_skops(self.pipeline, directory / "model.skops"),
            "bootstrap": npz,
            "meta": write_json(
                directory / "meta.json",
                {"model_name": NAME, "input_features": self.input_features, "credible_mass": self.credible_mass},
            ),
        }

    @classmethod
    def load(cls, model_name: str, artifacts: Mapping[str, str | Path]) -> "StubPredictor":
        meta = read_json(artifacts, "meta")
        boot = load_npz(artifacts, "bootstrap")
        pipeline = load_skops(artifact_path(artifacts, "model"))
        return cls(pipeline, boot["coef"], boot["intercept"], meta["credible_mass"])


def _pipeline() -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("logreg", LogisticRegression(C=C, max_iter=1000))])


def train(settings: Settings, progress: Progress | None = None) -> TrainedModel:
    from sklearn.linear_model import LogisticRegression

    report(progress, 0.0, "fitting logistic regression")
    data = load_dataset(DATASET)
    X_train = data.X_train[CANCER_INPUTS].to_numpy(dtype=float)
    pipeline = _pipeline()
    pipeline.fit(X_train, data.y_train)  # type: ignore[attr-defined]
    steps = dict(pipeline.steps)  # type: ignore[attr-defined]
    Z = steps["scale"].transform(X_train)
    rng = np.random.default_rng(0)
    coefs, intercepts = [], []
    n = len(Z)
    for b in range(BOOTSTRAP_DRAWS):
        idx = rng.integers(0, n, n)
        if data.y_train[idx].min() == data.y_train[idx].max():
            continue  # a one-class resample cannot be fitted (practically never)
        fit = LogisticRegression(C=C, max_iter=1000).fit(Z[idx], data.y_train[idx])
        coefs.append(fit.coef_[0])
        intercepts.append(fit.intercept_[0])
        if b % 50 == 0:
            report(progress, 0.1 + 0.8 * b / BOOTSTRAP_DRAWS, f"bootstrap {b}/{BOOTSTRAP_DRAWS}")
    predictor = StubPredictor(pipeline, np.array(coefs), np.array(intercepts), settings.credible_mass)
    report(progress, 0.95, "scoring the held-out split")
    p_test = predictor.probabilities(data.X_test[CANCER_INPUTS].to_numpy(dtype=float))
    metrics, extra_artifacts = held_out_scores(data.y_test, p_test)
    metrics["n_train"] = float(n)
    params: dict[str, object] = {
        "dataset": DATASET,
        "features": ",".join(CANCER_INPUTS),
        "C": C,
        "bootstrap_draws": len(coefs),
        "credible_mass": settings.credible_mass,
    }
    report(progress, 1.0, "done")
    return TrainedModel(
        name=NAME,
        predictor=predictor,
        metrics=metrics,
        params=params,
        gate=stub_gate(metrics),
        extra_artifacts=extra_artifacts,
    )


def stub_gate(metrics: Mapping[str, float]) -> GateResult:
    return floors_gate(metrics, STUB_FLOORS, {"brier": STUB_BRIER_CEILING})
