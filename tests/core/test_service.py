"""core.service: real MLflow store, real trainings (iris LR, the stub), threads for real."""
from __future__ import annotations

import dataclasses
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

import core.models
from core.data import load_dataset
from core.errors import InvalidInput, ModelUnavailable, UnknownModel
from core.models.types import GateResult
from core.registry import Registry, _local_path
from core.service import ModelService, ServiceHealth
from tests.conftest import make_settings
from tests.core.test_registry import trained_stub, use_fit  # noqa: F401  - fixtures

IRIS = "iris_logistic_regression"
STUB = "breast_cancer_stub"
BAYES = "breast_cancer_bayes"
WAIT = 180


def _store(root: Path, template: Path, **overrides: str):
    settings = make_settings(root, **overrides)
    shutil.copyfile(template, settings.sqlite_path())
    return settings


@pytest.fixture
def settings(tmp_path, schema_template):  # noqa: F811
    return _store(tmp_path, schema_template)


@pytest.fixture(autouse=True)
def _cached_stub_fit(monkeypatch, trained_stub):  # noqa: F811
    """The stub's real fit once per session; these tests are about orchestration."""
    use_fit(monkeypatch, trained_stub)


@pytest.fixture
def service(settings):
    svc = ModelService(settings, alias_ttl_s=0.0)
    svc.start().result(timeout=WAIT)
    yield svc
    svc.shutdown(wait=True)


def patch_train(monkeypatch, name: str, wrapper):
    """Replace a spec's train function: wrapper(real_train_fn) -> new train_fn."""
    spec = core.models._SPECS[name]
    monkeypatch.setitem(core.models._SPECS, name, dataclasses.replace(spec, train_fn=wrapper(spec.train_fn)))


def iris_row() -> dict:
    ds = load_dataset("iris")
    return ds.X_test.iloc[0].to_dict()


def cancer_rows() -> tuple[dict, dict]:
    ds = load_dataset("breast_cancer")
    return ds.X_test[ds.y_test == 1].iloc[0].to_dict(), ds.X_test[ds.y_test == 0].iloc[0].to_dict()


def wait_for(predicate, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_empty_store_reports_missing_and_nothing_can_answer(service):
    assert {s.state for s in service.status().values()} == {"missing"}
    with pytest.raises(ModelUnavailable, match="not ready"):
        service.predict(IRIS, iris_row())
    with pytest.raises(ModelUnavailable, match="No breast cancer model"):
        service.predict("breast_cancer", cancer_rows()[0])
    with pytest.raises(UnknownModel):
        service.predict("iris_svm", iris_row())
    with pytest.raises(UnknownModel):
        service.retrain("iris_svm")


def test_training_loads_the_champion_and_predicts_with_its_version(service):
    info = service.retrain(IRIS).result(timeout=WAIT)
    status = service.status()[IRIS]
    assert status.state == "loaded" and status.version == info.version == "1"
    assert status.progress == 1.0 and status.started_at <= status.finished_at
    assert status.metrics["accuracy"] >= 0.85 and status.last_error is None
    prediction = service.predict(IRIS, iris_row())
    assert prediction.model_version == "1" and prediction.label == load_dataset("iris").target_names[load_dataset("iris").y_test[0]]
    with pytest.raises(InvalidInput):
        service.predict(IRIS, {**iris_row(), "petal width (cm)": "wide"})


def test_cancer_answers_from_the_stub_as_fallback_on_the_right_side(service):
    service.retrain(STUB).result(timeout=WAIT)
    malignant, benign = cancer_rows()
    high = service.predict("breast_cancer", malignant)
    low = service.predict("breast_cancer", benign)
    assert high.is_fallback and low.is_fallback and high.model_version == "1"
    assert high.probability > 0.5 > low.probability
    assert high.lower <= high.probability <= high.upper


def test_start_trains_missing_models_stub_first(settings, monkeypatch):
    order: list[str] = []
    release = threading.Event()
    stub_release = threading.Event()

    def recording(name):
        def wrapper(real):
            def train(s, progress=None):
                order.append(name)
                if name != STUB:
                    release.wait(WAIT)
                    raise RuntimeError("not needed in this test")
                stub_release.wait(WAIT)
                return real(s, progress)
            return train
        return wrapper

    for name in core.models.MODEL_NAMES:
        patch_train(monkeypatch, name, recording(name))
    svc = ModelService(dataclasses.replace(settings, train_on_start=True), alias_ttl_s=0.0)
    try:
        svc.start()
        # start() returned while the stub's training is still held back: nothing waited for it
        wait_for(lambda: order == [STUB])
        assert svc.status()[STUB].state == "training"
        stub_release.set()
        wait_for(lambda: svc.status()[STUB].state == "loaded")
        assert order[0] == STUB
        assert svc.predict("breast_cancer", cancer_rows()[0]).is_fallback
        queued = {n: s.state for n, s in svc.status().items() if n != STUB}
        assert set(queued.values()) <= {"queued", "training"}
    finally:
        stub_release.set()
        release.set()
        svc.shutdown(wait=True)
    assert sorted(order) == sorted(core.models.MODEL_NAMES)


def test_two_concurrent_retrains_give_one_training(service, monkeypatch):
    calls: list[float] = []
    gate = threading.Event()

    def wrapper(real):
        def train(s, progress=None):
            calls.append(time.time())
            gate.wait(WAIT)
            return real(s, progress)
        return train

    patch_train(monkeypatch, IRIS, wrapper)
    futures: list = []
    threads = [threading.Thread(target=lambda: futures.append(service.retrain(IRIS))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: service.status()[IRIS].state == "training")
    third = service.retrain(IRIS)
    gate.set()
    assert futures[0] is futures[1] is third
    assert third.result(timeout=WAIT).version == "1"
    assert len(calls) == 1 and service.trainings_started == 1
    assert service.retrain(IRIS) is not third  # finished: a new call trains again
    service.shutdown(wait=True)
    assert len(calls) == 2


def test_failing_training_ends_failed_and_the_previous_champion_serves(service, monkeypatch):
    service.retrain(IRIS).result(timeout=WAIT)

    def wrapper(real):
        def train(s, progress=None):
            if progress:
                progress(0.3, "sampling")
            raise RuntimeError("sampler exploded")
        return train

    patch_train(monkeypatch, IRIS, wrapper)
    future = service.retrain(IRIS)
    with pytest.raises(RuntimeError, match="sampler exploded"):
        future.result(timeout=WAIT)
    status = service.status()[IRIS]
    assert status.state == "failed" and "sampler exploded" in status.last_error
    assert status.version == "1" and status.finished_at is not None
    assert service.predict(IRIS, iris_row()).model_version == "1"


def test_gate_rejection_keeps_champion_and_says_why(service, monkeypatch):
    service.retrain(IRIS).result(timeout=WAIT)

    def wrapper(real):
        def train(s, progress=None):
            return dataclasses.replace(real(s, progress), gate=GateResult(False, ["accuracy = 0.4 is below the floor 0.85"]))
        return train

    patch_train(monkeypatch, IRIS, wrapper)
    info = service.retrain(IRIS).result(timeout=WAIT)
    assert info.version == "2" and not info.gate_passed
    status = service.status()[IRIS]
    assert status.state == "loaded" and status.version == "1"
    assert "version 2 rejected" in status.last_error and "0.4" in status.last_error
    assert service.registry.client.get_model_version(IRIS, "2").tags["gate"] == "rejected"
    assert service.predict(IRIS, iris_row()).model_version == "1"


def _artifact_folder(registry: Registry, name: str, version: str) -> Path:
    info = registry.version_info(name, version)
    path = _local_path(registry.client.get_logged_model(info.model_id).artifact_location)
    assert path is not None and (path / "MLmodel").is_file()
    return path


def test_vanished_artifacts_turn_missing_then_retrain_then_serve(service, monkeypatch):
    service.retrain(IRIS).result(timeout=WAIT)
    assert service.predict(IRIS, iris_row()).model_version == "1"
    shutil.rmtree(_artifact_folder(service.registry, IRIS, "1"))

    seen: list[str] = []
    real_retrain = service.retrain

    def spy(name):
        seen.append(service.status()[name].state)
        return real_retrain(name)

    monkeypatch.setattr(service, "retrain", spy)
    with pytest.raises(ModelUnavailable):
        service.predict(IRIS, iris_row())
    assert seen == ["missing"]
    assert "artifacts" in service.status()[IRIS].last_error
    service._futures[IRIS].result(timeout=WAIT)
    status = service.status()[IRIS]
    assert status.state == "loaded" and status.version == "2" and status.last_error is None
    assert service.predict(IRIS, iris_row()).model_version == "2"


def test_vanished_stub_in_a_new_process_heals_at_start(settings):
    first = ModelService(settings, alias_ttl_s=0.0)
    first.start().result(timeout=WAIT)
    first.retrain(STUB).result(timeout=WAIT)
    first.shutdown()
    shutil.rmtree(_artifact_folder(first.registry, STUB, "1"))

    second = ModelService(settings, alias_ttl_s=0.0)  # TRAIN_ON_START=0: healing still retrains
    try:
        second.start().result(timeout=WAIT)
        assert "artifacts" in (second.status()[STUB].last_error or "")
        second._futures[STUB].result(timeout=WAIT)
        assert second.status()[STUB].state == "loaded" and second.status()[STUB].version == "2"
        assert second.predict("breast_cancer", cancer_rows()[0]).probability > 0.5
    finally:
        second.shutdown()


def test_a_champion_moved_elsewhere_is_picked_up_without_restart(service, settings):
    service.retrain(IRIS).result(timeout=WAIT)
    assert service.predict(IRIS, iris_row()).model_version == "1"
    other = Registry(settings)  # another process, e.g. jobs.train
    other.log_training(core.models.get_spec(IRIS).train(settings))
    assert service.predict(IRIS, iris_row()).model_version == "2"
    assert service.status()[IRIS].version == "2"


def test_prune_after_training_records_report_or_error(tmp_path, schema_template, monkeypatch):  # noqa: F811
    settings = _store(tmp_path, schema_template, MLFLOW_GC_AFTER_TRAIN="1", RETAIN_RUNS_PER_MODEL="1")
    svc = ModelService(settings, alias_ttl_s=0.0)
    try:
        first = svc.retrain(IRIS).result(timeout=WAIT)
        wait_for(lambda: svc.status()[IRIS].last_prune is not None)
        assert svc.status()[IRIS].last_prune["ok"]
        assert svc.status()[IRIS].last_prune["report"]["deleted_versions"] == 0
        svc.predict(IRIS, iris_row())  # loads (and caches) the first champion
        svc.status()[IRIS].last_prune.clear()

        second = svc.retrain(IRIS).result(timeout=WAIT)
        wait_for(lambda: svc.status()[IRIS].last_prune.get("report", {}).get("deleted_versions") == 1)
        report = svc.status()[IRIS].last_prune["report"]
        assert svc.status()[IRIS].last_prune["ok"] and report["deleted_version_ids"] == [f"{IRIS}/{first.version}"]
        assert (IRIS, str(first.version)) not in svc.registry.cached_versions()
        assert [v.version for v in svc.registry.list_versions(IRIS)] == [str(second.version)]
        assert svc.predict(IRIS, iris_row()).model_version == str(second.version)

        fake = type(sys)("core.pruning")
        monkeypatch.setitem(sys.modules, "core.pruning", fake)

        def broken(s, name):
            raise OSError("disk on fire")

        fake.prune_model = broken
        svc.retrain(IRIS).result(timeout=WAIT)
        wait_for(lambda: not svc.status()[IRIS].last_prune["ok"])
        assert "disk on fire" in svc.status()[IRIS].last_prune["error"]
        assert svc.status()[IRIS].state == "loaded"

        monkeypatch.setitem(sys.modules, "core.pruning", None)  # import fails
        svc.retrain(IRIS).result(timeout=WAIT)
        wait_for(lambda: "ImportError" in svc.status()[IRIS].last_prune.get("error", "") or
                 "ModuleNotFoundError" in svc.status()[IRIS].last_prune.get("error", ""))
    finally:
        svc.shutdown()


def test_health_reports_models_and_limiter(service):
    class Limiter:
        def status(self):
            return {"backend": "embedded", "degraded": True, "detail": "redis down"}

    assert service.health().limiter is None
    service.attach_limiter(Limiter())
    health = service.health()
    assert isinstance(health, ServiceHealth) and health.limiter["degraded"] is True
    assert set(health.models) == set(core.models.MODEL_NAMES) and not health.ok

    class Broken:
        def status(self):
            raise ConnectionError("boom")

    service.attach_limiter(Broken())
    assert service.health().limiter is None


def test_prune_now_returns_the_report_and_forgets_pruned_versions(tmp_path, schema_template):
    settings = _store(tmp_path, schema_template, RETAIN_RUNS_PER_MODEL="1")
    svc = ModelService(settings, alias_ttl_s=0.0)
    try:
        first = svc.retrain(IRIS).result(timeout=WAIT)
        svc.registry.load_version(IRIS, first.version)
        second = svc.retrain(IRIS).result(timeout=WAIT)
        assert (IRIS, str(first.version)) in svc.registry.cached_versions()
        report = svc.prune_now()
        assert report.ok and report.deleted_versions == [f"{IRIS}/{first.version}"]
        assert (IRIS, str(first.version)) not in svc.registry.cached_versions()
        assert svc.predict(IRIS, iris_row()).model_version == str(second.version)
    finally:
        svc.shutdown()


def test_scheduled_vacuum_prunes_the_store_and_reports_in_health(tmp_path, schema_template):
    settings = _store(tmp_path, schema_template, RETAIN_RUNS_PER_MODEL="1")
    trainer = ModelService(settings)
    try:
        first = trainer.retrain(IRIS).result(timeout=WAIT)
        second = trainer.retrain(IRIS).result(timeout=WAIT)
    finally:
        trainer.shutdown()
    assert len(trainer.registry.list_versions(IRIS)) == 2

    every_2s = dataclasses.replace(settings, vacuum_interval_hours=2 / 3600)
    svc = ModelService(every_2s, alias_ttl_s=0.0)
    try:
        svc.start().result(timeout=WAIT)
        assert svc.health().last_vacuum is None
        wait_for(lambda: svc.health().last_vacuum is not None, timeout=60)
        vacuum = svc.health().last_vacuum
        assert vacuum["ok"], vacuum
        assert vacuum["report"]["deleted_version_ids"] == [f"{IRIS}/{first.version}"]
        assert [v.version for v in svc.registry.list_versions(IRIS)] == [str(second.version)]
        assert svc.predict(IRIS, iris_row()).model_version == str(second.version)
    finally:
        svc.shutdown()


@pytest.fixture(scope="module")
def bayes_service(tmp_path_factory, schema_template):  # noqa: F811
    """One small NUTS fit (conftest: 4 chains x 300/300), trained through the service."""
    # 300/300 (the conftest default) gives max R-hat 1.013 with seed 0: the gate (<= 1.01)
    # rightly rejects it, so this fit samples a little longer to earn the champion alias.
    settings = _store(tmp_path_factory.mktemp("bayes"), schema_template, BAYES_WARMUP="400", BAYES_SAMPLES="500")
    svc = ModelService(settings, alias_ttl_s=0.0)
    svc.start().result(timeout=WAIT)
    svc.retrain(STUB).result(timeout=WAIT)
    info = svc.retrain("breast_cancer").result(timeout=600)  # the alias trains the Bayesian model
    yield svc, info
    svc.shutdown()


def test_bayesian_champion_answers_cancer_predictions(bayes_service):
    svc, info = bayes_service
    status = svc.status()[BAYES]
    assert info.name == BAYES and info.gate_passed, info.gate_reason
    assert status.state == "loaded" and status.version == info.version
    assert status.metrics["roc_auc"] >= 0.97
    malignant, benign = cancer_rows()
    high, low = svc.predict("breast_cancer", malignant), svc.predict(BAYES, benign)
    assert not high.is_fallback and high.model_name == BAYES and high.model_version == info.version
    assert high.probability > 0.5 > low.probability
    assert high.lower <= high.probability <= high.upper and high.texture_group is not None
    assert svc.serving("breast_cancer").name == BAYES


def test_bayesian_artifacts_vanish_and_the_stub_answers_meanwhile(bayes_service, monkeypatch):
    svc, info = bayes_service
    folder = _artifact_folder(svc.registry, BAYES, info.version)
    hold = threading.Event()

    def wrapper(real):
        def train(s, progress=None):
            hold.wait(WAIT)  # keep the retrain running while we look at the fallback
            raise RuntimeError("held retrain")
        return train

    patch_train(monkeypatch, BAYES, wrapper)
    shutil.rmtree(folder)
    try:
        answer = svc.predict("breast_cancer", cancer_rows()[0])
        assert answer.is_fallback and answer.model_name == STUB and answer.probability > 0.5
        assert "artifacts" in svc.status()[BAYES].last_error
        assert svc.status()[BAYES].state in ("queued", "training")
    finally:
        hold.set()
    with pytest.raises(RuntimeError):
        svc._futures[BAYES].result(timeout=WAIT)
    assert svc.status()[BAYES].state == "failed"


def test_an_unreadable_store_keeps_the_loaded_model_serving(service, monkeypatch):
    service.retrain(IRIS).result(timeout=WAIT)

    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(service.registry, "load_version", locked)
    assert service.predict(IRIS, iris_row()).model_version == "1"
    assert "database is locked" in service.status()[IRIS].last_error
    monkeypatch.setattr(service.registry, "champion_version", locked)
    assert service.predict(IRIS, iris_row()).model_version == "1"
