"""Login gate: streamlit-authenticator 0.4.2 draws the form and keeps the cookie; we close
its gaps (see DESIGN.md):

1. Our login limiter (core.ratelimit, strict window per username and per client address)
   runs before any password check: a refused attempt never reaches bcrypt.
2. Its max_login_attempts lock is never used, so there is no permanent lockout.
3. Logout revokes server-side: the user's `sessions_valid_after` moves to now, and every
   session or cookie issued before it is refused (a copied cookie stops working).
   The package's cookie JWT carries only username and exp_date, so we add `cms_iat`
   (issue time) to it; for a cookie without it we use exp_date - expiry.
4. Disabled users, deleted users and revoked sessions are refused on every run, even with
   a live cookie or an open browser tab; the role comes from the store on every run.

We hook the package at two documented-in-source points of 0.4.2:
`Authenticate.authentication_controller.login` (called with username/password from the
form, or with token=<decoded cookie>) and `cookie_controller.cookie_model._token_encode`.
tests/ui/test_auth_gate.py checks they still exist.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt
import streamlit as st
import streamlit_authenticator as stauth

from core.auth import PAGE_ROLES, ROLES, User, can_access, normalize_username, resolve_secret_key
from core.errors import InvalidInput
from core.ratelimit import retry_message
from ui import state

log = logging.getLogger(__name__)

LOGIN_AT_KEY = "_cms_login_at"  # epoch seconds when this session's credential was issued
NOTICE_KEY = "_cms_auth_notice"  # (level, message) shown above the login form
AUTH_KEY = "_cms_authenticator"  # this run's Authenticate object (for logout_button)
PENDING_COOKIE_KEY = "_cms_pending_cookie"
COOKIE_IAT_CLAIM = "cms_iat"
FORM_KEY = "cms_login"
LOGOUT_KEY = "cms_logout"
_AUTH_STATE_KEYS = ("name", "username", "authentication_status", "email", "roles")
_BAD_LOGIN = "Username or password is incorrect."


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in user for this run, read from the user store (not the cookie)."""

    username: str
    name: str
    email: str | None
    role: str
    login_at: float

    def can_open(self, page_key: str) -> bool:
        return can_access(self.role, page_key)


# ---- public API ----------------------------------------------------------------------------
def require_user(*, stop: bool = True) -> CurrentUser | None:
    """The logged-in user, checked against the store on this run. When nobody is logged in
    it draws the login form and stops the run (or returns None with stop=False)."""
    settings = state.settings()
    store = state.user_store()
    ss = st.session_state
    authenticator = _authenticator(settings, store)
    if ss.get("authentication_status"):
        user = _current_from_session(store)
        if user is not None:
            return user
        _end_session(authenticator, "Your session has ended. Please log in again.")
    slot = st.empty()
    with slot.container():
        _show_notice()
        authenticator.login(location="main", key=FORM_KEY, fields={"Form name": "Log in", "Login": "Log in"})
        _show_notice()
    pending_cookie = ss.pop(PENDING_COOKIE_KEY, False)
    if ss.get("authentication_status"):
        user = _current_from_session(store)
        if user is not None:
            slot.empty()  # the form goes; the app draws in this same run
            if pending_cookie:
                authenticator._cms_set_cookie_now()  # type: ignore[attr-defined]
            return user
    if stop:
        st.stop()
    return None


def current_user() -> CurrentUser | None:
    """The user require_user() accepted on this session, re-checked; None if not logged in."""
    if not st.session_state.get("authentication_status"):
        return None
    return _current_from_session(state.user_store())


def require_role(*roles: str) -> CurrentUser:
    """Top of a restricted page: stop with a clear message unless the user has one of roles."""
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise ValueError(f"require_role needs roles from {ROLES}, got {roles!r}")
    user = current_user()
    if user is None:
        st.warning("Please log in first.", icon="🔒")
        st.stop()
    if user.role not in roles:
        st.error(f"This page is for {' or '.join(roles)} users; you are signed in as {user.role}.", icon="🔒")
        st.stop()
    return user


def require_page(page_key: str) -> CurrentUser:
    """Like require_role, with the roles of core.auth.PAGE_ROLES[page_key]."""
    if page_key not in PAGE_ROLES:
        raise ValueError(f"Unknown page key {page_key!r}: add it to core.auth.PAGE_ROLES.")
    return require_role(*PAGE_ROLES[page_key])


def logout_button(label: str = "Log out") -> None:
    """A button (in the caller's container) that logs out and revokes server-side."""
    authenticator: stauth.Authenticate | None = st.session_state.get(AUTH_KEY)
    if authenticator is None or not st.session_state.get("authentication_status"):
        return
    store = state.user_store()

    def revoke(info: dict[str, Any]) -> None:
        username = info.get("username")
        if username:
            try:
                store.revoke_sessions(username)
            except Exception:  # noqa: BLE001 - logout still clears this session
                log.exception("could not revoke sessions server-side")
        st.session_state.pop(LOGIN_AT_KEY, None)

    authenticator.logout(label, location="main", key=LOGOUT_KEY, callback=revoke)
    if not st.session_state.get("authentication_status"):
        st.session_state[NOTICE_KEY] = ("info", "You have logged out.")
        st.rerun()


def session_keys_for(user: User, login_at: float | None = None) -> dict[str, object]:
    """Session-state keys of a session logged in as `user` (for AppTest fixtures)."""
    return {
        "authentication_status": True,
        "username": user.username,
        "name": user.name,
        "email": user.email,
        "roles": [user.role],
        "logout": None,
        LOGIN_AT_KEY: time.time() if login_at is None else login_at,
    }


# ---- internals -----------------------------------------------------------------------------
def _authenticator(settings: Any, store: Any) -> stauth.Authenticate:
    """One Authenticate per run (its cookie component may be drawn once per run), with
    fresh credentials from the store and our two hooks installed."""
    authenticator = stauth.Authenticate(
        store.credentials(),
        settings.auth_cookie_name,
        resolve_secret_key(settings),
        settings.auth_cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,  # 0.4.2 reads the cookie from st.context: no need to wait
    )
    controller = authenticator.authentication_controller
    cookie_model = authenticator.cookie_controller.cookie_model
    original_login = controller.login
    original_set_cookie = cookie_model.set_cookie

    def guarded_login(*args: Any, **kwargs: Any) -> bool | None:
        names = ("username", "password", "max_concurrent_users", "max_login_attempts")
        call = dict(zip(names, args)) | kwargs
        token = call.get("token")
        if token is not None and not call.get("username"):
            return _cookie_login(original_login, store, settings, token)
        return _password_login(original_login, store, state.limiter(), call.get("username"), call.get("password"))

    def encode_with_issue_time() -> str:
        payload = {
            "username": st.session_state["username"],
            "exp_date": cookie_model.exp_date,
            COOKIE_IAT_CLAIM: float(st.session_state.get(LOGIN_AT_KEY) or time.time()),
        }
        return jwt.encode(payload, cookie_model.cookie_key, algorithm="HS256")

    def deferred_set_cookie() -> None:
        # the form calls this on success; require_user sets the cookie after removing
        # the form, so the cookie component is not drawn inside the removed container
        st.session_state[PENDING_COOKIE_KEY] = True

    controller.login = guarded_login
    cookie_model._token_encode = encode_with_issue_time
    cookie_model.set_cookie = deferred_set_cookie
    authenticator._cms_set_cookie_now = original_set_cookie  # type: ignore[attr-defined]
    st.session_state[AUTH_KEY] = authenticator
    return authenticator


def _cookie_issued_at(token: dict[str, Any], expiry_days: float) -> float | None:
    issued = token.get(COOKIE_IAT_CLAIM)
    if isinstance(issued, (int, float)):
        return float(issued)
    expires = token.get("exp_date")
    if isinstance(expires, (int, float)):
        return float(expires) - expiry_days * 86_400
    return None


def _cookie_login(original_login: Any, store: Any, settings: Any, token: dict[str, Any]) -> None:
    """Re-login from the cookie only if the server still accepts it."""
    username = token.get("username")
    issued = _cookie_issued_at(token, settings.auth_cookie_expiry_days)
    if not isinstance(username, str) or issued is None or not store.session_valid(username, issued):
        st.session_state[NOTICE_KEY] = ("info", "Your session has ended. Please log in again.")
        _delete_cookie()
        return None
    original_login(token=token)
    if st.session_state.get("authentication_status"):
        st.session_state[LOGIN_AT_KEY] = issued
    return None


def _password_login(original_login: Any, store: Any, limiter: Any, username: Any, password: Any) -> bool | None:
    ss = st.session_state
    if not isinstance(username, str) or not username.strip() or not isinstance(password, str) or not password:
        ss[NOTICE_KEY] = ("warning", "Enter your username and password.")
        return None
    raw = username.strip().lower()
    limiter_name = raw if len(raw) <= 200 else hashlib.sha256(raw.encode()).hexdigest()
    decision = limiter.check_login(limiter_name, _client_address())
    if not decision.allowed:  # before any password check: no bcrypt for a refused attempt
        ss[NOTICE_KEY] = ("error", f"Too many login attempts. {retry_message(decision.retry_after_s)}")
        return False
    try:
        name = normalize_username(raw)
        user = store.get(name)
    except InvalidInput:
        name, user = "unknown", None
    if user is None or user.disabled:
        store.verify_password(name, password)  # one bcrypt like a real check; always False here
        ss[NOTICE_KEY] = ("error", _BAD_LOGIN)
        ss["authentication_status"] = False
        return False
    login_at = time.time()
    ok = original_login(name, password, None, None, single_session=False, callback=None)
    if ok:
        ss[LOGIN_AT_KEY] = login_at
        ss.pop(NOTICE_KEY, None)
        try:
            store.record_login(name)
        except Exception:  # noqa: BLE001 - a failed timestamp must not fail the login
            log.warning("could not record last login time")
        return True
    ss[NOTICE_KEY] = ("error", _BAD_LOGIN)
    return False


def _current_from_session(store: Any) -> CurrentUser | None:
    ss = st.session_state
    username = ss.get("username")
    login_at = ss.get(LOGIN_AT_KEY)
    if not isinstance(username, str) or not isinstance(login_at, (int, float)):
        return None
    user = store.session_user(username, float(login_at))
    if user is None:
        return None
    return CurrentUser(user.username, user.name, user.email, user.role, float(login_at))


def _end_session(authenticator: stauth.Authenticate, message: str) -> None:
    """Clear this session's login without revoking others (the store already refused it)."""
    ss = st.session_state
    for key in _AUTH_STATE_KEYS:
        ss[key] = None
    ss.pop(LOGIN_AT_KEY, None)
    ss["logout"] = True  # the package then ignores the (refused) cookie for this session
    ss[NOTICE_KEY] = ("info", message)
    _delete_cookie()


def _delete_cookie() -> None:
    authenticator: stauth.Authenticate | None = st.session_state.get(AUTH_KEY)
    if authenticator is None:
        return
    try:
        authenticator.cookie_controller.delete_cookie()
    except Exception:  # noqa: BLE001 - the server refuses the cookie anyway
        log.debug("cookie delete failed")


def _client_address() -> str | None:
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - not available outside a browser session
        return None
    # None on localhost (and a stand-in object under AppTest): then only the username counts
    return address if isinstance(address, str) and address.strip() else None


def _show_notice() -> None:
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        level, message = notice
        {"error": st.error, "warning": st.warning}.get(level, st.info)(message)
