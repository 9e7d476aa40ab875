"""One place that turns a core error into one clear message on the page.

Pages wrap each action in `with user_errors():`. A typed core error shows its own
message (str(error) is written for users); a rate-limited action says when to try
again; anything unexpected is logged with its traceback and shown as one sentence.
Streamlit's own control flow (st.stop, st.rerun) derives from BaseException and is
never caught here.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.errors import InvalidInput, ModelUnavailable, PermissionDenied, RateLimited, StudioError

log = logging.getLogger(__name__)


def retry_text(seconds: float) -> str:
    """'1 second', '12 seconds', '2 minutes': when a refused action may be tried again."""
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{math.ceil(whole / 60)} minutes"


def rate_limited_message(error: RateLimited) -> str:
    """Core's message (it names the limit and the wait); ours if it has none."""
    return str(error) or f"Too many requests: please try again in {retry_text(error.retry_after_s)}."


def show_error(error: BaseException, *, action: str | None = None) -> None:
    """Draw one message for an error; never a traceback."""
    prefix = f"{action}: " if action else ""
    if isinstance(error, RateLimited):
        st.warning(rate_limited_message(error), icon="⏳")
    elif isinstance(error, PermissionDenied):
        st.error(f"{prefix}{error}", icon="🔒")
    elif isinstance(error, InvalidInput):
        st.error(f"{prefix}{error}", icon="✋")
    elif isinstance(error, ModelUnavailable):
        st.warning(f"{prefix}{error}", icon="⏳")
    elif isinstance(error, StudioError):
        st.error(f"{prefix}{error}")
    else:
        log.exception("unexpected error%s", f" during {action}" if action else "", exc_info=error)
        st.error(f"{prefix}Something went wrong on our side; it has been logged. Please try again.")


@contextmanager
def user_errors(action: str | None = None) -> Iterator[None]:
    """Run a page action; a failure becomes one message and the rest of the page still draws."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - every error becomes one message
        show_error(error, action=action)
