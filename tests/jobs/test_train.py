"""python -m jobs.train: one JSON line, exit codes a cron can alert on."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from core.models.types import GateResult
from core.registry import Registry
from jobs import train
from tests.core.test_service import patch_train
from tests.jobs.conftest import REPO

pytestmark = pytest.mark.usefixtures("cached_stub_fit")

IRIS = "iris_logistic_regression"
STUB = "breast_cancer_stub"


def run_main(capsys, *argv: str) -> tuple[int, dict]:
    code = train.main(list(argv))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return code, json.loads(lines[0])


def test_cli_trains_registers_and_prints_one_json_line(job_env, job_settings):
    done = subprocess.run(
        [sys.executable, "-m", "jobs.train", "--model", IRIS], cwd=REPO, env=job_env,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    result = summary["models"][IRIS]
    assert summary["ok"] and result["version"] == "1" and result["gate"] == "passed" and result["champion"]
    assert result["metrics"]["accuracy"] >= 0.85 and result["seconds"] > 0
    assert Registry(job_settings).champion_version(IRIS) == "1"  # in the store the env named


def test_if_missing_skips_a_loadable_champion_and_retrains_a_broken_one(job_settings, capsys):
    import shutil

    from core.registry import _local_path

    code, first = run_main(capsys, "--model", STUB, "--if-missing")
    assert code == 0 and first["models"][STUB]["version"] == "1"
    code, second = run_main(capsys, "--model", STUB, "--if-missing")
    assert code == 0 and second["models"][STUB]["skipped"] and second["models"][STUB]["version"] == "1"

    registry = Registry(job_settings)
    info = registry.version_info(STUB, "1")
    shutil.rmtree(_local_path(registry.client.get_logged_model(info.model_id).artifact_location))
    code, third = run_main(capsys, "--model", STUB, "--if-missing")
    assert code == 0 and third["models"][STUB]["version"] == "2"


def test_failed_training_exits_1_with_the_error(job_settings, capsys, monkeypatch):
    def broken(real):
        def fn(settings, progress=None):
            raise RuntimeError("out of memory")
        return fn

    patch_train(monkeypatch, IRIS, broken)
    code, summary = run_main(capsys, "--model", IRIS, "--model", STUB)
    assert code == train.EXIT_FAILED == 1
    assert not summary["ok"] and summary["failed"] == [IRIS]
    assert "out of memory" in summary["models"][IRIS]["error"]
    assert summary["models"][STUB]["gate"] == "passed"  # the others still train


def test_gate_rejection_exits_3_and_keeps_the_champion(job_settings, capsys, monkeypatch):
    code, _ = run_main(capsys, "--model", IRIS)
    assert code == 0

    def rejecting(real):
        def fn(settings, progress=None):
            return dataclasses.replace(real(settings, progress), gate=GateResult(False, ["accuracy = 0.3 is below the floor 0.85"]))
        return fn

    patch_train(monkeypatch, IRIS, rejecting)
    code, summary = run_main(capsys, "--model", IRIS)
    assert code == train.EXIT_REJECTED == 3
    result = summary["models"][IRIS]
    assert result["gate"] == "rejected" and not result["champion"] and "0.3" in result["gate_reason"]
    assert Registry(job_settings).champion_version(IRIS) == "1"


def test_bad_arguments_and_settings_exit_2(job_env, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--model", "iris_svm"])
    assert exit_info.value.code == 2
    monkeypatch.setenv("TRAIN_WORKERS", "many")
    code, summary = run_main(capsys, "--model", IRIS)
    assert code == 2 and "TRAIN_WORKERS" in summary["error"]


def test_help_names_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "--if-missing" in out and "Exit codes" in out


def test_prune_after_training_reports_the_pruners_errors(job_settings, monkeypatch):
    import core.pruning
    from core.pruning import PruneReport

    failed = PruneReport(scope=IRIS, dry_run=False, retain=1, errors=["mlflow gc failed: boom"])
    monkeypatch.setattr(core.pruning, "prune_model", lambda settings, name: failed)
    result = train._prune(job_settings, IRIS)
    assert result["ok"] is False and result["errors"] == ["mlflow gc failed: boom"]
