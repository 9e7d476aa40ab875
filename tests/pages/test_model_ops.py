"""Model operations: status, retrain without blocking, promote/roll back, cleanup, limiter."""
from __future__ import annotations

import dataclasses

import pytest

from core.pruning import KeptRun, PruneReport, StoreUsage
from tests.pages.conftest import texts

OPS = "pages/model_ops.py"


def _open(app):
    return app("admin").switch_page(OPS).run()


def test_status_table_shows_every_model(app, studio):
    studio.service._status["breast_cancer_bayes"] = dataclasses.replace(
        studio.service._status["breast_cancer_bayes"], last_error="version 3 rejected by the quality gate: roc_auc low",
        finished_at=1_760_000_000.0, last_prune={"ok": False, "at": 1_760_000_100.0, "error": "gc failed: read-only"},
    )
    at = _open(app)
    assert not at.exception
    table = at.table[0].value
    assert list(table.index) == list(studio.service.status())
    row = table.loc["breast_cancer_bayes"]
    assert row["state"] == "🟢 loaded" and row["serving version"] == "1" and row["champion"] == "1"
    assert row["trained at"] == "2025-10-09 08:53:20 UTC"
    assert "roc_auc 0.99" in row["key metrics"]
    assert "rejected by the quality gate" in row["last error"]
    assert row["last prune"].startswith("failed") and "read-only" in row["last prune"]


def test_key_metrics_name_the_bayesian_fit_checks(app, studio):
    studio.service._status["breast_cancer_bayes"] = dataclasses.replace(
        studio.service._status["breast_cancer_bayes"],
        metrics={"roc_auc": 0.99, "max_rhat": 1.004, "min_ess_bulk": 812.0, "divergences": 0.0, "compile_s": 3.2},
    )
    at = _open(app)
    shown = at.table[0].value.loc["breast_cancer_bayes", "key metrics"]
    assert shown == "roc_auc 0.99, max_rhat 1, min_ess_bulk 812, divergences 0"


def test_retrain_returns_at_once_and_the_panel_shows_progress(app, studio):
    at = _open(app)
    at.button(key="ops_retrain_iris_random_forest").click().run()
    assert not at.exception
    assert studio.service.retrained == ["iris_random_forest"]
    table = at.table[0].value
    assert table.loc["iris_random_forest", "state"] == "🟡 queued"
    assert at.button(key="ops_retrain_iris_random_forest").disabled
    assert [p.value for p in at.get("progress")] == [0]
    # the worker moves on; the next poll of the fragment shows it
    studio.service._status["iris_random_forest"] = dataclasses.replace(
        studio.service._status["iris_random_forest"], state="training", progress=0.5, progress_message="fitting"
    )
    at.run()
    assert at.table[0].value.loc["iris_random_forest", "state"] == "🟡 training"
    assert "fitting" in at.get("progress")[0].proto.text


def test_registry_versions_promote_and_roll_back(app, studio):
    at = _open(app)
    at.selectbox(key="ops_registry_model").set_value("breast_cancer_bayes").run()
    versions = at.dataframe[0].value
    assert list(versions["version"]) == ["3", "2", "1"]
    assert list(versions["aliases"]) == ["", "", "champion"]
    assert list(versions["gate"]) == ["rejected", "passed", "passed"]
    # only passing, non-champion versions can be promoted
    assert at.selectbox(key="ops_promote_version_breast_cancer_bayes").options == ["2"]
    assert at.button(key="ops_rollback").disabled  # nothing older than version 1
    at.button(key="ops_promote").click().run()
    assert studio.service.registry.set_calls == [("breast_cancer_bayes", "2")]
    assert "breast_cancer_bayes version 2 is now champion." in texts(at, "success")
    assert list(at.dataframe[0].value["aliases"]) == ["", "champion", ""]
    rollback = at.button(key="ops_rollback")
    assert rollback.label == "Roll back to version 1" and not rollback.disabled
    rollback.click().run()
    assert studio.service.registry.set_calls[-1] == ("breast_cancer_bayes", "1")
    assert "breast_cancer_bayes rolled back to version 1." in texts(at, "success")


def test_cleanup_shows_sizes_and_what_went(app, studio, monkeypatch):
    calls = []

    def fake_prune(settings, *, vacuum_db=False, **kwargs):
        calls.append(vacuum_db)
        return PruneReport(
            scope="store", dry_run=False, retain=5,
            deleted_versions=["iris_random_forest/1", "iris_random_forest/2"], deleted_runs=["r1", "r2"],
            deleted_logged_models=["m-1", "m-2"], kept=[KeptRun("iris_random_forest", ("7",), "r7", "alias champion")],
            usage_before=StoreUsage(artifact_bytes=5 * 1024 * 1024, db_bytes=1024 * 1024),
            usage_after=StoreUsage(artifact_bytes=2 * 1024 * 1024, db_bytes=1024 * 1024), seconds=1.25,
        )

    monkeypatch.setattr("core.pruning.prune_store", fake_prune)
    at = _open(app)
    at.checkbox(key="ops_vacuum").check().run()
    at.button(key="ops_prune").click().run()
    assert calls == [True]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Store before"] == "6.0 MB" and metrics["Store after"] == "3.0 MB" and metrics["Freed"] == "3.0 MB"
    assert any("Deleted 2 version(s), 2 logged model(s) and 2 run(s); kept 1 run(s)" in s for s in texts(at, "success"))


@pytest.mark.parametrize("studio_overrides", [{"VACUUM_INTERVAL_HOURS": "24"}])
def test_scheduled_vacuum_is_reported(app, studio):
    at = _open(app)
    assert any("every 24 h; not run yet" in c for c in texts(at, "caption"))
    studio.service.last_vacuum = {"ok": True, "at": 1_760_000_000.0, "report": {"deleted_runs": 4}}
    at = _open(app)
    assert any("every 24 h; last: ok 2025-10-09 08:53:20 UTC: 4 run(s) deleted" in c for c in texts(at, "caption"))


def test_cleanup_failure_is_one_message(app, studio, monkeypatch):
    from core.errors import PruneError

    def broken(settings, **kwargs):
        raise PruneError("Cannot reach the tracking store.")

    monkeypatch.setattr("core.pruning.prune_store", broken)
    at = _open(app)
    at.button(key="ops_prune").click().run()
    assert not at.exception
    assert texts(at, "error") == ["Cleanup: Cannot reach the tracking store."]


def test_rate_limiter_state(app, studio):
    at = _open(app)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Backend"] == "embedded" and metrics["State"] == "healthy"
    assert metrics["Predictions per minute"] == str(studio.settings.rate_limit_default)
    assert metrics["Cancer predictions per minute"] == str(studio.settings.rate_limit_cancer)


@pytest.mark.parametrize("role", ["clinician", "analyst"])
def test_not_reachable_for_other_roles(app, studio, role):
    with pytest.raises(ValueError):
        app(role).switch_page(OPS)
