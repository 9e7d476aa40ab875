"""The four models by name: specs to train them, and load_predictor to load saved ones.

Heavy libraries (JAX, NumPyro) are imported only when the Bayesian model is trained;
loading and predicting with any model needs only NumPy and scikit-learn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from core.config import Settings
from core.errors import UnknownModel
from core.models._cancer import CANCER_INPUTS, CANCER_PREDICTORS
from core.models.types import (
    CancerPrediction,
    ClassPrediction,
    Contribution,
    GateResult,
    ModelSpec,
    Predictor,
    Progress,
    TrainedModel,
)

MODEL_NAMES: tuple[str, ...] = (
    "iris_random_forest",
    "iris_logistic_regression",
    "breast_cancer_bayes",
    "breast_cancer_stub",
)


def _train_iris_rf(settings: Settings, progress: Progress | None) -> TrainedModel:
    from core.models.iris import train_random_forest

    return train_random_forest(settings, progress)


def _train_iris_lr(settings: Settings, progress: Progress | None) -> TrainedModel:
    from core.models.iris import train_logistic_regression

    return train_logistic_regression(settings, progress)


def _train_bayes(settings: Settings, progress: Progress | None) -> TrainedModel:
    from core.models.cancer_bayes import train

    return train(settings, progress)


def _train_stub(settings: Settings, progress: Progress | None) -> TrainedModel:
    from core.models.cancer_stub import train

    return train(settings, progress)


def _iris_gate(metrics: Mapping[str, float]) -> GateResult:
    from core.models.iris import iris_gate

    return iris_gate(metrics)


def _bayes_gate(metrics: Mapping[str, float]) -> GateResult:
    from core.models.cancer_bayes import bayes_gate

    return bayes_gate(metrics)


def _stub_gate(metrics: Mapping[str, float]) -> GateResult:
    from core.models.cancer_stub import stub_gate

    return stub_gate(metrics)


# Defined here, not in iris.py, so that importing core.models stays free of pandas.
IRIS_FEATURES: list[str] = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

_SPECS: dict[str, ModelSpec] = {
    "iris_random_forest": ModelSpec(
        name="iris_random_forest",
        dataset="iris",
        kind="classifier",
        description="Random forest (50 trees) on the four iris measurements.",
        input_features=list(IRIS_FEATURES),
        train_fn=_train_iris_rf,
        gate_fn=_iris_gate,
    ),
    "iris_logistic_regression": ModelSpec(
        name="iris_logistic_regression",
        dataset="iris",
        kind="classifier",
        description="Standardized multinomial logistic regression on the four iris measurements.",
        input_features=list(IRIS_FEATURES),
        train_fn=_train_iris_lr,
        gate_fn=_iris_gate,
    ),
    "breast_cancer_bayes": ModelSpec(
        name="breast_cancer_bayes",
        dataset="breast_cancer",
        kind="probability",
        description=(
            "Hierarchical Bayesian logistic regression (NumPyro, NUTS): intercepts vary by "
            f"'mean texture' quintile, predictors {', '.join(CANCER_PREDICTORS)} (standardized)."
        ),
        input_features=list(CANCER_INPUTS),
        train_fn=_train_bayes,
        gate_fn=_bayes_gate,
    ),
    "breast_cancer_stub": ModelSpec(
        name="breast_cancer_stub",
        dataset="breast_cancer",
        kind="probability",
        description="Fallback: scikit-learn logistic regression with a bootstrap interval.",
        input_features=list(CANCER_INPUTS),
        train_fn=_train_stub,
        gate_fn=_stub_gate,
    ),
}


def get_spec(name: str) -> ModelSpec:
    """The spec of a model by name; UnknownModel names the accepted ones."""
    try:
        return _SPECS[name]
    except KeyError:
        raise UnknownModel(f"Unknown model {name!r}: use one of {', '.join(MODEL_NAMES)}.") from None


def load_predictor(name: str, artifacts: Mapping[str, str | Path]) -> Predictor:
    """Inverse of Predictor.save: artifacts maps artifact names to local file paths.

    Raises UnknownModel for a bad name and ArtifactsMissing when files are gone/corrupt.
    """
    get_spec(name)
    if name.startswith("iris_"):
        from core.models.iris import IrisPredictor

        return IrisPredictor.load(name, artifacts)
    if name == "breast_cancer_stub":
        from core.models.cancer_stub import StubPredictor

        return StubPredictor.load(name, artifacts)
    from core.models.cancer_bayes import BayesPredictor

    return BayesPredictor.load(name, artifacts)


__all__ = [
    "CANCER_INPUTS",
    "CANCER_PREDICTORS",
    "IRIS_FEATURES",
    "MODEL_NAMES",
    "CancerPrediction",
    "ClassPrediction",
    "Contribution",
    "GateResult",
    "ModelSpec",
    "Predictor",
    "TrainedModel",
    "get_spec",
    "load_predictor",
]
