"""predict_for_user: both buckets, RateLimited with a retry time, audit rows for every attempt."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.audit import AuditLog
from core.errors import InvalidInput, ModelUnavailable, RateLimited
from core.predicting import limit_kind, predict_for_user
from core.ratelimit import RateLimiter
from tests.conftest import make_settings


@dataclass(frozen=True)
class Prob:
    model_name: str
    probability: float
    lower: float
    upper: float
    credible_mass: float = 0.94
    is_fallback: bool = False
    model_version: str | None = "2"


class FakeService:
    """Stands in for core.service.ModelService: predict(name, values)."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail

    def predict(self, name, values):
        self.calls.append((name, dict(values)))
        if self.fail:
            raise self.fail
        return Prob(name, 0.8, 0.7, 0.9)


class BrokenAudit:
    def record(self, **kwargs):
        raise RuntimeError("disk on fire")


@pytest.fixture
def parts(tmp_path):
    settings = make_settings(tmp_path, RATE_LIMIT_CANCER="2", RATE_LIMIT_DEFAULT="3")
    audit = AuditLog(settings.database_url)
    yield RateLimiter(settings), audit
    audit.engine.dispose()


def test_limit_kind():
    assert limit_kind("breast_cancer") == "cancer"
    assert limit_kind("breast_cancer_bayes") == "cancer"
    assert limit_kind("iris_random_forest") == "default"


def test_allowed_predictions_are_audited_and_refused_ones_too(parts):
    limiter, audit = parts
    service = FakeService()
    values = {"mean radius": 14.0}
    for _ in range(2):
        result = predict_for_user(service, limiter, audit, username="alice", session_id="s1", model="breast_cancer", values=values)
        assert result.probability == 0.8
    with pytest.raises(RateLimited) as err:
        predict_for_user(service, limiter, audit, username="alice", session_id="s2", model="breast_cancer", values=values)
    assert 29.0 <= err.value.retry_after_s <= 30.0  # capacity 2 per minute: one token every 30 s
    assert "Try again in" in str(err.value)
    assert len(service.calls) == 2  # the refused attempt never reached the model
    # iris uses the default bucket, still open
    predict_for_user(service, limiter, audit, username="alice", session_id="s2", model="iris_random_forest", values={"a": 1})
    df = audit.query(username="alice")
    assert len(df) == 4
    assert df["rate_limited"].sum() == 1
    refused = df[df["rate_limited"]].iloc[0]
    assert refused["model"] == "breast_cancer" and refused["result"] is None and refused["inputs"] == values
    ok = df[(~df["rate_limited"]) & (df["model"] == "breast_cancer")].iloc[0]
    assert ok["version"] == "2" and ok["result"]["lower"] == 0.7


def test_retry_after_is_seconds_to_next_token(tmp_path):
    settings = make_settings(tmp_path, RATE_LIMIT_DEFAULT="60")
    limiter = RateLimiter(settings)
    for _ in range(60):
        predict_for_user(FakeService(), limiter, None, username="u", session_id="s", model="iris_random_forest", values={})
    with pytest.raises(RateLimited, match=r"Try again in 1 s") as err:
        predict_for_user(FakeService(), limiter, None, username="u", session_id="s", model="iris_random_forest", values={})
    assert 0.5 <= err.value.retry_after_s <= 1.0  # 1 s per token, less the time the 60 calls took


def test_model_errors_are_audited_and_reraised(parts):
    limiter, audit = parts
    with pytest.raises(ModelUnavailable):
        predict_for_user(FakeService(fail=ModelUnavailable("no model yet")), limiter, audit,
                         username="bob", session_id="s", model="iris_random_forest", values={"a": 1})
    row = audit.query(username="bob").iloc[0]
    assert "ModelUnavailable" in row["error"] and not row["rate_limited"]


def test_a_broken_audit_never_breaks_the_prediction(parts):
    limiter, _ = parts
    result = predict_for_user(FakeService(), limiter, BrokenAudit(), username="u", session_id="s", model="iris_random_forest", values={})
    assert result.probability == 0.8


@pytest.mark.parametrize(
    "kwargs",
    [
        {"username": ""},
        {"username": "x" * 500},
        {"session_id": ""},
        {"model": ""},
        {"values": [1, 2]},
    ],
)
def test_bad_input(parts, kwargs):
    limiter, audit = parts
    service = FakeService()
    args = {"username": "u", "session_id": "s", "model": "iris_random_forest", "values": {}} | kwargs
    with pytest.raises(InvalidInput):
        predict_for_user(service, limiter, audit, **args)
    assert service.calls == []
    assert audit.query().empty
