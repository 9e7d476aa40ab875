from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import ConfigError


def test_embedded_defaults_live_under_data_dir():
    s = load_settings({"DATA_DIR": "/tmp/x"})
    assert s.mlflow_tracking_uri == "sqlite:////tmp/x/mlflow.db"
    assert s.sqlite_path() == Path("/tmp/x/mlflow.db")
    assert s.mlflow_registry_uri == s.mlflow_tracking_uri
    assert s.database_url == "sqlite:////tmp/x/app.db"
    assert s.redis_url is None
    assert (s.rate_limit_default, s.rate_limit_cancer, s.rate_limit_login) == (60, 30, 3)
    assert s.retain_runs_per_model == 5 and s.mlflow_gc_after_train is True and s.train_workers == 1


@pytest.mark.parametrize(
    "env, named",
    [
        ({"TRAIN_WORKERS": "many"}, "TRAIN_WORKERS"),
        ({"TRAIN_WORKERS": "0"}, "TRAIN_WORKERS"),
        ({"RATE_LIMIT_CANCER": "-5"}, "RATE_LIMIT_CANCER"),
        ({"MLFLOW_GC_AFTER_TRAIN": "maybe"}, "MLFLOW_GC_AFTER_TRAIN"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:notaport/0"}, "REDIS_URL"),
        ({"DATABASE_URL": "postgres://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"MLFLOW_TRACKING_URI": "sqlite://"}, "MLFLOW_TRACKING_URI"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"APP_ENV": "production"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"CREDIBLE_MASS": "1.5"}, "CREDIBLE_MASS"),
    ],
)
def test_bad_values_name_the_variable(env, named):
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert named in str(err.value)


def test_production_with_long_secret_is_accepted_and_redacted():
    key = "k" * 40
    s = load_settings({"APP_ENV": "production", "SECRET_KEY": key, "REDIS_URL": "redis://:pw@redis:6379/0"})
    red = s.redacted()
    assert s.is_production
    assert key not in str(red) and "pw" not in str(red)
    assert red["secret_key"] == "set"
