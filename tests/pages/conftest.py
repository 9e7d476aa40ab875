"""AppTest fixtures: real limiter, audit log and user store on tmp stores; a fake service.

`studio` patches the ui.state accessors, so every page the AppTest runs talks to these
objects. `app(role)` returns an AppTest of app.py already logged in as a user of that role.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ui.state
from core.audit import AuditLog
from core.auth import UserStore
from core.config import Settings
from core.ratelimit import RateLimiter
from tests.conftest import make_settings
from tests.pages.fakes import FakeService

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PASSWORD = "correct-horse-battery"
TIMEOUT_S = 30


@dataclass
class Studio:
    settings: Settings
    service: FakeService
    limiter: RateLimiter
    audit: AuditLog
    users: UserStore


@pytest.fixture(autouse=True)
def _navigation_like_a_running_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A running server sets PagesManager.uses_pages_directory = False process-wide on the
    first st.navigation call; AppTest resets it to None before every run, so with our
    pages/ folder later runs would take Streamlit's legacy pages/ path and run the page
    without app.py. Emulate the server's steady state: every run goes through app.py."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def studio_overrides() -> dict[str, str]:
    """Override settings per test module (e.g. a tiny rate limit)."""
    return {}


@pytest.fixture
def studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, studio_overrides: dict[str, str]) -> Studio:
    settings = make_settings(tmp_path, **studio_overrides)
    service = FakeService()
    limiter = RateLimiter(settings, key_prefix=f"cms:test:{uuid.uuid4().hex}")
    service.attach_limiter(limiter)
    audit = AuditLog(settings.database_url)
    users = UserStore(settings.database_url, bcrypt_rounds=4)
    for role in ("admin", "clinician", "analyst"):
        users.create_user(f"{role}1", PASSWORD, role, name=f"{role.title()} One")
    monkeypatch.setattr(ui.state, "warm_up", lambda: None)
    monkeypatch.setattr(ui.state, "settings", lambda: settings)
    monkeypatch.setattr(ui.state, "service", lambda: service)
    monkeypatch.setattr(ui.state, "registry", lambda: service.registry)
    monkeypatch.setattr(ui.state, "limiter", lambda: limiter)
    monkeypatch.setattr(ui.state, "audit", lambda: audit)
    monkeypatch.setattr(ui.state, "user_store", lambda: users)
    st.cache_resource.clear()  # page-level caches (e.g. diagnostics per version)
    yield Studio(settings, service, limiter, audit, users)
    audit.flush()


def login(at: AppTest, studio: Studio, role: str) -> AppTest:
    """Seed the session as ui.auth_gate leaves it after a successful login."""
    from tests.pages import session_seed

    session_seed.seed(at, studio, f"{role}1")
    return at


@pytest.fixture
def app(studio: Studio) -> Callable[[str], AppTest]:
    def make(role: str | None) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
        if role is not None:
            login(at, studio, role)
        return at.run()

    return make


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Bytes given to each st.download_button, by key (AppTest cannot fetch the file)."""
    captured: dict[str, bytes] = {}
    original = st.download_button

    def recording(label, data, *args, **kwargs):
        captured[kwargs.get("key") or label] = data if isinstance(data, bytes) else str(data).encode()
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    return captured


def texts(at: AppTest, kind: str) -> list[str]:
    """Values of every element of one kind (error, warning, info, success, caption, markdown)."""
    return [str(e.value) for e in getattr(at, kind)]


def plotly_specs(at: AppTest) -> list[dict]:
    import json

    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def decode(values) -> list:
    """Plotly 6+ sends numeric arrays as {'dtype', 'bdata'} (base64): back to a list."""
    if isinstance(values, dict) and "bdata" in values:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return list(values)
