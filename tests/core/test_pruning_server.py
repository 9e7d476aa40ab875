"""The same pruning against a real `mlflow server` (PostgreSQL backend, proxied
artifacts in a temp folder) where the app only knows the http tracking URI.

One throwaway database and one server per module (start-up is the slow part)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.pruning import folder_bytes, prune_model, store_usage
from tests.conftest import make_settings, throwaway_postgres_database

pytestmark = pytest.mark.server
IRIS = "iris_logistic_regression"
MLFLOW = Path(sys.executable).with_name("mlflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(tracking URI, backend URI, artifacts destination folder)."""
    with throwaway_postgres_database("cms_prune") as backend:
        yield from _server(tmp_path_factory, backend)


def _server(tmp_path_factory, backend: str):
    dest = tmp_path_factory.mktemp("mlflow-server") / "artifacts"
    dest.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = open(dest.parent / "server.log", "w")
    proc = subprocess.Popen(
        [str(MLFLOW), "server", "--backend-store-uri", backend, "--artifacts-destination", str(dest),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(dest.parent / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not become healthy in 120 s")
            time.sleep(0.5)
        yield url, backend, dest
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_prune_through_the_server_keeps_champion_and_frees_proxied_artifacts(server, tmp_path):
    from mlflow.exceptions import MlflowException

    from core.models import get_spec
    from core.registry import Registry

    url, backend, dest = server
    settings = make_settings(tmp_path, MLFLOW_TRACKING_URI=url)  # the app knows only the URL
    registry = Registry(settings)
    trained = get_spec(IRIS).train(settings)
    for _ in range(6):
        registry.log_training(trained)
    registry.set_champion(IRIS, 1)
    before = {v.version: v for v in registry.list_versions(IRIS)}
    assert not (tmp_path / "mlartifacts").exists()  # nothing written on the app's disk

    def model_files(info) -> list[Path]:
        return list(dest.rglob(f"models/{info.model_id}/artifacts"))

    dropped = ["2", "3", "4"]
    pruned_bytes = sum(folder_bytes(p) for v in dropped for p in model_files(before[v]))
    assert pruned_bytes > 0
    dest_before = folder_bytes(dest)

    import mlflow

    mlflow.set_tracking_uri(None)  # pruning must not lean on the process-wide URI
    report = prune_model(settings, IRIS, retain=2)

    assert report.ok, report.errors
    assert sorted(report.deleted_versions) == [f"{IRIS}/{v}" for v in dropped]
    assert sorted(report.deleted_logged_models) == sorted(before[v].model_id for v in dropped)
    assert any("soft-deleted in the server's database" in n for n in report.notes)
    # Sizes through the artifact proxy match the server's disk.
    assert report.usage_before.artifact_bytes == dest_before
    assert report.usage_before.db_bytes is None
    assert dest_before - folder_bytes(dest) == pruned_bytes == report.usage_before.artifact_bytes - report.usage_after.artifact_bytes
    for v in dropped:
        assert not any(p.exists() and any(p.iterdir()) for p in model_files(before[v]))

    fresh = Registry(settings)
    assert sorted(v.version for v in fresh.list_versions(IRIS)) == ["1", "5", "6"]
    champion = fresh.load_champion(IRIS)  # downloaded through the proxy
    assert champion.version == "1" and champion.predictor.model_name == IRIS
    assert Registry(settings).load_version(IRIS, "6").version == "6"

    # The rows are only soft-deleted until gc gets the server's database URI.
    client = fresh.client
    assert client.get_run(before["2"].run_id).info.lifecycle_stage == "deleted"
    purge = prune_model(settings, IRIS, retain=2, backend_store_uri=backend)
    assert purge.ok, purge.errors
    assert purge.deleted_versions == []
    assert sorted(purge.purged_runs) == sorted(before[v].run_id for v in dropped)
    assert sorted(purge.purged_logged_models) == sorted(before[v].model_id for v in dropped)
    with pytest.raises(MlflowException):
        client.get_run(before["2"].run_id)
    assert Registry(settings).load_champion(IRIS).version == "1"
    usage = store_usage(settings)
    assert usage.artifact_bytes == folder_bytes(dest) and "tracking server" in usage.note
