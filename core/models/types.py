"""Shared types of the model layer: predictions, gate results, trained models, specs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal, Mapping, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from core.config import Settings

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ClassPrediction:
    model_name: str
    label: str
    probabilities: dict[str, float]
    model_version: str | None = None


@dataclass(frozen=True)
class Contribution:
    """A feature's contribution to the log-odds (coefficient x standardized value)."""

    feature: str
    mean: float
    lower: float
    upper: float


@dataclass(frozen=True)
class CancerPrediction:
    """Probability of malignancy with an interval.

    Bayesian model: posterior predictive mean and an equal-tailed credible interval.
    Fallback (is_fallback=True): logistic regression with a bootstrap percentile interval.
    """

    model_name: str
    probability: float
    lower: float
    upper: float
    credible_mass: float
    texture_group: int | None
    contributions: list[Contribution]
    probability_draws: np.ndarray | None = field(repr=False, compare=False)
    is_fallback: bool
    model_version: str | None = None
    note: str = ""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]


@runtime_checkable
class Predictor(Protocol):
    model_name: str
    input_features: list[str]

    def predict(self, values: Mapping[str, object]) -> ClassPrediction | CancerPrediction: ...

    def predict_frame(self, df: "pd.DataFrame") -> "pd.DataFrame": ...

    def save(self, directory: Path) -> dict[str, Path]: ...


@dataclass
class TrainedModel:
    name: str
    predictor: Predictor
    metrics: dict[str, float]
    params: dict[str, object]
    gate: GateResult
    extra_artifacts: dict[str, dict] = field(default_factory=dict)  # JSON files of the run, by name


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dataset: str
    kind: Literal["classifier", "probability"]
    description: str
    input_features: list[str]
    train_fn: Callable[["Settings", Progress | None], TrainedModel] = field(repr=False)
    gate_fn: Callable[[Mapping[str, float]], GateResult] = field(repr=False)

    def train(self, settings: "Settings", progress: Progress | None = None) -> TrainedModel:
        return self.train_fn(settings, progress)

    def quality_gate(self, metrics: Mapping[str, float]) -> GateResult:
        return self.gate_fn(metrics)


def floors_gate(metrics: Mapping[str, float], floors: Mapping[str, float], ceilings: Mapping[str, float] | None = None) -> GateResult:
    """Pass when every metric is >= its floor (and <= its ceiling); reasons name each miss."""
    reasons = []
    for key, floor in floors.items():
        value = metrics.get(key)
        if value is None or not np.isfinite(value) or value < floor:
            reasons.append(f"{key} = {value} is below the floor {floor}")
    for key, ceiling in (ceilings or {}).items():
        value = metrics.get(key)
        if value is None or not np.isfinite(value) or value > ceiling:
            reasons.append(f"{key} = {value} is above the ceiling {ceiling}")
    return GateResult(passed=not reasons, reasons=reasons)
