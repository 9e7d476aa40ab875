"""Fixtures for the job CLIs: a store in tmp_path, exposed through the environment."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def job_env(tmp_path, schema_template, monkeypatch) -> dict[str, str]:
    """Environment of a separate store under tmp_path, set in os.environ for in-process
    main() calls and returned for subprocesses."""
    env = {
        "APP_ENV": "test",
        "DATA_DIR": str(tmp_path),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "mlartifacts"),
        "DATABASE_URL": f"sqlite:///{tmp_path}/app.db",
        "BAYES_WARMUP": "300",
        "BAYES_SAMPLES": "300",
        "MLFLOW_GC_AFTER_TRAIN": "0",
        "TRAIN_ON_START": "0",
    }
    shutil.copyfile(schema_template, tmp_path / "mlflow.db")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


@pytest.fixture
def job_settings(job_env, tmp_path):
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def stub_fit(tmp_path_factory):
    """One real fit of the stub per session (its bootstrap takes seconds here)."""
    from core.models import get_spec

    return get_spec("breast_cancer_stub").train(make_settings(tmp_path_factory.mktemp("stub-fit")))


@pytest.fixture
def cached_stub_fit(monkeypatch, stub_fit):
    """(Opt in with usefixtures.) In-process trainings of the stub return the session's fit: these tests are about
    the jobs' behaviour, not about fitting (the CLI subprocess test trains for real)."""
    import dataclasses

    import core.models

    spec = core.models._SPECS["breast_cancer_stub"]
    monkeypatch.setitem(
        core.models._SPECS, "breast_cancer_stub", dataclasses.replace(spec, train_fn=lambda settings, progress=None: stub_fit)
    )
