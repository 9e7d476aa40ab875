"""Workarounds for MLflow 3.17 behaviour that registry and pruning both depend on."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_process_uri_lock = threading.RLock()


@contextmanager
def process_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's process-global tracking URI at uri for one block, then restore it.

    The SQL registry resolves a models:/<model_id> source, mlflow-artifacts:/ URIs resolve,
    and `mlflow gc` runs, through that global (set_tracking_uri also writes
    MLFLOW_TRACKING_URI into os.environ, which would leak into later settings). One
    re-entrant lock for the whole process, so threads never see each other's store.
    """
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _process_uri_lock:
        previous = tracking_utils._tracking_uri
        previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        tracking_utils._tracking_uri = uri
        try:
            yield
        finally:
            tracking_utils._tracking_uri = previous
            if previous_env is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_env


def model_id_of(version: Any) -> str | None:
    """A registered version's LoggedModel id: our model_id tag, the attribute, or a
    models:/m-... source (the SQL registry can drop the attribute)."""
    tagged = (version.tags or {}).get("model_id") or getattr(version, "model_id", None)
    if tagged:
        return str(tagged)
    source = version.source or ""
    if source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/")[0]
    return None
