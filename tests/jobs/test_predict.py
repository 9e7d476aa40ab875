"""python -m jobs.predict: scores a CSV with the serving model; bad rows get an error."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from core.data import load_dataset
from core.models import get_spec
from core.registry import Registry
from jobs import predict
from tests.jobs.conftest import REPO

pytestmark = pytest.mark.usefixtures("cached_stub_fit")


@pytest.fixture
def stub_store(job_settings, stub_fit):
    Registry(job_settings).log_training(stub_fit)
    return job_settings


def cancer_csv(path, n: int = 6):
    ds = load_dataset("breast_cancer")
    frame = ds.X_test.head(n).astype(object).copy()
    frame.insert(0, "case_id", [f"c{i}" for i in range(n)])  # extra column: ignored
    frame.loc[frame.index[2], "worst radius"] = "big"
    frame.loc[frame.index[4], "worst concave points"] = ""
    frame.to_csv(path, index=False)
    return ds.y_test[:n]


def test_cancer_csv_with_bad_rows_scores_the_rest(stub_store, tmp_path, capsys):
    labels = cancer_csv(tmp_path / "in.csv")
    code = predict.main(["--model", "breast_cancer", "--csv", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv")])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == predict.EXIT_ROW_ERRORS == 3
    assert summary["rows"] == 6 and summary["scored"] == 4 and summary["errors"] == 2 and summary["is_fallback"]
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(out["row"]) == list(range(6))
    assert "must be a number" in out.loc[2, "error"] and "'worst radius'" in out.loc[2, "error"]
    assert "has no value" in out.loc[4, "error"]
    good = out[out["error"] == ""]
    assert len(good) == 4 and set(good["model_version"].astype(str)) == {"1"}
    assert set(good["model"]) == {"breast_cancer_stub"} and set(good["is_fallback"].astype(str)) == {"True"}
    for _, row in good.iterrows():
        probability = float(row["probability"])
        assert float(row["lower"]) <= probability <= float(row["upper"])
        assert (probability > 0.5) == bool(labels[int(row["row"])])


def test_iris_csv_all_good_exits_0_with_class_probabilities(job_settings, tmp_path, capsys):
    Registry(job_settings).log_training(get_spec("iris_logistic_regression").train(job_settings))
    ds = load_dataset("iris")
    ds.X_test.head(5).to_csv(tmp_path / "iris.csv", index=False)
    code = predict.main(["--model", "iris_logistic_regression", "--csv", str(tmp_path / "iris.csv")])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    from io import StringIO

    out = pd.read_csv(StringIO(captured.out), keep_default_na=False)  # CSV on stdout
    probability_columns = [c for c in out.columns if c.startswith("probability_")]
    assert len(probability_columns) == 3 and len(out) == 5
    assert (out[probability_columns].sum(axis=1).round(6) == 1.0).all()
    best = out[probability_columns].to_numpy().argmax(axis=1)
    assert list(out["label"]) == [probability_columns[i].removeprefix("probability_") for i in best]
    assert set(out["label"]) <= set(ds.target_names) and (out["error"] == "").all()
    summary = json.loads(captured.err.strip().splitlines()[-1])  # summary on stderr
    assert summary["ok"] and summary["version"] == "1"


def test_cli_help_names_the_exit_codes():
    done = subprocess.run([sys.executable, "-m", "jobs.predict", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--csv" in done.stdout and "Exit codes" in done.stdout


def test_no_serving_model_exits_1(job_settings, tmp_path, capsys):
    cancer_csv(tmp_path / "in.csv")
    code = predict.main(["--model", "breast_cancer", "--csv", str(tmp_path / "in.csv"), "--out", str(tmp_path / "o.csv")])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and "No model can score breast_cancer" in summary["error"]
    assert not (tmp_path / "o.csv").exists()


def test_unreadable_csv_exits_1(job_settings, tmp_path, capsys):
    code = predict.main(["--model", "breast_cancer", "--csv", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")])
    assert code == 1 and "cannot read" in json.loads(capsys.readouterr().out)["error"]
