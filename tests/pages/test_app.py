"""app.py: login gate, navigation per role, sidebar, banner; every restricted page refuses by itself."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.ratelimit import LimiterStatus
from tests.pages.conftest import ROOT, TIMEOUT_S, login, texts

ALL_PAGES = {
    "iris": "pages/iris.py",
    "cancer": "pages/cancer.py",
    "diagnostics": "pages/diagnostics.py",
    "model_ops": "pages/model_ops.py",
    "users": "pages/users.py",
    "audit": "pages/audit.py",
}
VISIBLE = {
    "clinician": {"iris", "cancer"},
    "analyst": {"iris", "cancer", "diagnostics"},
    "admin": set(ALL_PAGES),
}


def _registered(at: AppTest) -> set[str]:
    """Page files st.navigation registered on the last run (the default page has url '')."""
    from pathlib import Path

    return {Path(str(info["script_path"])).stem for info in at._registered_pages.values() if info.get("script_path")}


def test_logged_out_sees_only_the_login_form(app, studio):
    at = app(None)
    assert not at.exception
    labels = [t.label for t in at.text_input]
    assert labels == ["Username", "Password"]
    assert not at.title and not at.slider
    assert not _registered(at) & set(ALL_PAGES)


@pytest.mark.parametrize("role", ["clinician", "analyst", "admin"])
def test_navigation_holds_exactly_the_pages_of_the_role(app, studio, role):
    at = app(role)
    assert not at.exception
    assert _registered(at) == VISIBLE[role]
    sidebar = " ".join(str(m.value) for m in at.sidebar.markdown) + " ".join(str(c.value) for c in at.sidebar.caption)
    assert f"{role.title()} One" in sidebar and f"role **{role}**" in sidebar
    assert [b.label for b in at.sidebar.button] == ["Log out"]
    for key in VISIBLE[role]:
        at.switch_page(ALL_PAGES[key]).run()
        assert not at.exception, key
        assert at.title, key
        assert not [e for e in texts(at, "error") if "This page is for" in e], key


@pytest.mark.parametrize("role", ["clinician", "analyst"])
def test_switching_to_an_admin_page_is_refused(app, studio, role):
    at = app(role)
    for key in set(ALL_PAGES) - VISIBLE[role]:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(ALL_PAGES[key])


@pytest.mark.parametrize(
    ("role", "key"), [(role, key) for role in ("clinician", "analyst") for key in sorted(set(ALL_PAGES) - VISIBLE[role])]
)
def test_a_restricted_page_run_directly_refuses_by_itself(studio, role, key):
    at = AppTest.from_file(str(ROOT / ALL_PAGES[key]), default_timeout=TIMEOUT_S)
    login(at, studio, role)
    at.run()
    assert not at.exception
    (error,) = texts(at, "error")
    assert "This page is for" in error and f"signed in as {role}" in error
    assert not at.title and not at.button and not at.dataframe
    assert studio.service.retrained == []


def test_a_page_run_directly_without_login_asks_to_log_in(studio):
    at = AppTest.from_file(str(ROOT / "pages/model_ops.py"), default_timeout=TIMEOUT_S).run()
    assert texts(at, "warning") == ["Please log in first."]
    assert not at.title


def test_logout_returns_to_the_login_form_and_revokes(app, studio):
    at = app("admin")
    at.sidebar.button[0].click().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert not at.title
    assert not _registered(at)  # the admin's page list is replaced, not left in the browser
    assert studio.users.get("admin1").sessions_valid_after is not None


def test_password_login_through_the_form(app, studio):
    at = app(None)
    at.text_input[0].input("analyst1")
    at.text_input[1].input("correct-horse-battery")
    at.button[0].click().run()
    assert not at.exception
    assert _registered(at) == VISIBLE["analyst"]
    assert at.title[0].value.endswith("Iris species")


def test_banner_when_fallback_serves_and_models_train(app, studio):
    studio.service.set_ready("breast_cancer_bayes", False)
    studio.service.retrain("iris_random_forest")
    at = app("clinician")
    warnings, infos = texts(at, "warning"), texts(at, "info")
    assert any("**fallback** model while the Bayesian model is training, 40%" in w for w in warnings)
    assert any("Training in the background: iris_random_forest (queued)" in i for i in infos)


def test_banner_when_rate_limiter_is_degraded(app, studio, monkeypatch):
    monkeypatch.setattr(studio.limiter, "status", lambda: LimiterStatus("embedded", True, "Redis unreachable; using in-process limits"))
    at = app("clinician")
    assert any("rate limiter is degraded" in w and "Redis unreachable" in w for w in texts(at, "warning"))


def test_no_banner_when_all_is_well(app, studio):
    at = app("clinician")
    assert not at.warning and not at.info and not at.error


def test_training_failure_is_shown_to_admins_only(app, studio):
    import dataclasses

    status = studio.service._status["breast_cancer_bayes"]
    studio.service._status["breast_cancer_bayes"] = dataclasses.replace(status, state="failed", last_error="TrainingFailed: R-hat 1.2")
    assert any("R-hat 1.2" in e for e in texts(app("admin"), "error"))
    assert not texts(app("clinician"), "error")


def test_iris_page_does_not_import_numpyro_or_arviz(tmp_path):
    """A cold import of numpyro/arviz/jax costs seconds: app.py and the iris page must not pay it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "for script in ('app.py', 'pages/iris.py', 'pages/cancer.py'):\n"
        "    AppTest.from_file(script, default_timeout=60).run()\n"
        "print('HEAVY=' + ','.join(m for m in ('numpyro', 'arviz', 'jax') if m in sys.modules))\n"
    )
    env = {**__import__("os").environ, "DATA_DIR": str(tmp_path), "TRAIN_ON_START": "0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    (heavy,) = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")]
    assert heavy == "HEAVY="
