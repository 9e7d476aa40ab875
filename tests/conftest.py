"""Shared fixtures: every test gets its own stores under tmp_path and small NUTS runs."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

import core  # noqa: F401  - sets XLA host device count before anything imports JAX
from core.config import Settings, load_settings, reset_settings_cache

REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARED_JAX_CACHE = Path(os.environ.get("TEST_JAX_CACHE", "/tmp/cms-test-jax-cache"))


def make_settings(root: Path, **overrides: str) -> Settings:
    """Settings pointing every store at root; small Bayesian runs; no training on start."""
    env = {
        "APP_ENV": "test",
        "DATA_DIR": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(root / "mlartifacts"),
        "DATABASE_URL": f"sqlite:///{root}/app.db",
        "BAYES_CHAINS": "4",
        "BAYES_WARMUP": "300",
        "BAYES_SAMPLES": "300",
        "JAX_CACHE_DIR": str(SHARED_JAX_CACHE),
        "TRAIN_ON_START": "0",
        "MLFLOW_GC_AFTER_TRAIN": "0",
        "VACUUM_INTERVAL_HOURS": "0",
    }
    env.update(overrides)
    return load_settings(env)


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(autouse=True)
def _isolate_settings_cache():
    reset_settings_cache()
    yield
    reset_settings_cache()


@pytest.fixture(scope="session")
def schema_template(tmp_path_factory) -> Path:
    """An empty MLflow SQLite schema made once; tests copy it (creating one costs seconds)."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("schema")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)
    return root / "mlflow.db"


@contextmanager
def throwaway_postgres_database(prefix: str) -> Iterator[str]:
    """A database created on the local PostgreSQL for one test module, dropped afterwards;
    yields its postgresql:// URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
