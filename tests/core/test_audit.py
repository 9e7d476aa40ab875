"""Audit trail: rows, queries, CSV, no credentials, never raises."""
from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


import numpy as np
import pytest
import sqlalchemy as sa

from core.audit import AuditLog, clean_inputs, get_audit_log, summarize_result, version_of
from core.errors import InvalidInput
from tests.conftest import throwaway_postgres_database


@dataclass(frozen=True)
class FakeClass:
    model_name: str
    label: str
    probabilities: dict
    model_version: str | None = "3"


@dataclass(frozen=True)
class FakeCancer:
    model_name: str
    probability: float
    lower: float
    upper: float
    credible_mass: float = 0.94
    is_fallback: bool = False
    model_version: str | None = "7"
    probability_draws: object = field(default=None)


@pytest.fixture(scope="module")
def postgres_url():
    with throwaway_postgres_database("cms_test_audit") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def audit(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/app.db"
    else:
        url = request.getfixturevalue("postgres_url")
    log = AuditLog(url)
    if request.param == "postgresql":
        with log.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM prediction_audit"))
    yield log
    log.flush()
    log.engine.dispose()


def test_rows_are_recorded_and_queried(audit):
    audit.record(username="alice", model="iris_random_forest", inputs={"sepal length (cm)": 5.1},
                 result=FakeClass("iris_random_forest", "setosa", {"setosa": 0.9, "versicolor": 0.1}))
    audit.record(username="bob", model="breast_cancer", inputs={"mean radius": np.float64(14.2)},
                 result=FakeCancer("breast_cancer_bayes", 0.81, 0.7, 0.9, probability_draws=np.ones(4000)))
    audit.record(username="bob", model="breast_cancer", inputs={"mean radius": 15.0},
                 result=FakeCancer("breast_cancer_stub", 0.5, 0.3, 0.7, is_fallback=True, model_version=None))
    audit.record(username="bob", model="breast_cancer", inputs={"mean radius": 15.0}, rate_limited=True)
    df = audit.query()
    assert list(df.columns) == ["time", "username", "model", "version", "inputs", "result", "rate_limited", "error"]
    assert len(df) == 4
    alice = audit.query(username="alice").iloc[0]
    assert alice["version"] == "3" and alice["result"]["probabilities"]["setosa"] == 0.9
    assert alice["inputs"] == {"sepal length (cm)": 5.1} and not alice["rate_limited"]
    bob = audit.query(username="bob", model="breast_cancer")
    assert len(bob) == 3
    assert bob["rate_limited"].tolist().count(True) == 1
    versions = set(bob["version"].dropna())
    assert versions == {"7", "fallback"}
    bayes = bob[bob["version"] == "7"].iloc[0]["result"]
    assert bayes == {"probability": 0.81, "lower": 0.7, "upper": 0.9, "credible_mass": 0.94, "is_fallback": False}
    assert audit.query(model="nothing").empty


def test_time_range(audit):
    now = datetime.now(timezone.utc)
    for hours in (48, 24, 1):
        audit.record(username="u", model="m", inputs={}, at=now - timedelta(hours=hours))
    assert len(audit.query(since=now - timedelta(hours=30))) == 2
    assert len(audit.query(until=now - timedelta(hours=30))) == 1
    assert len(audit.query(since=now - timedelta(hours=30), until=now - timedelta(hours=2))) == 1
    with pytest.raises(InvalidInput):
        audit.query(since=datetime(2026, 1, 1))  # naive
    times = audit.query()["time"].tolist()
    assert times == sorted(times, reverse=True)


def test_csv_export(audit):
    audit.record(username="alice", model="m", inputs={"x": 1.5}, result={"probability": 0.25})
    data = AuditLog.to_csv(audit.query())
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == 1
    assert rows[0]["username"] == "alice"
    assert json.loads(rows[0]["inputs"]) == {"x": 1.5}
    assert json.loads(rows[0]["result"]) == {"probability": 0.25}
    assert datetime.fromisoformat(rows[0]["time"]).tzinfo is not None


def test_credentials_are_never_stored(audit):
    audit.record(username="alice", model="m", inputs={"x": 1, "password": "hunter2", "API_KEY": "k", "session_token": "t"})
    row = audit.query().iloc[0]
    assert row["inputs"] == {"x": 1}
    with audit.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT * FROM prediction_audit").all()
    assert "hunter2" not in repr(raw)


def test_record_never_raises_and_counts_drops(tmp_path):
    audit = AuditLog(f"sqlite:///{tmp_path}/app.db")
    audit.record(username="a", model="m", inputs={"x": object()})  # odd value: stored as text
    audit.record(username="a", model="m", inputs=None)
    assert audit.flush() and audit.dropped == 0
    audit.engine.dispose()
    (tmp_path / "app.db").unlink()
    (tmp_path / "app.db").mkdir()  # the database file can no longer be opened
    start = time.monotonic()
    audit.record(username="a", model="m", inputs={"x": 1})
    assert time.monotonic() - start < 1.0  # never waits on the database
    assert audit.flush()
    assert audit.dropped == 1


def test_helpers():
    assert clean_inputs({"a": float("nan"), "b": np.int64(3), "Password2": "x"}) == {"a": "nan", "b": 3.0}
    assert version_of(None) is None
    assert version_of(FakeCancer("x", 0.1, 0, 1, is_fallback=True)) == "fallback"
    assert summarize_result(None) is None
    assert summarize_result({"p": 0.5, "draws": np.ones(3)}) == {"p": 0.5}


def test_get_audit_log_is_shared(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    assert get_audit_log(url) is get_audit_log(url)
