"""Stand-ins for the model service and registry so page tests never train a model.

The rate limiter, audit log and user store in page tests are the real ones (embedded
limiter, SQLite under tmp_path); only training-backed objects are replaced here.
"""
from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future
from typing import Any, Mapping

import numpy as np

from core.data import feature_info, validate_features
from core.errors import ModelUnavailable
from core.models import MODEL_NAMES, get_spec
from core.models.types import CancerPrediction, ClassPrediction, Contribution
from core.ratelimit import LimiterStatus
from core.registry import LoadedModel, VersionInfo
from core.service import ModelStatus, ServiceHealth

IRIS_PROBS = {"setosa": 0.03, "versicolor": 0.87, "virginica": 0.10}
CANCER_PROBABILITY, CANCER_LOWER, CANCER_UPPER = 0.237, 0.151, 0.342


def cancer_prediction(*, fallback: bool, version: str) -> CancerPrediction:
    rng = np.random.default_rng(3)
    draws = np.clip(rng.normal(CANCER_PROBABILITY, 0.05, size=400), 0, 1)
    features = get_spec("breast_cancer_bayes").input_features
    contributions = [Contribution(f, mean=0.5 - 0.3 * i, lower=0.2 - 0.3 * i, upper=0.8 - 0.3 * i) for i, f in enumerate(features)]
    return CancerPrediction(
        model_name="breast_cancer_stub" if fallback else "breast_cancer_bayes",
        probability=CANCER_PROBABILITY,
        lower=CANCER_LOWER,
        upper=CANCER_UPPER,
        credible_mass=0.94,
        texture_group=None if fallback else 2,
        contributions=contributions,
        probability_draws=draws,
        is_fallback=fallback,
        model_version=version,
    )


def synthetic_posterior(chains: int = 4, draws: int = 200, *, stuck: bool = False) -> tuple[dict, dict]:
    """Arrays shaped like the Bayesian model's (mu_a, sigma_a, z_a, a, beta) and its stats."""
    rng = np.random.default_rng(11)
    mu_a = rng.normal(-0.5, 0.3, size=(chains, draws))
    if stuck:
        mu_a[0] += 3.0
    sigma_a = np.abs(rng.normal(0.5, 0.1, size=(chains, draws)))
    z_a = rng.normal(size=(chains, draws, 5))
    posterior = {
        "mu_a": mu_a,
        "sigma_a": sigma_a,
        "z_a": z_a,
        "a": mu_a[..., None] + sigma_a[..., None] * z_a,
        "beta": rng.normal(1.0, 0.2, size=(chains, draws, 4)),
    }
    stats = {"diverging": np.zeros((chains, draws), dtype=bool), "energy": rng.normal(size=(chains, draws))}
    return posterior, stats


class FakeBayesPredictor:
    model_name = "breast_cancer_bayes"

    def __init__(self, stuck: bool = False) -> None:
        self.posterior, self.sample_stats = synthetic_posterior(stuck=stuck)

    def to_inference_data(self) -> Any:
        import arviz as az

        return az.from_dict(
            posterior=self.posterior,
            sample_stats=self.sample_stats,
            coords={"group": np.arange(5), "predictor": ["worst radius", "worst texture", "worst smoothness", "worst concave points"]},
            dims={"z_a": ["group"], "a": ["group"], "beta": ["predictor"]},
        )


class FakeRegistry:
    """Versions per model; version 2 of the Bayesian model has a stuck chain."""

    def __init__(self) -> None:
        self.versions: dict[str, list[VersionInfo]] = {}
        self.champions: dict[str, str] = {}
        self.set_calls: list[tuple[str, str]] = []

    def add(self, name: str, version: str, *, passed: bool = True, metrics: Mapping[str, float] | None = None) -> None:
        info = VersionInfo(
            name=name,
            version=version,
            run_id=f"run{version}",
            model_id=f"m-{version}",
            created_at=1_760_000_000.0 + int(version) * 60,
            aliases=(),
            gate_passed=passed,
            gate_reason="" if passed else "roc_auc below floor",
            metrics=dict(metrics or {"roc_auc": 0.99}),
        )
        self.versions.setdefault(name, []).insert(0, info)  # newest first

    def list_versions(self, name: str) -> list[VersionInfo]:
        champion = self.champions.get(name)
        return [dataclasses.replace(v, aliases=("champion",) if v.version == champion else ()) for v in self.versions.get(name, [])]

    def champion_version(self, name: str) -> str | None:
        return self.champions.get(name)

    def set_champion(self, name: str, version: str | int) -> None:
        self.set_calls.append((name, str(version)))
        self.champions[name] = str(version)

    def load_version(self, name: str, version: str | int) -> LoadedModel:
        version = str(version)
        info = next(v for v in self.list_versions(name) if v.version == version)
        return LoadedModel(name, version, FakeBayesPredictor(stuck=version == "2"), info, "file:///tmp/none")


class FakeService:
    """What the pages call on core.service.ModelService, with fixed answers."""

    def __init__(self, *, bayes_ready: bool = True, stub_ready: bool = True) -> None:
        self.registry = FakeRegistry()
        self.limiter: Any = None
        self.last_vacuum: dict[str, Any] | None = None
        self.retrained: list[str] = []
        self.predict_calls: list[tuple[str, dict]] = []
        self.error: Exception | None = None
        self._lock = threading.Lock()
        self._status = {name: ModelStatus(name=name, state="loaded", version="1", metrics={"accuracy": 0.97}) for name in MODEL_NAMES}
        for name in MODEL_NAMES:
            self.registry.add(name, "1")
            self.registry.champions[name] = "1"
        self.registry.add("breast_cancer_bayes", "2", metrics={"roc_auc": 0.991})
        self.registry.add("breast_cancer_bayes", "3", passed=False)
        self.set_ready("breast_cancer_bayes", bayes_ready)
        self.set_ready("breast_cancer_stub", stub_ready)

    def set_ready(self, name: str, ready: bool) -> None:
        if ready:
            self._status[name] = ModelStatus(name=name, state="loaded", version="1", metrics={"roc_auc": 0.99})
        else:
            self._status[name] = ModelStatus(name=name, state="training", version=None, progress=0.4, progress_message="sampling")

    def status(self) -> dict[str, ModelStatus]:
        with self._lock:
            return dict(self._status)

    def attach_limiter(self, limiter: Any) -> None:
        self.limiter = limiter

    def health(self) -> ServiceHealth:
        limiter = self.limiter.status() if self.limiter is not None else LimiterStatus("embedded", False, "in process")
        return ServiceHealth(models=self.status(), limiter=limiter, last_vacuum=self.last_vacuum)

    def prune_now(self, *, vacuum_db: bool = False) -> Any:
        from core import pruning  # tests replace pruning.prune_store

        return pruning.prune_store(None, vacuum_db=vacuum_db)

    def retrain(self, name: str) -> Future:
        self.retrained.append(name)
        with self._lock:
            self._status[name] = dataclasses.replace(self._status[name], state="queued", progress=0.0, progress_message="queued")
        return Future()

    def predict(self, name: str, values: Mapping[str, object]) -> ClassPrediction | CancerPrediction:
        self.predict_calls.append((name, dict(values)))
        if self.error is not None:
            raise self.error
        if name.startswith("iris_"):
            if self._status[name].version is None:
                raise ModelUnavailable(f"{name} is not ready; try again shortly.")
            validate_features(values, feature_info("iris"))
            label = max(IRIS_PROBS, key=IRIS_PROBS.__getitem__)
            return ClassPrediction(name, label, dict(IRIS_PROBS), model_version="7")
        validate_features(values, feature_info("breast_cancer", get_spec("breast_cancer_bayes").input_features))
        if self._status["breast_cancer_bayes"].version is not None:
            return cancer_prediction(fallback=False, version="4")
        if self._status["breast_cancer_stub"].version is not None:
            return cancer_prediction(fallback=True, version="2")
        raise ModelUnavailable("No breast cancer model is ready yet; try again shortly.")
