"""Pruning against a real embedded store (SQLite + artifact folder) filled by the real
Registry with the two cheap models; every check looks at the registry and the disk."""
from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from core.errors import PruneError
from core.pruning import folder_bytes, prune_model, prune_store, store_usage
from tests.conftest import make_settings

IRIS = "iris_logistic_regression"
STUB = "breast_cancer_stub"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train each cheap model once; every test logs these as fresh versions."""
    from core.models import get_spec

    settings = make_settings(tmp_path_factory.mktemp("prune-train"))
    return {name: get_spec(name).train(settings) for name in (IRIS, STUB)}


def build_store(settings, trained):
    """8 versions per model.

    iris: all pass; champion moved back to v2 -> keep 2 (champion) + 6, 7, 8; drop 1, 3, 4, 5.
    stub: v1-v3 pass, v4-v8 rejected; champion moved to v1, 'challenger' alias on v2 ->
          keep 1 (champion), 2 (alias), 3 (newest passing), 6, 7, 8; drop 4, 5.
    """
    from core.models.types import GateResult
    from core.registry import Registry

    registry = Registry(settings)
    for i in range(8):
        registry.log_training(trained[IRIS])
    rejected = dataclasses.replace(trained[STUB], gate=GateResult(False, ["test: rejected on purpose"]))
    for i in range(8):
        registry.log_training(trained[STUB] if i < 3 else rejected)
    registry.set_champion(IRIS, 2)
    registry.set_champion(STUB, 1)
    registry.client.set_registered_model_alias(STUB, "challenger", "2")
    return registry


def clone_store(template: Path, root: Path) -> None:
    """Copy a built store to root and rewrite the absolute paths MLflow keeps in its
    tables (experiment, run and logged-model locations): building one costs 16 logs."""
    shutil.copytree(template, root, dirs_exist_ok=True)
    con = sqlite3.connect(root / "mlflow.db")
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in con.execute(f"PRAGMA table_info('{table}')").fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    con.execute(f'UPDATE "{table}" SET "{column[1]}" = replace("{column[1]}", ?, ?) '
                                f'WHERE "{column[1]}" LIKE ?', (str(template), str(root), f"%{template}%"))
        con.commit()
    finally:
        con.close()


@pytest.fixture(scope="module")
def template_store(tmp_path_factory, trained) -> Path:
    root = tmp_path_factory.mktemp("prune-template")
    build_store(make_settings(root), trained)
    return root


@pytest.fixture
def store(tmp_path, template_store):
    """Settings of a fresh copy of the 8-versions-per-model store."""
    root = tmp_path / "store"
    clone_store(template_store, root)
    return make_settings(root)


EXPECTED_DROPPED = {IRIS: {"1", "3", "4", "5"}, STUB: {"4", "5"}}
EXPECTED_KEPT = {IRIS: {"2", "6", "7", "8"}, STUB: {"1", "2", "3", "6", "7", "8"}}


def fresh_registry(settings):
    from core.registry import Registry

    return Registry(settings)  # no in-process cache: loads through the store


def versions_of(settings, name) -> dict[str, object]:
    return {info.version: info for info in fresh_registry(settings).list_versions(name)}


def model_dir(settings, info) -> Path:
    return Path(settings.mlflow_artifact_root) / "models" / info.model_id


def run_dir(settings, info) -> Path:
    return Path(settings.mlflow_artifact_root) / info.run_id


def snapshot(settings):
    """Everything a prune could change: registry, aliases, runs, files on disk."""
    from mlflow.entities import ViewType

    registry = fresh_registry(settings)
    client = registry.client
    runs = sorted(
        (r.info.run_id, r.info.lifecycle_stage)
        for r in client.search_runs([registry.experiment_id], run_view_type=ViewType.ALL)
    )
    files = sorted(str(p) for p in Path(settings.mlflow_artifact_root).rglob("*"))
    return {
        "versions": {n: sorted(versions_of(settings, n)) for n in (IRIS, STUB)},
        "aliases": {n: registry.aliases(n) for n in (IRIS, STUB)},
        "runs": runs,
        "logged_models": sorted(m.model_id for m in client.search_logged_models([registry.experiment_id])),
        "files": files,
        "bytes": folder_bytes(Path(settings.mlflow_artifact_root)),
    }


def assert_loadable(settings, name, version):
    loaded = fresh_registry(settings).load_version(name, version)
    assert loaded.version == str(version)
    assert loaded.predictor.model_name == name


def test_retain_3_keeps_aliased_and_newest_and_frees_exactly_the_pruned_models(store):
    tmp_settings = store
    before = {n: versions_of(tmp_settings, n) for n in (IRIS, STUB)}
    pruned_dirs = [d for n in (IRIS, STUB) for v in EXPECTED_DROPPED[n]
                   for d in (model_dir(tmp_settings, before[n][v]), run_dir(tmp_settings, before[n][v]))]
    pruned_bytes = sum(folder_bytes(d) for d in pruned_dirs)
    assert pruned_bytes > 0 and all(model_dir(tmp_settings, before[n][v]).is_dir() for n in (IRIS, STUB) for v in EXPECTED_DROPPED[n])
    artifacts_before = folder_bytes(Path(tmp_settings.mlflow_artifact_root))

    reports = {n: prune_model(tmp_settings, n, retain=3) for n in (IRIS, STUB)}

    for name in (IRIS, STUB):
        report = reports[name]
        assert report.ok, report.errors
        assert {v.split("/")[1] for v in report.deleted_versions} == EXPECTED_DROPPED[name]
        assert sorted(report.deleted_runs) == sorted(before[name][v].run_id for v in EXPECTED_DROPPED[name])
        assert sorted(report.deleted_logged_models) == sorted(before[name][v].model_id for v in EXPECTED_DROPPED[name])
        assert sorted(report.purged_runs) == sorted(report.deleted_runs)
        assert set(versions_of(tmp_settings, name)) == EXPECTED_KEPT[name]
        for version in EXPECTED_DROPPED[name]:
            assert not model_dir(tmp_settings, before[name][version]).exists()
        for version in EXPECTED_KEPT[name]:
            assert (model_dir(tmp_settings, before[name][version]) / "artifacts" / "MLmodel").is_file()
    kept_reasons = {(k.model, k.versions): k.reason for k in reports[STUB].kept}
    assert "alias champion on v1" in kept_reasons[(STUB, ("1",))]
    assert "alias challenger on v2" in kept_reasons[(STUB, ("2",))]
    assert "newest passing version v3" in kept_reasons[(STUB, ("3",))]

    # The champions stay loadable through the registry's own load path.
    assert fresh_registry(tmp_settings).champion_version(IRIS) == "2"
    champion = fresh_registry(tmp_settings).load_champion(IRIS)
    assert champion.version == "2"
    assert champion.predictor.predict({"sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
                                       "petal length (cm)": 1.4, "petal width (cm)": 0.2}).label == "setosa"
    assert fresh_registry(tmp_settings).load_champion(STUB).version == "1"
    assert_loadable(tmp_settings, STUB, "3")

    # The artifact folder shrank by exactly the pruned models' (and runs') files.
    artifacts_after = folder_bytes(Path(tmp_settings.mlflow_artifact_root))
    assert artifacts_before - artifacts_after == pruned_bytes
    assert sum(r.planned_artifact_bytes for r in reports.values()) == pruned_bytes
    first, second = reports[IRIS], reports[STUB]
    assert first.usage_before.artifact_bytes == artifacts_before
    assert second.usage_after.artifact_bytes == artifacts_after
    assert first.freed_bytes is not None and first.freed_bytes > 0

    # gc really purged: the runs are gone from the database, not just soft-deleted.
    from mlflow.exceptions import MlflowException

    client = fresh_registry(tmp_settings).client
    for run_id in first.deleted_runs:
        with pytest.raises(MlflowException):
            client.get_run(run_id)


def test_dry_run_reports_exactly_what_would_go_and_changes_nothing(store):
    tmp_settings = store
    before = snapshot(tmp_settings)
    dry = prune_model(tmp_settings, IRIS, retain=3, dry_run=True)
    assert dry.dry_run and dry.ok
    assert snapshot(tmp_settings) == before
    assert dry.usage_after == dry.usage_before
    assert dry.purged_runs == [] and dry.planned_artifact_bytes > 0

    real = prune_model(tmp_settings, IRIS, retain=3)
    assert sorted(real.deleted_versions) == sorted(dry.deleted_versions)
    assert sorted(real.deleted_runs) == sorted(dry.deleted_runs)
    assert sorted(real.deleted_logged_models) == sorted(dry.deleted_logged_models)
    assert real.planned_artifact_bytes == dry.planned_artifact_bytes
    assert real.usage_before.artifact_bytes - real.usage_after.artifact_bytes == dry.planned_artifact_bytes


def test_pruning_twice_deletes_nothing_the_second_time(store):
    tmp_settings = store
    first = prune_model(tmp_settings, IRIS, retain=3)
    assert len(first.deleted_versions) == 4
    after_first = snapshot(tmp_settings)
    second = prune_model(tmp_settings, IRIS, retain=3)
    assert second.ok, second.errors
    assert (second.deleted_versions, second.deleted_runs, second.deleted_logged_models) == ([], [], [])
    assert second.purged_runs == []
    assert snapshot(tmp_settings) == after_first
    assert second.freed_bytes == 0


def _make_folder_read_only(root: Path) -> str:
    """Make the artifact folder unwritable even for root: the immutable attribute
    (chattr +i) on every folder, so gc's rmtree fails with EPERM."""
    if shutil.which("chattr") is None:
        return ""
    folders = [root, *[p for p in root.rglob("*") if p.is_dir()]]
    result = subprocess.run(["chattr", "+i", *map(str, folders)], capture_output=True)
    if result.returncode != 0:
        subprocess.run(["chattr", "-i", *map(str, folders)], capture_output=True)
        return ""
    probe = root / "probe-write"
    try:
        probe.write_text("x")
    except OSError:
        return "chattr"
    probe.unlink()
    subprocess.run(["chattr", "-i", *map(str, folders)], capture_output=True)
    return ""


def _undo_read_only(root: Path) -> None:
    folders = [root, *[p for p in root.rglob("*") if p.is_dir()]]
    subprocess.run(["chattr", "-i", *map(str, folders)], capture_output=True)


def test_gc_failure_is_reported_not_raised_and_loses_nothing_registered(store, monkeypatch):
    tmp_settings = store
    before = versions_of(tmp_settings, IRIS)
    root = Path(tmp_settings.mlflow_artifact_root)
    method = _make_folder_read_only(root)
    if not method:
        # No immutable attribute here (tests run as root, where chmod does not stop
        # writes): make mlflow gc itself fail instead.
        import mlflow.cli

        def broken_gc(*args, **kwargs):
            raise OSError(30, "Read-only file system")

        monkeypatch.setattr(mlflow.cli.gc, "main", broken_gc)
        method = "monkeypatched gc"
    print(f"gc failure made by: {method}")
    try:
        report = prune_model(tmp_settings, IRIS, retain=3)
    finally:
        if method == "chattr":
            _undo_read_only(root)
    assert not report.ok
    assert any("mlflow gc failed" in e for e in report.errors), (method, report.errors)
    dropped_models = sorted(before[v].model_id for v in EXPECTED_DROPPED[IRIS])
    assert not set(report.purged_logged_models) & set(dropped_models)
    # The soft deletes happened (in the safe order); nothing kept was touched.
    assert set(versions_of(tmp_settings, IRIS)) == EXPECTED_KEPT[IRIS]
    for version in EXPECTED_KEPT[IRIS]:
        assert_loadable(tmp_settings, IRIS, version)
    assert fresh_registry(tmp_settings).load_champion(IRIS).version == "2"
    for version in EXPECTED_DROPPED[IRIS]:  # files still there: the purge never ran through
        assert model_dir(tmp_settings, before[version]).is_dir()

    monkeypatch.undo()
    retry = prune_model(tmp_settings, IRIS, retain=3)
    assert retry.ok, retry.errors
    assert retry.deleted_versions == []
    # The retry purges whatever the failed gc left soft-deleted (gc goes run by run).
    assert set(retry.purged_logged_models) == set(dropped_models)
    assert set(retry.purged_runs) | set(report.purged_runs) == {before[v].run_id for v in EXPECTED_DROPPED[IRIS]}
    for version in EXPECTED_DROPPED[IRIS]:  # the model files are gone now
        assert not (model_dir(tmp_settings, before[version]) / "artifacts").exists()
    for version in EXPECTED_KEPT[IRIS]:
        assert_loadable(tmp_settings, IRIS, version)


def test_prune_store_removes_old_orphan_runs_and_vacuums_sqlite(store):
    tmp_settings = store
    registry = fresh_registry(tmp_settings)
    client = registry.client
    now_ms = int(time.time() * 1000)
    old = client.create_run(registry.experiment_id, start_time=now_ms - 30 * 86_400_000, tags={"model_name": IRIS})
    client.log_text(old.info.run_id, "x" * 5000, "extra/notes.txt")
    client.set_terminated(old.info.run_id, "FAILED", end_time=now_ms - 30 * 86_400_000)
    recent = client.create_run(registry.experiment_id, tags={"model_name": IRIS})
    client.set_terminated(recent.info.run_id, "FAILED")
    running_old = client.create_run(registry.experiment_id, start_time=now_ms - 60_000, tags={"model_name": STUB})

    dry = prune_store(tmp_settings, retain=3, max_age_days=7, dry_run=True)
    assert old.info.run_id in dry.deleted_runs and recent.info.run_id not in dry.deleted_runs

    report = prune_store(tmp_settings, retain=3, max_age_days=7, vacuum_db=True)
    assert report.ok, report.errors
    assert len(report.deleted_versions) == 6
    assert old.info.run_id in report.deleted_runs
    assert recent.info.run_id not in report.deleted_runs
    assert running_old.info.run_id not in report.deleted_runs
    assert sorted(report.deleted_runs) == sorted(dry.deleted_runs)
    assert not (Path(tmp_settings.mlflow_artifact_root) / old.info.run_id / "artifacts").exists()
    assert "SQLite store vacuumed" in report.notes
    assert report.usage_after.db_bytes < report.usage_before.db_bytes  # VACUUM gave pages back
    for name in (IRIS, STUB):
        assert set(versions_of(tmp_settings, name)) == EXPECTED_KEPT[name]
    assert fresh_registry(tmp_settings).load_champion(STUB).version == "1"
    summary = report.summary()
    assert summary["deleted_runs"] == len(report.deleted_runs) and summary["ok"] is True

    # max_age_days=0 takes the recent failed orphan too, never the fresh RUNNING one.
    again = prune_store(tmp_settings, retain=3, max_age_days=0)
    assert again.deleted_runs == [recent.info.run_id] and again.deleted_versions == []


def test_store_usage_measures_files_and_database(tmp_settings, store):
    empty = store_usage(tmp_settings)
    assert (empty.artifact_bytes, empty.db_bytes) == (0, 0)
    tmp_settings = store
    usage = store_usage(tmp_settings)
    assert usage.artifact_bytes == folder_bytes(Path(tmp_settings.mlflow_artifact_root)) > 0
    assert usage.db_bytes == tmp_settings.sqlite_path().stat().st_size
    assert usage.total_bytes == usage.artifact_bytes + usage.db_bytes


def test_bad_requests_raise_prune_error(store):
    tmp_settings = store
    with pytest.raises(PruneError, match="No registered model named 'nope'"):
        prune_model(tmp_settings, "nope")
    with pytest.raises(PruneError, match="keep at least 1"):
        prune_model(tmp_settings, IRIS, retain=0)
    with pytest.raises(PruneError, match="negative"):
        prune_store(tmp_settings, max_age_days=-1)


def test_default_retain_comes_from_settings(tmp_path, template_store):
    clone_store(template_store, tmp_path / "store")
    settings = make_settings(tmp_path / "store", RETAIN_RUNS_PER_MODEL="6")
    report = prune_model(settings, IRIS)
    assert report.retain == 6
    # newest 6 are v3..v8, champion v2 stays: only v1 goes.
    assert report.deleted_versions == [f"{IRIS}/1"]
