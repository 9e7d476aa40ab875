"""core.registry against a real MLflow SQLite store under tmp_path."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.errors import ArtifactsMissing, ModelUnavailable
from core.models import get_spec
from core.models.types import GateResult
from core.registry import CHAMPION, EXPERIMENT_NAME, Registry, _local_path
from tests.conftest import make_settings

IRIS = "iris_logistic_regression"
STUB = "breast_cancer_stub"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained_iris(tmp_path_factory):
    """One fit, logged as many versions as a test needs (each log is a new version)."""
    return get_spec(IRIS).train(make_settings(tmp_path_factory.mktemp("fit")))


@pytest.fixture(scope="session")
def trained_stub(tmp_path_factory):
    """One real fit of the stub (its bootstrap takes seconds here), reused by tests about
    logging, loading and orchestration rather than about fitting."""
    return get_spec(STUB).train(make_settings(tmp_path_factory.mktemp("fit")))


def use_fit(monkeypatch, trained) -> None:
    """Make the spec of trained.name return this fit (reporting progress like a real one)."""
    import core.models

    spec = core.models._SPECS[trained.name]

    def train_fn(settings, progress=None):
        if progress:
            progress(0.5, "fitting (cached fit)")
        return trained

    monkeypatch.setitem(core.models._SPECS, trained.name, dataclasses.replace(spec, train_fn=train_fn))


@pytest.fixture
def tmp_store(tmp_settings, schema_template):
    """tmp_settings whose SQLite file starts as a copy of the empty schema."""
    target = tmp_settings.sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(schema_template, target)
    return tmp_settings


@pytest.fixture
def registry(tmp_store) -> Registry:
    reg = Registry(tmp_store)
    reg.ensure_store()
    return reg


def rejected(trained, reason: str = "accuracy = 0.5 is below the floor 0.85"):
    return dataclasses.replace(trained, gate=GateResult(passed=False, reasons=[reason]))


def artifact_dir(registry: Registry, info) -> Path:
    location = registry.client.get_logged_model(info.model_id).artifact_location
    path = _local_path(location)
    assert path is not None
    return path


def test_store_is_sqlite_with_an_absolute_artifact_root(tmp_settings, tmp_path):
    registry = Registry(tmp_settings)  # a store created from nothing
    experiment = registry.client.get_experiment(registry.experiment_id)
    assert experiment.name == EXPERIMENT_NAME
    assert experiment.artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()
    assert (tmp_path / "mlflow.db").is_file()
    # idempotent: a second registry finds the same experiment
    assert Registry(tmp_settings).ensure_store() == registry.experiment_id


def test_relative_artifact_root_is_made_absolute_at_creation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = make_settings(tmp_path, MLFLOW_ARTIFACT_ROOT="rel/artifacts")
    reg = Registry(settings)
    location = reg.client.get_experiment(reg.ensure_store()).artifact_location
    assert location == (tmp_path / "rel" / "artifacts").resolve().as_uri()


def test_log_training_records_run_logged_model_and_champion(registry, trained_iris, tmp_path):
    info = registry.log_training(trained_iris)
    assert info.version == "1" and info.gate_passed and info.aliases == (CHAMPION,)
    assert info.metrics["accuracy"] == pytest.approx(trained_iris.metrics["accuracy"])

    run = registry.client.get_run(info.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["model_name"] == IRIS
    assert run.data.metrics["accuracy"] == pytest.approx(trained_iris.metrics["accuracy"])
    assert set(trained_iris.params) <= set(run.data.params)

    mv = registry.client.get_model_version(IRIS, "1")
    assert mv.tags["gate"] == "passed" and mv.tags["gate_reason"] == "all checks passed"
    assert mv.source == f"models:/{info.model_id}"
    logged = registry.client.get_logged_model(info.model_id)
    assert logged.source_run_id == info.run_id and str(logged.status) .endswith("READY")
    folder = artifact_dir(registry, info)
    assert folder.is_relative_to(tmp_path / "mlartifacts")
    assert (folder / "MLmodel").is_file() and "pyfunc_entry.py" in {p.name for p in folder.iterdir()}
    assert registry.champion_version(IRIS) == "1"


def test_extra_artifacts_are_written_into_the_run(registry, trained_stub):
    import json

    info = registry.log_training(trained_stub)
    run = registry.client.get_run(info.run_id)
    written = _local_path(run.info.artifact_uri) / "extra" / "calibration.json"
    assert json.loads(written.read_text()) == json.loads(json.dumps(trained_stub.extra_artifacts["calibration.json"]))


def test_gate_rejection_keeps_the_champion_and_tags_why(registry, trained_iris):
    registry.log_training(trained_iris)
    info = registry.log_training(rejected(trained_iris))
    assert info.version == "2" and not info.gate_passed and info.aliases == ()
    assert "below the floor" in info.gate_reason
    assert registry.champion_version(IRIS) == "1"
    mv = registry.client.get_model_version(IRIS, "2")
    assert mv.tags["gate"] == "rejected" and "accuracy = 0.5" in mv.tags["gate_reason"]
    versions = registry.list_versions(IRIS)
    assert [v.version for v in versions] == ["2", "1"]
    assert versions[1].is_champion and not versions[0].is_champion


def test_no_champion_is_a_typed_error(registry, trained_iris):
    assert registry.champion_version(IRIS) is None
    assert registry.list_versions(IRIS) == []
    with pytest.raises(ModelUnavailable, match="no champion"):
        registry.load_champion(IRIS)
    registry.log_training(rejected(trained_iris))
    with pytest.raises(ModelUnavailable):
        registry.load_champion(IRIS)
    assert [(v.version, v.aliases) for v in registry.list_versions(IRIS)] == [("1", ())]  # registered, no alias


def test_unchanged_champion_loads_once_and_a_new_one_is_picked_up(registry, trained_iris, monkeypatch):
    import core.registry as registry_module

    calls: list[str] = []
    real = registry_module._load_predictor_from
    monkeypatch.setattr(registry_module, "_load_predictor_from", lambda path: calls.append(str(path)) or real(path))

    registry.log_training(trained_iris)
    first = registry.load_champion(IRIS)
    second = registry.load_champion(IRIS)
    assert first.version == "1" and second is first and len(calls) == 1 and registry.load_count == 1

    registry.log_training(trained_iris)  # passes the gate -> champion moves to 2
    third = registry.load_champion(IRIS)
    assert third.version == "2" and third.predictor is not first.predictor and len(calls) == 2

    registry.set_champion(IRIS, "1")  # back to a cached version: no reload
    assert registry.load_champion(IRIS) is first and len(calls) == 2
    assert registry.cached_versions() == [(IRIS, "1"), (IRIS, "2")]


def test_loaded_stub_predicts_held_out_cases_on_the_right_side(registry, trained_stub):
    from core.data import load_dataset

    registry.log_training(trained_stub)
    loaded = registry.load_champion(STUB)
    ds = load_dataset("breast_cancer")
    malignant = ds.X_test[ds.y_test == 1].iloc[0].to_dict()
    benign = ds.X_test[ds.y_test == 0].iloc[0].to_dict()
    assert loaded.predictor.predict(malignant).probability > 0.5
    assert loaded.predictor.predict(benign).probability < 0.5


def test_deleted_artifacts_raise_artifacts_missing_cached_or_not(registry, tmp_settings, trained_iris):
    info = registry.log_training(trained_iris)
    registry.load_champion(IRIS)
    shutil.rmtree(artifact_dir(registry, info))
    with pytest.raises(ArtifactsMissing, match="artifacts are gone"):
        registry.load_champion(IRIS)  # cached, but the files went: noticed by a stat
    assert registry.cached_versions() == []
    with pytest.raises(ArtifactsMissing):
        Registry(tmp_settings).load_version(IRIS, "1")  # a fresh process


def test_corrupt_artifacts_raise_artifacts_missing(registry, tmp_settings, trained_iris):
    info = registry.log_training(trained_iris)
    folder = artifact_dir(registry, info)
    skops_files = list(folder.rglob("*.skops"))
    assert skops_files
    for path in skops_files:
        path.write_bytes(b"not a skops file")
    with pytest.raises(ArtifactsMissing, match="missing or unreadable"):
        Registry(tmp_settings).load_champion(IRIS)


def test_unknown_version_is_a_typed_error(registry, trained_iris):
    registry.log_training(trained_iris)
    with pytest.raises(ModelUnavailable, match="no version 7"):
        registry.load_version(IRIS, "7")


def test_concurrent_loads_of_one_version_load_once(registry, trained_iris):
    registry.log_training(trained_iris)
    results, errors = [], []

    def load() -> None:
        try:
            results.append(Registry.load_version(registry, IRIS, "1"))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and registry.load_count == 1 and len({id(r) for r in results}) == 1


def test_fresh_store_created_by_racing_threads_and_processes(tmp_path):
    settings = make_settings(tmp_path)
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(Registry(settings).ensure_store())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 4 and len(set(ids)) == 1

    other = tmp_path / "procs"
    code = (
        "import sys; from tests.conftest import make_settings; from core.registry import Registry; "
        "from pathlib import Path; print(Registry(make_settings(Path(sys.argv[1]))).ensure_store())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(other)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for _, err in outputs]
    assert len({out.strip().splitlines()[-1] for out, _ in outputs}) == 1


def test_an_unopenable_store_is_a_typed_error(tmp_path):
    (tmp_path / "plainfile").write_text("not a folder")
    settings = make_settings(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/plainfile/mlflow.db")
    with pytest.raises(ModelUnavailable, match="cannot be opened.*MLFLOW_TRACKING_URI"):
        Registry(settings).ensure_store()
