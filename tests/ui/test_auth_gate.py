"""ui.auth_gate with AppTest: login, limiter before bcrypt, logout revocation, disabled
users, roles. Cookies cannot be seeded in AppTest, so the cookie the package would set is
captured from its CookieManager and fed back through the package's st.context.cookies."""
from __future__ import annotations

import importlib.metadata
import time
import types
import uuid
from pathlib import Path

import bcrypt
import extra_streamlit_components as stx
import jwt
import pytest
import streamlit
import streamlit_authenticator as stauth
from streamlit.testing.v1 import AppTest
from streamlit_authenticator.models import cookie_model as cookie_module

import ui.state
from core.auth import UserStore, resolve_secret_key
from core.ratelimit import RateLimiter
from tests.conftest import make_settings
from ui import auth_gate

APP = str(Path(__file__).with_name("gate_app.py"))
PASSWORD = "right password 1"


class Env:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
        self.settings = make_settings(tmp_path, **overrides)
        self.users = UserStore(self.settings.database_url, bcrypt_rounds=4)
        self.limiter = RateLimiter(self.settings, key_prefix=f"gate:{uuid.uuid4().hex}")
        self.jar: dict[str, str] = {}  # what the browser sends as cookies
        self.set_cookies: list[tuple[str, str]] = []  # what the package asked the browser to store
        monkeypatch.setattr(ui.state, "settings", lambda: self.settings)
        monkeypatch.setattr(ui.state, "user_store", lambda: self.users)
        monkeypatch.setattr(ui.state, "limiter", lambda: self.limiter)
        env = self

        class StWithCookies:
            context = types.SimpleNamespace(cookies=self.jar)

            def __getattr__(self, name):
                return getattr(streamlit, name)

        monkeypatch.setattr(cookie_module, "st", StWithCookies())
        original_set = stx.CookieManager.set

        def recording_set(manager, cookie, val, *args, **kwargs):
            env.set_cookies.append((cookie, val))
            return original_set(manager, cookie, val, *args, **kwargs)

        monkeypatch.setattr(stx.CookieManager, "set", recording_set)
        self.bcrypt_checks = 0
        original_check = bcrypt.checkpw

        def counting_check(password, hashed):
            env.bcrypt_checks += 1
            return original_check(password, hashed)

        monkeypatch.setattr(bcrypt, "checkpw", counting_check)

    def session(self) -> AppTest:
        return AppTest.from_file(APP, default_timeout=30).run()


def _login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def _greeting(at: AppTest) -> str | None:
    return next((t for t in _texts(at, "markdown") if t.startswith("Hello")), None)


def _shows_form(at: AppTest) -> bool:
    return [t.label for t in at.text_input] == ["Username", "Password"]


@pytest.fixture
def env(tmp_path, monkeypatch) -> Env:
    e = Env(tmp_path, monkeypatch)
    e.users.create_user("alice", PASSWORD, "clinician", name="Alice")
    e.users.create_user("root", PASSWORD, "admin")
    return e


def test_the_package_points_we_hook_still_exist(env):
    assert importlib.metadata.version("streamlit-authenticator") == "0.4.2"
    at = env.session()
    authenticator = at.session_state[auth_gate.AUTH_KEY]
    assert isinstance(authenticator, stauth.Authenticate)
    assert callable(authenticator.authentication_controller.login)
    assert hasattr(authenticator.cookie_controller.cookie_model, "_token_encode")


def test_login_sets_a_cookie_with_issue_time_and_the_cookie_logs_in(env):
    at = env.session()
    assert _shows_form(at) and _greeting(at) is None
    at = _login(at, "Alice", PASSWORD)
    assert not at.exception
    assert _greeting(at) == "Hello alice (clinician)"
    assert not _shows_form(at)
    assert env.users.get("alice").last_login_at is not None
    assert [name for name, _ in env.set_cookies] == ["cms_auth"]
    claims = jwt.decode(env.set_cookies[0][1], resolve_secret_key(env.settings), algorithms=["HS256"])
    assert claims["username"] == "alice"
    assert abs(claims[auth_gate.COOKIE_IAT_CLAIM] - at.session_state[auth_gate.LOGIN_AT_KEY]) < 1e-6
    # a new browser session presenting that cookie is logged in without the form
    env.jar["cms_auth"] = env.set_cookies[0][1]
    other = env.session()
    assert _greeting(other) == "Hello alice (clinician)" and not _shows_form(other)


def test_logout_revokes_a_copied_cookie_and_other_sessions(env):
    at = _login(env.session(), "alice", PASSWORD)
    env.jar["cms_auth"] = env.set_cookies[0][1]  # the attacker's copy, taken before logout
    tab2 = env.session()
    assert _greeting(tab2)
    at.button(key=auth_gate.LOGOUT_KEY).click().run()
    assert _shows_form(at) and "You have logged out." in _texts(at, "info")
    assert env.users.get("alice").sessions_valid_after is not None
    # the copy no longer works in a new session ...
    copy = env.session()
    assert _shows_form(copy) and _greeting(copy) is None
    assert "Your session has ended. Please log in again." in _texts(copy, "info")
    # ... and the other open tab is logged out on its next run
    tab2.run()
    assert _shows_form(tab2) and _greeting(tab2) is None
    # logging in again works and issues a cookie that is accepted
    at = _login(at, "alice", PASSWORD)
    assert _greeting(at)
    env.jar["cms_auth"] = env.set_cookies[-1][1]
    assert _greeting(env.session())


def test_package_style_cookie_without_issue_time_is_judged_by_its_expiry(env):
    secret = resolve_secret_key(env.settings)
    expiry_s = env.settings.auth_cookie_expiry_days * 86_400
    issued = time.time() - 5
    env.jar["cms_auth"] = jwt.encode({"username": "alice", "exp_date": issued + expiry_s}, secret, algorithm="HS256")
    assert _greeting(env.session())
    env.users.revoke_sessions("alice")
    assert _greeting(env.session()) is None
    # a forged cookie (wrong key) is refused
    env.jar["cms_auth"] = jwt.encode({"username": "root", "exp_date": time.time() + 999, "cms_iat": time.time()}, "x" * 40, algorithm="HS256")
    assert _greeting(env.session()) is None


def test_wrong_password_then_limiter_refuses_before_any_bcrypt(env):
    at = env.session()
    for _ in range(3):
        at = _login(at, "alice", "wrong password")
        assert "Username or password is incorrect." in _texts(at, "error")
    checks = env.bcrypt_checks
    assert checks == 3
    # the 4th attempt within 20 s is refused, even with the right password, and costs no bcrypt
    at = _login(at, "alice", PASSWORD)
    assert _greeting(at) is None
    assert "Too many login attempts. Try again in 20 s." in _texts(at, "error")
    assert env.bcrypt_checks == checks
    # also from a brand-new session (a reload)
    fresh = _login(env.session(), "ALICE", PASSWORD)
    assert any(t.startswith("Too many login attempts") for t in _texts(fresh, "error"))
    assert env.bcrypt_checks == checks
    # another user is not locked out
    assert _greeting(_login(env.session(), "root", PASSWORD)) == "Hello root (admin)"


def test_no_permanent_lockout(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch, RATE_LIMIT_LOGIN_WINDOW_S="4")
    e.users.create_user("bob", PASSWORD, "analyst")
    at = e.session()
    for _ in range(3):
        at = _login(at, "bob", "wrong password")
    at = _login(at, "bob", PASSWORD)
    message = next(t for t in _texts(at, "error") if t.startswith("Too many login attempts"))
    wait_s = int(message.split("Try again in ")[1].split(" s")[0])
    assert 1 <= wait_s <= 4
    time.sleep(wait_s + 0.1)
    at = _login(at, "bob", PASSWORD)
    assert _greeting(at) == "Hello bob (analyst)"


def test_disabled_user_is_refused_everywhere(env):
    at = _login(env.session(), "alice", PASSWORD)
    env.jar["cms_auth"] = env.set_cookies[0][1]
    env.users.disable("alice")
    # the open session ends on its next run
    at.run()
    assert _greeting(at) is None and _shows_form(at)
    # the live cookie is refused
    assert _greeting(env.session()) is None
    # the password is refused, with the same message as a wrong one
    at = _login(env.session(), "alice", PASSWORD)
    assert _greeting(at) is None
    assert "Username or password is incorrect." in _texts(at, "error")
    # enabled again: the old cookie stays dead (disable revoked it), a new login works
    env.users.enable("alice")
    assert _greeting(env.session()) is None
    assert _greeting(_login(env.session(), "alice", PASSWORD))


def test_unknown_user_and_empty_form(env):
    at = _login(env.session(), "nobody", PASSWORD)
    assert "Username or password is incorrect." in _texts(at, "error")
    assert env.bcrypt_checks == 1  # same work as for a real user: no timing hint
    at = _login(env.session(), "", "")
    assert "Enter your username and password." in _texts(at, "warning")
    at = _login(env.session(), "x" * 500, PASSWORD)
    assert "Username or password is incorrect." in _texts(at, "error")


def test_roles_are_enforced_and_read_from_the_store_each_run(env):
    at = AppTest.from_file(APP, default_timeout=30)
    for key, value in auth_gate.session_keys_for(env.users.get("alice")).items():
        at.session_state[key] = value
    at.session_state["want_admin"] = True
    at.run()
    assert _greeting(at) == "Hello alice (clinician)"
    assert "admin area" not in _texts(at, "markdown")
    assert any("This page is for admin users" in t for t in _texts(at, "error"))
    # a role change by an admin applies on the next run, without logging in again
    env.users.set_role("alice", "admin")
    at.run()
    assert "admin area" in _texts(at, "markdown")
    # a session whose login time predates a revocation is refused
    stale = AppTest.from_file(APP, default_timeout=30)
    for key, value in auth_gate.session_keys_for(env.users.get("root"), login_at=time.time() - 60).items():
        stale.session_state[key] = value
    env.users.revoke_sessions("root")
    stale.run()
    assert _greeting(stale) is None and _shows_form(stale)


def test_require_role_rejects_programming_errors():
    with pytest.raises(ValueError):
        auth_gate.require_role("superuser")
    with pytest.raises(ValueError):
        auth_gate.require_page("no_such_page")
