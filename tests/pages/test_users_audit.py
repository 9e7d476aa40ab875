"""User management and the audit trail (admin pages) against the real user store and audit log."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from tests.pages.conftest import PASSWORD, texts

USERS = "pages/users.py"
AUDIT = "pages/audit.py"


def _users(app):
    return app("admin").switch_page(USERS).run()


def _form_button(at, label):
    return next(b for b in at.button if b.label == label)


def test_users_table_lists_every_user_without_hashes(app, studio):
    at = _users(app)
    table = at.dataframe[0].value
    assert list(table["username"]) == ["admin1", "analyst1", "clinician1"]
    assert list(table["role"]) == ["admin", "analyst", "clinician"]
    assert not [c for c in table.columns if "hash" in c or "password" in c]


def test_add_user_with_given_and_generated_password(app, studio):
    at = _users(app)
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input("nurse.ann")
    inputs["Full name"].input("Ann Nurse")
    inputs["Password (leave empty to generate one)"].input("a-long-password-1")
    _form_button(at, "Add user").click().run()
    assert not at.exception
    assert "Added nurse.ann (clinician)." in texts(at, "success")
    assert studio.users.verify_password("nurse.ann", "a-long-password-1")
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input("dr.bob")
    _form_button(at, "Add user").click().run()
    (shown,) = [i for i in texts(at, "info") if "Generated password" in i]
    generated = shown.split("`")[1]
    assert studio.users.verify_password("dr.bob", generated)


def test_duplicate_and_invalid_users_get_one_message(app, studio):
    at = _users(app)
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input("admin1")
    _form_button(at, "Add user").click().run()
    assert not at.exception
    assert texts(at, "error") == ["Add user: User 'admin1' already exists."]
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input("Bad Name!")
    _form_button(at, "Add user").click().run()
    (error,) = texts(at, "error")
    assert error.startswith("Add user:") and not at.exception


def test_change_role_reset_password_disable_enable(app, studio):
    at = _users(app)
    at.selectbox(key="users_role_user").set_value("clinician1")
    at.selectbox(key="users_role_role").set_value("analyst")
    _form_button(at, "Change role").click().run()
    assert "clinician1 is now analyst." in texts(at, "success")
    assert studio.users.get("clinician1").role == "analyst"

    at.selectbox(key="users_password_user").set_value("analyst1")
    next(t for t in at.text_input if t.label.startswith("New password")).input("brand-new-password")
    _form_button(at, "Reset password").click().run()
    assert studio.users.verify_password("analyst1", "brand-new-password")
    assert not studio.users.verify_password("analyst1", PASSWORD)
    assert studio.users.get("analyst1").sessions_valid_after is not None

    at.selectbox(key="users_access_user").set_value("analyst1")
    _form_button(at, "Disable").click().run()
    assert studio.users.get("analyst1").disabled
    _form_button(at, "Enable").click().run()
    assert not studio.users.get("analyst1").disabled


def test_cannot_disable_yourself_or_the_last_admin(app, studio):
    at = _users(app)
    at.selectbox(key="users_access_user").set_value("admin1")
    _form_button(at, "Disable").click().run()
    assert "You cannot disable yourself." in texts(at, "warning")
    assert not studio.users.get("admin1").disabled
    at.selectbox(key="users_role_user").set_value("admin1")
    at.selectbox(key="users_role_role").set_value("clinician")
    _form_button(at, "Change role").click().run()
    (error,) = texts(at, "error")
    assert "last enabled admin" in error
    assert studio.users.get("admin1").role == "admin"


def _record(studio, username, model, at, limited=False):
    studio.audit.record(username=username, model=model, inputs={"x": 1.0}, version="3", rate_limited=limited, at=at)


def test_audit_trail_filters_and_exports_csv(app, studio, downloads):
    now = datetime.now(timezone.utc)
    _record(studio, "clinician1", "iris_random_forest", now - timedelta(minutes=5))
    _record(studio, "clinician1", "breast_cancer", now - timedelta(minutes=3), limited=True)
    _record(studio, "analyst1", "breast_cancer", now - timedelta(minutes=1))
    _record(studio, "analyst1", "breast_cancer", now - timedelta(days=30))
    studio.audit.flush()
    at = app("admin").switch_page(AUDIT).run()
    assert not at.exception
    assert "3 record(s)." in texts(at, "caption")  # the last 7 days by default
    at.text_input(key="audit_user").input("clinician1").run()
    table = at.dataframe[0].value
    assert list(table["model"]) == ["breast_cancer", "iris_random_forest"]
    assert list(table["rate_limited"]) == [True, False]
    at.selectbox(key="audit_model").set_value("breast_cancer").run()
    assert len(at.dataframe[0].value) == 1
    csv = pd.read_csv(io.BytesIO(downloads["audit_csv"]))
    assert list(csv["username"]) == ["clinician1"] and list(csv["model"]) == ["breast_cancer"]
    assert bool(csv["rate_limited"].iloc[0])


@pytest.mark.parametrize("page", [USERS, AUDIT])
def test_admin_pages_unreachable_for_clinicians(app, studio, page):
    with pytest.raises(ValueError):
        app("clinician").switch_page(page)
