"""The one entry point pages and jobs use to predict for a logged-in user.

Order matters: rate limit (session AND user bucket) -> model -> audit row. A refused or
failed attempt is audited too, and auditing can never fail the prediction.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Protocol

from core.errors import InvalidInput, RateLimited
from core.ratelimit import Decision, retry_message

log = logging.getLogger(__name__)


class _Service(Protocol):
    def predict(self, name: str, values: Mapping[str, object]) -> Any: ...


class _Limiter(Protocol):
    def check_prediction(self, kind: str, session_id: str, username: str) -> Decision: ...


class _Audit(Protocol):
    def record(self, **kwargs: Any) -> None: ...


def limit_kind(model: str) -> str:
    """Cancer predictions have their own, tighter bucket."""
    return "cancer" if model.startswith("breast_cancer") else "default"


def predict_for_user(
    service: _Service,
    limiter: _Limiter,
    audit: _Audit | None,
    *,
    username: str,
    session_id: str,
    model: str,
    values: Mapping[str, object],
) -> Any:
    """Check both buckets (raises RateLimited), predict, record the audit row."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput("Model name must not be empty.", field="model")
    if not isinstance(values, Mapping):
        raise InvalidInput("Prediction input must be a mapping of feature name to value.", field="values")
    kind = limit_kind(model)
    decision = limiter.check_prediction(kind, session_id, username)
    if not decision.allowed:
        _audit(audit, username=username, model=model, inputs=values, rate_limited=True, error="rate limited")
        what = "cancer predictions" if kind == "cancer" else "predictions"
        raise RateLimited(f"Too many {what} for now. {retry_message(decision.retry_after_s)}", decision.retry_after_s)
    try:
        prediction = service.predict(model, values)
    except Exception as exc:
        _audit(audit, username=username, model=model, inputs=values, error=f"{type(exc).__name__}: {exc}")
        raise
    _audit(audit, username=username, model=model, inputs=values, result=prediction)
    return prediction


def _audit(audit: _Audit | None, **row: Any) -> None:
    if audit is None:
        return
    try:
        audit.record(**row)
    except Exception as exc:  # noqa: BLE001 - AuditLog.record never raises; a stand-in might
        log.warning("audit record failed (%s)", type(exc).__name__)
