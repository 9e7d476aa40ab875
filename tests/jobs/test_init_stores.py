import json
import stat

import pytest

from core.auth import UserStore
from core.registry import EXPERIMENT_NAME, Registry
from jobs import init_stores
from tests.conftest import make_settings


@pytest.fixture
def env_stores(tmp_path, monkeypatch):
    settings = make_settings(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", settings.mlflow_artifact_root)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return settings


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_first_run_creates_stores_and_one_admin_then_is_idempotent(env_stores, capsys):
    assert init_stores.main([]) == 0
    first = capsys.readouterr().out
    assert "Generated password for user 'admin'" in first
    assert _last_json(first)["first_admin"] == "created"
    users = UserStore(env_stores.database_url).list_users()
    assert [(u.username, u.role) for u in users] == [("admin", "admin")]
    assert Registry(env_stores).client.get_experiment_by_name(EXPERIMENT_NAME) is not None
    key = env_stores.data_dir / "secret_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    assert init_stores.main([]) == 0
    second = capsys.readouterr().out
    assert "password" not in second.lower().replace('"first_admin"', "")
    assert _last_json(second)["first_admin"] == "skipped"
    assert len(UserStore(env_stores.database_url).list_users()) == 1


def test_bad_setting_exits_3_with_the_variable_named(env_stores, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgres://nobody@localhost/x")
    assert init_stores.main([]) == 3
    assert "DATABASE_URL" in capsys.readouterr().err
