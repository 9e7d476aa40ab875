"""User store on SQLite and a throwaway PostgreSQL database; roles; the secret key file."""
from __future__ import annotations

import os
import stat
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.auth import (
    PAGE_ROLES,
    ROLES,
    UnknownUser,
    UserExists,
    UserStore,
    allowed_pages,
    can_access,
    generate_password,
    make_engine,
    require_access,
    resolve_secret_key,
    users_summary,
)
from core.config import load_settings
from core.errors import ConfigError, InvalidInput, PermissionDenied
from tests.conftest import make_settings, throwaway_postgres_database

GOOD = "correct horse 1"


@pytest.fixture(scope="module")
def postgres_url():
    with throwaway_postgres_database("cms_test_auth") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/app.db"
    else:
        url = request.getfixturevalue("postgresql_url")
    s = UserStore(url, bcrypt_rounds=4)
    if request.param == "postgresql":
        with s.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM users"))
    yield s
    s.engine.dispose()


@pytest.fixture(scope="module")
def postgresql_url(postgres_url):
    return postgres_url


def _snapshot(store: UserStore) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM users ORDER BY username")).all()]


def test_create_get_list_and_password(store):
    user = store.create_user("Alice", GOOD, "clinician", name="Alice Smith", email="alice@example.org")
    assert user.username == "alice" and user.role == "clinician" and not user.disabled
    assert user.created_at.tzinfo is not None and user.last_login_at is None
    assert store.get("ALICE") == user
    assert [u.username for u in store.list_users()] == ["alice"]
    assert store.verify_password("alice", GOOD)
    assert not store.verify_password("alice", GOOD + "x")
    assert not store.verify_password("nobody", GOOD)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$2b$") and GOOD not in stored
    creds = store.credentials()["usernames"]["alice"]
    assert creds["roles"] == ["clinician"] and creds["password"] == stored
    assert "password_hash" not in users_summary(store.list_users())[0]
    with pytest.raises(UserExists):
        store.create_user("alice", GOOD, "analyst")


def test_admin_functions(store):
    store.create_user("root", GOOD, "admin")
    store.create_user("bob", GOOD, "analyst")
    assert store.set_role("bob", "clinician").role == "clinician"
    store.reset_password("bob", "another pass 2")
    assert store.verify_password("bob", "another pass 2") and not store.verify_password("bob", GOOD)
    disabled = store.disable("bob")
    assert disabled.disabled and disabled.sessions_valid_after is not None
    assert not store.verify_password("bob", "another pass 2")
    assert "bob" not in store.credentials()["usernames"]
    assert not store.enable("bob").disabled
    assert store.verify_password("bob", "another pass 2")
    store.record_login("bob")
    assert store.get("bob").last_login_at is not None
    assert store.update_details("bob", name="Bob B", email="b@example.org").name == "Bob B"
    assert store.count() == 2
    for call in (lambda: store.set_role("ghost", "admin"), lambda: store.disable("ghost"), lambda: store.reset_password("ghost", GOOD)):
        with pytest.raises(UnknownUser):
            call()


def test_last_enabled_admin_cannot_be_disabled_or_demoted(store):
    store.create_user("root", GOOD, "admin")
    with pytest.raises(PermissionDenied, match="last enabled admin"):
        store.disable("root")
    with pytest.raises(PermissionDenied):
        store.set_role("root", "analyst")
    store.create_user("root2", GOOD, "admin")
    assert store.disable("root").disabled


def test_sessions_valid_after_revocation(store):
    store.create_user("carol", GOOD, "analyst")
    before = time.time()
    assert store.session_valid("carol", before)
    time.sleep(0.01)
    store.revoke_sessions("carol")
    # a session (or cookie) issued before the logout no longer counts; a new one does
    assert not store.session_valid("carol", before)
    assert store.session_user("carol", before) is None
    assert store.session_valid("carol", time.time() + 0.001)
    assert store.session_user("carol", time.time() + 0.001).username == "carol"
    store.create_user("root", GOOD, "admin")
    store.disable("carol")
    assert not store.session_valid("carol", time.time() + 10)
    assert not store.session_valid("nobody", time.time())
    assert not store.session_valid("", time.time())
    # reset password also ends sessions
    store.enable("carol")
    issued = datetime.now(timezone.utc)
    assert store.session_valid("carol", issued + timedelta(seconds=1))
    store.reset_password("carol", "brand new pass")
    assert not store.session_valid("carol", issued)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"username": ""}, "username"),
        ({"username": "   "}, "username"),
        ({"username": "x" * 500}, "username"),
        ({"username": "bad name"}, "username"),
        ({"password": ""}, "password"),
        ({"password": "short"}, "password"),
        ({"password": "p" * 73}, "password"),
        ({"password": "é" * 37}, "password"),  # 74 bytes, 37 characters
        ({"password": " padded password "}, "password"),
        ({"role": "superuser"}, "role"),
        ({"role": None}, "role"),
        ({"email": "not-an-email"}, "email"),
        ({"name": "n" * 500}, "name"),
    ],
)
def test_bad_input_changes_nothing(store, kwargs, field):
    store.create_user("existing", GOOD, "analyst")
    before = _snapshot(store)
    args = {"username": "newbie", "password": GOOD, "role": "clinician", "name": None, "email": None} | kwargs
    with pytest.raises(InvalidInput) as err:
        store.create_user(args["username"], args["password"], args["role"], name=args["name"], email=args["email"])
    assert err.value.field == field and str(err.value)
    # the same bad values through the admin functions
    if field == "password":
        with pytest.raises(InvalidInput):
            store.reset_password("existing", args["password"])
    if field == "role":
        with pytest.raises(InvalidInput):
            store.set_role("existing", args["role"])
    if field == "username":
        for call in (store.disable, store.enable, store.revoke_sessions, store.get):
            with pytest.raises(InvalidInput):
                call(args["username"])
    assert _snapshot(store) == before


def test_password_of_exactly_72_bytes_works(store):
    password = "a" * 72
    store.create_user("max", password, "analyst")
    assert store.verify_password("max", password)
    assert not store.verify_password("max", password + "b")


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("", "empty"),
        ("mysql://u@h/db", "not supported"),
        ("sqlite://", "SQLite file"),
        ("postgresql:///nohost", "host"),
        ("::::", "malformed"),
    ],
)
def test_malformed_database_url(url, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_engine(url)


def test_settings_reject_malformed_database_url(tmp_path):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        make_settings(tmp_path, DATABASE_URL="postgres://u@h/db")


def test_unreachable_postgres_is_a_config_error():
    with pytest.raises(ConfigError, match="Cannot open the user database"):
        UserStore("postgresql://postgres@127.0.0.1:1/none", bcrypt_rounds=4)


def test_roles_and_page_access():
    assert set(ROLES) == {"admin", "clinician", "analyst"}
    assert allowed_pages("clinician") == ["iris", "cancer"]
    assert allowed_pages("analyst") == ["iris", "cancer", "diagnostics"]
    assert set(allowed_pages("admin")) == set(PAGE_ROLES)
    assert not can_access("clinician", "model_ops") and not can_access("clinician", "users")
    assert not can_access(None, "iris") and not can_access("admin", "no_such_page")
    with pytest.raises(PermissionDenied, match="admin"):
        require_access("clinician", "users")
    with pytest.raises(PermissionDenied, match="Unknown page"):
        require_access("admin", "nope")
    require_access("analyst", "diagnostics")


def test_generated_passwords_are_valid_and_distinct():
    a, b = generate_password(), generate_password()
    assert a != b and len(a) == 20


def test_dev_secret_key_is_generated_once_with_owner_only_mode(tmp_path):
    settings = make_settings(tmp_path / "data")
    key = resolve_secret_key(settings)
    path = tmp_path / "data" / "secret_key"
    assert len(key.encode()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_secret_key(settings) == key
    os.chmod(path, 0o644)
    assert resolve_secret_key(settings) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short")
    with pytest.raises(ConfigError, match="shorter"):
        resolve_secret_key(settings)


def test_secret_key_from_settings_and_required_in_production(tmp_path):
    secret = "s" * 40
    assert resolve_secret_key(make_settings(tmp_path, SECRET_KEY=secret)) == secret
    assert not (tmp_path / "secret_key").exists()
    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        load_settings({"APP_ENV": "production", "DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="too short"):
        load_settings({"SECRET_KEY": "x" * 31, "DATA_DIR": str(tmp_path)})
