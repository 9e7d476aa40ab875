"""Prediction audit trail in the app database (DATABASE_URL).

record() never raises and never waits on the database: rows go through a bounded queue
to one writer thread. If the queue is full or the database is down, the row is dropped
and counted (`dropped`), and the prediction goes on. Inputs are model features only:
keys that look like credentials are removed before anything is stored.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import queue
import threading
from datetime import datetime, timezone
from typing import Any, Mapping

import pandas as pd
import sqlalchemy as sa

from core.auth import _UTCDateTime, make_engine
from core.errors import ConfigError, InvalidInput

log = logging.getLogger(__name__)

COLUMNS = ("time", "username", "model", "version", "inputs", "result", "rate_limited", "error")
SECRET_KEY_WORDS = ("password", "passwd", "secret", "token", "api_key", "cookie")
MAX_INPUT_KEYS = 200
MAX_TEXT_CHARS = 500
QUEUE_SIZE = 10_000

metadata = sa.MetaData()
audit_table = sa.Table(
    "prediction_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", _UTCDateTime, nullable=False, index=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("version", sa.String(50), nullable=True),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("rate_limited", sa.Boolean, nullable=False),
    sa.Column("error", sa.String(MAX_TEXT_CHARS), nullable=True),
)


def _json_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value[:MAX_TEXT_CHARS] if isinstance(value, str) else value
    if isinstance(value, (int, float)):
        return value if not isinstance(value, float) or math.isfinite(value) else str(value)
    try:
        as_float = float(value)  # numpy scalars
    except (TypeError, ValueError):
        return str(value)[:MAX_TEXT_CHARS]
    return as_float if math.isfinite(as_float) else str(as_float)


def clean_inputs(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Feature values as JSON-safe data; credential-looking keys dropped."""
    if not isinstance(values, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in list(values.items())[:MAX_INPUT_KEYS]:
        name = str(key)[:100]
        if any(word in name.lower() for word in SECRET_KEY_WORDS):
            continue
        out[name] = _json_value(value)
    return out


def summarize_result(prediction: Any) -> dict[str, Any] | None:
    """Class probabilities, or probability with its interval; never draws arrays."""
    if prediction is None:
        return None
    if isinstance(prediction, Mapping):
        return {str(k): _json_value(v) for k, v in prediction.items() if not hasattr(v, "shape") or getattr(v, "ndim", 1) == 0}
    if hasattr(prediction, "probabilities"):
        return {
            "label": _json_value(getattr(prediction, "label", None)),
            "probabilities": {str(k): _json_value(v) for k, v in dict(prediction.probabilities).items()},
        }
    if hasattr(prediction, "probability"):
        return {
            "probability": _json_value(prediction.probability),
            "lower": _json_value(getattr(prediction, "lower", None)),
            "upper": _json_value(getattr(prediction, "upper", None)),
            "credible_mass": _json_value(getattr(prediction, "credible_mass", None)),
            "is_fallback": bool(getattr(prediction, "is_fallback", False)),
        }
    if dataclasses.is_dataclass(prediction):
        return {f.name: _json_value(getattr(prediction, f.name)) for f in dataclasses.fields(prediction)}
    return {"value": _json_value(prediction)}


def version_of(prediction: Any) -> str | None:
    """The registered version that answered, or 'fallback' for the stub."""
    if prediction is None:
        return None
    if getattr(prediction, "is_fallback", False):
        return "fallback"
    version = getattr(prediction, "model_version", None)
    return None if version is None else str(version)[:50]


class AuditLog:
    """Writes audit rows in the background; queries them as DataFrames."""

    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url)
        try:
            metadata.create_all(self.engine, tables=[audit_table])
        except sa.exc.SQLAlchemyError as exc:
            raise ConfigError(f"Cannot open the audit database: {type(exc).__name__}.") from None
        self.dropped = 0
        self._queue: queue.Queue[dict[str, Any] | threading.Event] = queue.Queue(maxsize=QUEUE_SIZE)
        self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
        self._writer.start()

    def record(
        self,
        *,
        username: str,
        model: str,
        inputs: Mapping[str, Any] | None,
        result: Any = None,
        version: str | None = None,
        rate_limited: bool = False,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Queue one row. Never raises; a row that cannot be queued is dropped and counted."""
        try:
            row = {
                "time": at or datetime.now(timezone.utc),
                "username": str(username)[:64],
                "model": str(model)[:100],
                "version": version if version is not None else version_of(result),
                "inputs": json.dumps(clean_inputs(inputs), sort_keys=True),
                "result": None if result is None else json.dumps(summarize_result(result), sort_keys=True),
                "rate_limited": bool(rate_limited),
                "error": None if error is None else str(error)[:MAX_TEXT_CHARS],
            }
            self._queue.put_nowait(row)
        except Exception as exc:  # noqa: BLE001 - auditing must never break a prediction
            self.dropped += 1
            log.warning("audit row dropped (%s)", type(exc).__name__)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until rows queued so far are written (or dropped); False on timeout."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)  # the writer sets it when it gets there
        except queue.Full:
            return False
        return done.wait(timeout)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[dict[str, Any]] = []
            markers: list[threading.Event] = []
            while True:
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
                if len(batch) >= 500:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(sa.insert(audit_table), batch)
                except Exception as exc:  # noqa: BLE001
                    self.dropped += len(batch)
                    log.warning("audit: %d rows dropped, database error %s", len(batch), type(exc).__name__)
            for marker in markers:
                marker.set()

    def query(
        self,
        username: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        limit: int = 100_000,
    ) -> pd.DataFrame:
        """Rows newest first, filtered; inputs/result as parsed dicts."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidInput(f"{name} must be a timezone-aware datetime.", field=name)
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInput("limit must be a positive whole number.", field="limit")
        self.flush(timeout=2.0)
        stmt = sa.select(audit_table).order_by(audit_table.c.time.desc(), audit_table.c.id.desc()).limit(limit)
        if username:
            stmt = stmt.where(audit_table.c.username == username.strip().lower())
        if model:
            stmt = stmt.where(audit_table.c.model == model)
        if since is not None:
            stmt = stmt.where(audit_table.c.time >= since)
        if until is not None:
            stmt = stmt.where(audit_table.c.time <= until)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        records = [
            {
                "time": r["time"],
                "username": r["username"],
                "model": r["model"],
                "version": r["version"],
                "inputs": json.loads(r["inputs"]),
                "result": json.loads(r["result"]) if r["result"] else None,
                "rate_limited": bool(r["rate_limited"]),
                "error": r["error"],
            }
            for r in rows
        ]
        return pd.DataFrame.from_records(records, columns=list(COLUMNS))

    @staticmethod
    def to_csv(df: pd.DataFrame) -> bytes:
        """CSV bytes for a download button; dict columns as JSON text."""
        out = df.copy()
        for column in ("inputs", "result"):
            if column in out:
                out[column] = out[column].map(lambda v: "" if v is None else json.dumps(v, sort_keys=True))
        if "time" in out:
            out["time"] = out["time"].map(lambda t: t.isoformat() if isinstance(t, datetime) else t)
        buffer = io.StringIO()
        out.to_csv(buffer, index=False)
        return buffer.getvalue().encode()


_logs: dict[str, AuditLog] = {}
_logs_lock = threading.Lock()


def get_audit_log(database_url: str) -> AuditLog:
    """One audit log (and writer thread) per database URL per process."""
    with _logs_lock:
        audit = _logs.get(database_url)
        if audit is None:
            audit = _logs[database_url] = AuditLog(database_url)
        return audit
