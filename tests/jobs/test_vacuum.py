"""python -m jobs.vacuum as a cron runs it: a subprocess, one JSON line, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.jobs.conftest import REPO

IRIS = "iris_logistic_regression"


def env_for(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RETAIN_"))}
    env.update({
        "APP_ENV": "test",
        "DATA_DIR": str(root),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLFLOW_ARTIFACT_ROOT": str(root / "mlartifacts"),
        "DATABASE_URL": f"sqlite:///{root}/app.db",
    })
    env.update(extra)
    return env


def vacuum(root: Path, *args: str, **extra: str) -> tuple[int, dict, str]:
    result = subprocess.run([sys.executable, "-m", "jobs.vacuum", *args], cwd=REPO, env=env_for(root, **extra),
                            capture_output=True, text=True, timeout=120)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, (result.stdout, result.stderr[-2000:])
    return result.returncode, json.loads(lines[0]), result.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """6 iris versions, champion on v1."""
    from core.models import get_spec
    from core.registry import Registry

    root = tmp_path_factory.mktemp("vacuum")
    settings = make_settings(root)
    trained = get_spec(IRIS).train(settings)
    registry = Registry(settings)
    for _ in range(6):
        registry.log_training(trained)
    registry.set_champion(IRIS, 1)
    return root


def versions(root: Path) -> list[str]:
    from core.registry import Registry

    return sorted(v.version for v in Registry(make_settings(root)).list_versions(IRIS))


def test_help_exits_zero():
    result = subprocess.run([sys.executable, "-m", "jobs.vacuum", "--help"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--retain", "--max-age-days", "--dry-run", "--vacuum-db"):
        assert flag in result.stdout


def vacuum_here(root: Path, monkeypatch, capsys, *args: str, **extra: str) -> tuple[int, dict]:
    """The same job in this process (no interpreter start, MLflow already imported)."""
    from core.config import reset_settings_cache
    from jobs.vacuum import main

    reset_settings_cache()
    for key in [k for k in os.environ if k.startswith(("MLFLOW_", "RETAIN_"))]:
        monkeypatch.delenv(key)
    for key, value in env_for(root, **extra).items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    code = main(list(args))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    return code, json.loads(lines[0])


def test_dry_run_then_vacuum_then_nothing_left(store, monkeypatch, capsys):
    code, line = vacuum_here(store, monkeypatch, capsys, "--retain", "2", "--dry-run")
    assert code == 0 and line["ok"] and line["dry_run"]
    assert (line["deleted_versions"], line["deleted_runs"], line["deleted_logged_models"]) == (3, 3, 3)
    assert line["bytes_before"] == line["bytes_after"]
    assert versions(store) == ["1", "2", "3", "4", "5", "6"]

    code, line, stderr = vacuum(store, "--retain", "2", "--vacuum-db")
    assert code == 0, line
    assert (line["deleted_versions"], line["deleted_runs"], line["deleted_logged_models"]) == (3, 3, 3)
    assert line["purged_runs"] == 3 and line["purged_logged_models"] == 3
    assert line["artifact_bytes_after"] < line["artifact_bytes_before"]
    assert line["db_bytes_after"] < line["db_bytes_before"]
    assert line["errors"] == [] and line["seconds"] > 0
    assert "permanently deleted" in stderr  # gc's own lines went to stderr, not the JSON line
    assert versions(store) == ["1", "5", "6"]  # champion v1 + newest 2

    code, line = vacuum_here(store, monkeypatch, capsys, "--retain", "2")
    assert code == 0 and line["deleted_runs"] == 0 and line["freed_bytes"] == 0


def test_failures_exit_one_with_a_json_line(store, tmp_path, monkeypatch, capsys):
    code, line = vacuum_here(store, monkeypatch, capsys, "--retain", "0")
    assert code == 1 and line["ok"] is False and "keep at least 1" in line["error"]

    code, line = vacuum_here(store, monkeypatch, capsys, "--retain", "many")
    assert code == 1 and line["ok"] is False

    code, line = vacuum_here(tmp_path, monkeypatch, capsys, RETAIN_RUNS_PER_MODEL="-3")  # ConfigError
    assert code == 1 and "RETAIN_RUNS_PER_MODEL" in line["error"]

    # An empty place (a cron service without the app's volume) is a failure, not a no-op.
    code, line = vacuum_here(tmp_path / "no-volume", monkeypatch, capsys)
    assert code == 1 and "no MLflow store" in line["error"]
    assert not (tmp_path / "no-volume" / "mlflow.db").exists()

    # No tracking server listening there: the store cannot be read.
    code, line = vacuum_here(tmp_path, monkeypatch, capsys, MLFLOW_TRACKING_URI="http://127.0.0.1:9",
                             MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    assert code == 1 and line["ok"] is False and "Cannot read the MLflow store" in line["error"]
