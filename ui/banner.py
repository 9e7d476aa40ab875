"""The status banner above every page: fallback serving, training, degraded rate limiter."""
from __future__ import annotations

from typing import Any

import streamlit as st

from ui import state

BAYES = "breast_cancer_bayes"
STUB = "breast_cancer_stub"
POLL_S = 3.0


def banner_messages(health: Any, *, show_errors: bool = True) -> list[tuple[str, str]]:
    """(level, text) lines for a ServiceHealth; level is 'info', 'warning' or 'error'.
    Training failures are for admins (show_errors); others only see their effect."""
    messages: list[tuple[str, str]] = []
    models = health.models
    bayes, stub = models.get(BAYES), models.get(STUB)
    if bayes is not None and bayes.version is None:
        if stub is not None and stub.version is not None:
            messages.append(
                ("warning", "Breast cancer answers come from the **fallback** model while the Bayesian model "
                 f"is {_describe(bayes)}.")
            )
        else:
            messages.append(("warning", f"No breast cancer model is ready yet (Bayesian model {_describe(bayes)})."))
    training = [s for s in models.values() if s.state in ("queued", "training") and not (s.name == BAYES and bayes.version is None)]
    if training:
        parts = ", ".join(f"{s.name} ({_describe(s)})" for s in training)
        messages.append(("info", f"Training in the background: {parts}. Current versions keep serving."))
    failed = [s for s in models.values() if s.state == "failed"] if show_errors else []
    for s in failed:
        messages.append(("error", f"{s.name} failed: {s.last_error or 'see model operations'}"))
    limiter = health.limiter
    if limiter is not None and getattr(limiter, "degraded", False):
        messages.append(
            ("warning", f"The rate limiter is degraded ({limiter.detail}); limits still hold, per app process.")
        )
    return messages


def _describe(status: Any) -> str:
    if status.state == "training":
        return f"training, {status.progress:.0%}"
    return status.state


def _busy(statuses: Any) -> bool:
    """Something will change by itself soon: a model trains, waits to train or is still
    loading (no version yet). Then the banner redraws itself until all is settled."""
    return any(s.state in ("queued", "training") or (s.version is None and s.state != "failed") for s in statuses.values())


def _draw(show_errors: bool) -> None:
    try:
        health = state.service().health()
    except Exception:  # noqa: BLE001 - the banner must never break a page
        st.warning("Model status is unavailable right now.")
        return
    for level, text in banner_messages(health, show_errors=show_errors):
        getattr(st, level)(text)


def service_banner(*, show_errors: bool = False) -> None:
    """Draw the banner; while something trains it redraws itself every few seconds."""
    try:
        busy = _busy(state.service().status())  # models only: health() would also probe the limiter, as _draw does
    except Exception:  # noqa: BLE001
        busy = False
    st.fragment(_draw, run_every=POLL_S if busy else None)(show_errors)
