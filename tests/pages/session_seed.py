"""A logged-in session as ui.auth_gate leaves it after a password login."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ui.auth_gate import session_keys_for


def seed(at: AppTest, studio, username: str) -> None:
    user = studio.users.get(username)
    assert user is not None, username
    for key, value in session_keys_for(user).items():
        at.session_state[key] = value
