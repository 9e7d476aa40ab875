"""Process-wide core objects for the pages, created once per server process.

Pages call these accessors (``state.service()``, ``state.limiter()``...) and never
build core objects themselves, so every browser session shares one model service, one
limiter, one audit log and one user store. Tests replace the accessors with
monkeypatch (``monkeypatch.setattr(ui.state, "service", lambda: fake)``); pages must
therefore look them up through the module (``from ui import state``) at run time.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, Mapping

import streamlit as st

if TYPE_CHECKING:  # pragma: no cover - typing only
    from core.audit import AuditLog
    from core.auth import UserStore
    from core.config import Settings
    from core.ratelimit import RateLimiter
    from core.registry import Registry
    from core.service import ModelService

SESSION_ID_KEY = "_cms_session_id"
log = logging.getLogger(__name__)
_warm_up_lock = threading.Lock()
_warm_up_started = False


def settings() -> "Settings":
    from core.config import get_settings

    return get_settings()


@st.cache_resource(show_spinner=False)
def limiter() -> "RateLimiter":
    from core.ratelimit import get_limiter

    return get_limiter()


@st.cache_resource(show_spinner=False)
def _started_service() -> "ModelService":
    from core.service import get_service

    service = get_service()  # started: loads champions, schedules missing training
    service.attach_limiter(limiter())
    return service


def warm_up() -> None:
    """Start the model service in a background thread, once per process.

    Importing MLflow and starting the service takes seconds on a cold process; done here,
    the first page (the login form) draws at once while champions load and missing
    models start training. service() later returns the same process singleton.
    """
    global _warm_up_started
    with _warm_up_lock:
        if _warm_up_started:
            return
        _warm_up_started = True

    def run() -> None:
        try:
            from core.ratelimit import get_limiter
            from core.service import get_service

            get_service().attach_limiter(get_limiter())
        except Exception:  # noqa: BLE001 - the pages show the error when they ask for the service
            log.exception("model service warm-up failed")

    threading.Thread(target=run, name="cms-warm-up", daemon=True).start()


def service() -> "ModelService":
    """The process's model service (started on first use, never blocks on training)."""
    return _started_service()


def registry() -> "Registry":
    """The service's MLflow registry (same client, same cache)."""
    return service().registry


@st.cache_resource(show_spinner=False)
def audit() -> "AuditLog":
    from core.audit import get_audit_log

    return get_audit_log(settings().database_url)


@st.cache_resource(show_spinner=False)
def user_store() -> "UserStore":
    from core.auth import get_user_store

    return get_user_store(settings().database_url)


def session_id() -> str:
    """A random id for this browser session (rate-limit key next to the username)."""
    if SESSION_ID_KEY not in st.session_state:
        st.session_state[SESSION_ID_KEY] = uuid.uuid4().hex
    return str(st.session_state[SESSION_ID_KEY])


def predict(username: str, model: str, values: Mapping[str, object]) -> Any:
    """The one way pages predict: this session's and this user's rate limits, the model
    service, then the audit trail (core.predicting)."""
    from core.predicting import predict_for_user

    return predict_for_user(
        service(), limiter(), audit(), username=username, session_id=session_id(), model=model, values=values
    )
