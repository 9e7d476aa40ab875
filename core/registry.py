"""MLflow registry: log a training, register a version, move the `champion` alias, load.

Every call goes through one MlflowClient with explicit experiment, run and model ids, so
worker threads never touch MLflow's fluent (per-process / per-thread) state and several
stores can live in one process (tests). Store layout and the cache rules: docs/registry.md.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

import mlflow
from mlflow.entities import LoggedModelOutput, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.config import Settings
from core.errors import ArtifactsMissing, ModelUnavailable, StudioError
from core.mlflow_compat import model_id_of, process_tracking_uri

log = logging.getLogger(__name__)
# MLflow draws tqdm bars on stderr for local copies; they only clutter job and app logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

EXPERIMENT_NAME = "clinical-ml-studio"
CHAMPION = "champion"
PYFUNC_ENTRY = Path(__file__).resolve().parent / "models" / "pyfunc_entry.py"
_BASE_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scikit-learn", "skops")
_BAYES_REQUIREMENTS = ("jax", "jaxlib", "numpyro")
_MAX_PARAM_CHARS = 6000

# Schema creation happens once per (tracking, registry) URI pair and process.
_store_lock = threading.Lock()
_stores_ready: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    run_id: str | None
    model_id: str | None
    created_at: float  # seconds since the epoch
    aliases: tuple[str, ...]
    gate_passed: bool
    gate_reason: str
    metrics: dict[str, float]

    @property
    def is_champion(self) -> bool:
        return CHAMPION in self.aliases


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    predictor: Any  # core.models Predictor
    info: VersionInfo
    artifact_location: str


def _is_missing(error: MlflowException) -> bool:
    return getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _aliases_of(model: Any | None) -> dict[str, str]:
    """alias -> version of a registered model ({} for None)."""
    if model is None:
        return {}
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def _artifact_uri(root: str) -> str:
    """An absolute URI for the experiment's artifact root (plain paths become file URIs)."""
    if "://" in root or root.startswith(("mlflow-artifacts:", "dbfs:")):
        return root
    return Path(root).expanduser().resolve().as_uri()


def _local_path(uri: str) -> Path | None:
    """The local folder behind a file URI, or None for a remote artifact store."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri:
        return Path(uri)
    return None


def pip_requirements_for(name: str) -> list[str]:
    """Pinned requirements of the serving environment (explicit: inference costs seconds)."""
    packages = list(_BASE_REQUIREMENTS)
    if name == "breast_cancer_bayes":
        packages += list(_BAYES_REQUIREMENTS)
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={importlib_metadata.version(package)}")
        except importlib_metadata.PackageNotFoundError:
            pins.append(package)
    return pins


class Registry:
    """One experiment, one registered model per model name, `champion` alias = serving."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: MlflowClient | None = None  # made in ensure_store: it opens the DB
        self._experiment_id: str | None = None
        self._cache: dict[tuple[str, str], LoadedModel] = {}
        self._cache_lock = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self.load_count = 0  # loads from the store (cache misses); tests and ops read it

    # ----------------------------------------------------------------- store set-up
    def ensure_store(self) -> str:
        """Create the schema and the experiment once; idempotent and cheap afterwards.

        SQLite schema creation races when several processes or threads do it at once, so
        it runs under a process lock plus an flock next to the DB file, and is marked done
        per process. Returns the experiment id.
        """
        key = (self.settings.mlflow_tracking_uri, self.settings.mlflow_registry_uri)
        if self._experiment_id is not None and key in _stores_ready:
            return self._experiment_id
        try:
            return self._open_store(key)
        except StudioError:
            raise
        except Exception as error:
            uri = self.settings.redacted()["mlflow_tracking_uri"]
            log.exception("cannot open the MLflow store %s", uri)
            raise ModelUnavailable(
                f"The MLflow store {uri} cannot be opened ({type(error).__name__}: {error}); "
                "check MLFLOW_TRACKING_URI and that the database or server is reachable."
            ) from error

    def _open_store(self, key: tuple[str, str]) -> str:
        with _store_lock, self._file_lock():
            if self._client is None:
                # MlflowClient() opens the store, and a SQLite store creates or migrates
                # its schema on first open: only ever inside this lock.
                self._client = MlflowClient(
                    tracking_uri=self.settings.mlflow_tracking_uri,
                    registry_uri=self.settings.mlflow_registry_uri,
                )
            if key not in _stores_ready:
                self._client.search_experiments(max_results=1)
                self._client.search_registered_models(max_results=1)
            self._experiment_id = self._get_or_create_experiment()
            _stores_ready.add(key)
        return self._experiment_id

    @property
    def client(self) -> MlflowClient:
        """The MlflowClient of this store (the store is set up on first use)."""
        if self._client is None:
            self.ensure_store()
        assert self._client is not None
        return self._client

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        sqlite_path = self.settings.sqlite_path()
        if sqlite_path is None:
            yield
            return
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = sqlite_path.with_name(sqlite_path.name + ".init.lock")
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _get_or_create_experiment(self) -> str:
        assert self._client is not None
        existing = self._client.get_experiment_by_name(EXPERIMENT_NAME)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                self._client.restore_experiment(existing.experiment_id)
            return existing.experiment_id
        root = self.settings.mlflow_artifact_root
        remote_tracking = self.settings.mlflow_tracking_uri.startswith(("http://", "https://"))
        location: str | None
        if remote_tracking and "://" not in root:
            location = None  # a tracking server chooses (--artifacts-destination)
        else:
            location = _artifact_uri(root)
            local = _local_path(location)
            if local is not None:
                local.mkdir(parents=True, exist_ok=True)
        return self._client.create_experiment(EXPERIMENT_NAME, artifact_location=location)

    @property
    def experiment_id(self) -> str:
        return self.ensure_store()

    # ----------------------------------------------------------------- logging
    def log_training(self, trained: Any) -> VersionInfo:
        """Run + LoggedModel + registered version; `champion` moves only if the gate passed."""
        experiment_id = self.ensure_store()
        name = trained.name
        client = self.client
        run = client.create_run(
            experiment_id,
            run_name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            tags={"model_name": name},
        )
        run_id = run.info.run_id
        try:
            params = [Param(str(k), str(v)[:_MAX_PARAM_CHARS]) for k, v in sorted(trained.params.items())]
            if params:
                client.log_batch(run_id, params=params)
            for artifact_name, content in sorted(trained.extra_artifacts.items()):
                client.log_dict(run_id, content, f"extra/{artifact_name}")
                log.debug("logged extra artifact %s for %s", artifact_name, name)
            model_id, location = self._log_model(experiment_id, run_id, trained)
            timestamp = int(time.time() * 1000)
            metrics = [
                Metric(str(k), float(v), timestamp, 0, model_id=model_id, run_id=run_id)
                for k, v in sorted(trained.metrics.items())
            ]
            if metrics:
                client.log_batch(run_id, metrics=metrics)
            version = self._register(name, run_id, model_id, location, trained)
            client.set_terminated(run_id, "FINISHED")
        except Exception:
            client.set_terminated(run_id, "FAILED")
            raise
        return self.version_info(name, version)

    def _log_model(self, experiment_id: str, run_id: str, trained: Any) -> tuple[str, str]:
        from mlflow.models import Model

        name = trained.name
        predictor = trained.predictor
        logged = self.client.create_logged_model(
            experiment_id,
            name=name,
            source_run_id=run_id,
            tags={"model_name": name},
            model_type=type(predictor).__name__,
        )
        model_id = logged.model_id
        try:
            with tempfile.TemporaryDirectory(prefix="cms-log-") as tmp:
                saved = predictor.save(Path(tmp) / "predictor")
                model_dir = Path(tmp) / "model"
                signature, example = _signature(predictor)
                mlflow.pyfunc.save_model(
                    path=str(model_dir),
                    python_model=str(PYFUNC_ENTRY),
                    artifacts={k: str(v) for k, v in saved.items()},
                    pip_requirements=pip_requirements_for(name),
                    model_config={"model_name": name},
                    signature=signature,
                    input_example=example,
                    mlflow_model=Model(
                        artifact_path=logged.artifact_location,
                        model_uuid=model_id,
                        run_id=run_id,
                        model_id=model_id,
                    ),
                )
                for pycache in model_dir.rglob("__pycache__"):
                    shutil.rmtree(pycache, ignore_errors=True)
                self.client.log_model_artifacts(model_id, str(model_dir))
            self.client.finalize_logged_model(model_id, "READY")
            self.client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
        except Exception:
            self.client.finalize_logged_model(model_id, "FAILED")
            raise
        return model_id, logged.artifact_location

    def _register(self, name: str, run_id: str, model_id: str, location: str, trained: Any) -> str:
        try:
            self.client.create_registered_model(name, tags={"model_name": name})
        except MlflowException as error:
            if getattr(error, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        gate = trained.gate
        reason = "; ".join(gate.reasons) if gate.reasons else ("all checks passed" if gate.passed else "rejected")
        tags = {
            "gate": "passed" if gate.passed else "rejected",
            "gate_reason": reason[:4000],
            "metrics": json.dumps({k: float(v) for k, v in trained.metrics.items()})[:4000],
        }
        tags["model_id"] = model_id
        with process_tracking_uri(self.settings.mlflow_tracking_uri):
            version = self.client.create_model_version(
                name, source=f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
            ).version
        if gate.passed:
            self.client.set_registered_model_alias(name, CHAMPION, str(version))
            log.info("%s version %s passed the gate and is champion", name, version)
        else:
            log.warning("%s version %s rejected by the quality gate: %s", name, version, reason)
        return str(version)

    # ----------------------------------------------------------------- queries
    def _registered_model(self, name: str) -> Any | None:
        """get_registered_model, or None when name is not registered."""
        try:
            return self.client.get_registered_model(name)
        except MlflowException as error:
            if _is_missing(error):
                return None
            raise

    def aliases(self, name: str) -> dict[str, str]:
        """alias -> version, read from get_registered_model (search results leave them empty)."""
        return _aliases_of(self._registered_model(name))

    def champion_version(self, name: str) -> str | None:
        return self.aliases(name).get(CHAMPION)

    def set_champion(self, name: str, version: str | int) -> None:
        self.client.get_model_version(name, str(version))  # raises if it does not exist
        self.client.set_registered_model_alias(name, CHAMPION, str(version))

    def version_info(self, name: str, version: str | int, aliases: dict[str, str] | None = None) -> VersionInfo:
        mv = self.client.get_model_version(name, str(version))
        if aliases is None:
            aliases = self.aliases(name)
        return self._to_info(mv, aliases)

    def list_versions(self, name: str) -> list[VersionInfo]:
        """Every registered version of name, newest first."""
        model = self._registered_model(name)
        if model is None:
            return []
        aliases = _aliases_of(model)
        versions = self.client.search_model_versions(f"name = '{name}'", max_results=10_000)
        infos = [self._to_info(mv, aliases) for mv in versions]
        return sorted(infos, key=lambda info: int(info.version), reverse=True)

    def _to_info(self, mv: Any, aliases: dict[str, str]) -> VersionInfo:
        tags = dict(mv.tags or {})
        metrics: dict[str, float] = {}
        try:
            metrics = {k: float(v) for k, v in json.loads(tags.get("metrics", "{}")).items()}
        except (ValueError, TypeError, AttributeError):
            metrics = {}
        version = str(mv.version)
        return VersionInfo(
            name=mv.name,
            version=version,
            run_id=mv.run_id,
            model_id=model_id_of(mv),
            created_at=(mv.creation_timestamp or 0) / 1000.0,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
            gate_passed=tags.get("gate") == "passed",
            gate_reason=tags.get("gate_reason", ""),
            metrics=metrics,
        )

    # ----------------------------------------------------------------- loading
    def load_champion(self, name: str) -> LoadedModel:
        """The current champion, resolved on every call (cheap), loaded once per version."""
        version = self.champion_version(name)
        if version is None:
            raise ModelUnavailable(f"{name} has no champion version yet: train it first.")
        return self.load_version(name, version)

    def load_version(self, name: str, version: str | int) -> LoadedModel:
        """Cached by (name, version). Raises ArtifactsMissing if the stored files are gone."""
        key = (name, str(version))
        with self._cache_lock:
            hit = self._cache.get(key)
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        if hit is not None:
            self._check_present(hit)
            return hit
        with key_lock:
            with self._cache_lock:
                hit = self._cache.get(key)
            if hit is not None:
                self._check_present(hit)
                return hit
            loaded = self._load(name, str(version))
            with self._cache_lock:
                self._cache[key] = loaded
            return loaded

    def evict(self, name: str, version: str | int | None = None) -> None:
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] == name and (version is None or k[1] == str(version))]:
                del self._cache[key]

    def cached_versions(self) -> list[tuple[str, str]]:
        with self._cache_lock:
            return sorted(self._cache)

    def _check_present(self, loaded: LoadedModel) -> None:
        """A stat of the MLmodel file for local stores: a pruned or deleted champion is noticed."""
        local = _local_path(loaded.artifact_location)
        if local is not None and not (local / "MLmodel").is_file():
            self.evict(loaded.name, loaded.version)
            raise ArtifactsMissing(
                f"{loaded.name} version {loaded.version}: its artifacts are gone from {local}."
            )

    def _load(self, name: str, version: str) -> LoadedModel:
        started = time.perf_counter()
        try:
            mv = self.client.get_model_version(name, version)
        except MlflowException as error:
            if _is_missing(error):
                raise ModelUnavailable(f"{name} has no version {version}.") from None
            raise
        info = self._to_info(mv, self.aliases(name))
        try:
            if not info.model_id:
                raise ArtifactsMissing(f"{name} version {version} has no logged model.")
            logged = self.client.get_logged_model(info.model_id)
            location = logged.artifact_location
            local = _local_path(location)
            if local is not None:
                if not (local / "MLmodel").is_file():
                    raise ArtifactsMissing(f"{name} version {version}: no model files at {local}.")
                predictor = _load_predictor_from(local)
            else:
                with tempfile.TemporaryDirectory(prefix="cms-load-") as tmp:
                    path = mlflow.artifacts.download_artifacts(
                        artifact_uri=location,
                        dst_path=tmp,
                        tracking_uri=self.settings.mlflow_tracking_uri,
                        registry_uri=self.settings.mlflow_registry_uri,
                    )
                    predictor = _load_predictor_from(Path(path))
        except ArtifactsMissing as error:
            log.error("cannot load %s version %s: %s", name, version, error)
            raise
        except StudioError:
            raise
        except Exception as error:  # corrupt files, deleted logged model, unreadable npz...
            log.exception("cannot load %s version %s", name, version)
            raise ArtifactsMissing(
                f"{name} version {version}: artifacts missing or unreadable ({type(error).__name__}: {error})"
            ) from error
        self.load_count += 1
        log.info("loaded %s version %s in %.2f s", name, version, time.perf_counter() - started)
        return LoadedModel(name=name, version=version, predictor=predictor, info=info, artifact_location=location)


def _load_predictor_from(model_dir: Path) -> Any:
    import mlflow.pyfunc

    pyfunc_model = mlflow.pyfunc.load_model(str(model_dir))
    return pyfunc_model.unwrap_python_model().predictor


def _signature(predictor: Any) -> tuple[Any, Any]:
    """A signature and a one-row input example from the training medians (cheap, float)."""
    try:
        import pandas as pd
        from mlflow.models import infer_signature

        from core.data import feature_info, load_dataset
        from core.models import get_spec

        spec = get_spec(predictor.model_name)
        infos = {info.name: info for info in feature_info(load_dataset(spec.dataset).name)}
        example = pd.DataFrame([{f: float(infos[f].median) for f in predictor.input_features}])
        output = predictor.predict_frame(example)
        return infer_signature(example, output), example
    except Exception:  # a signature is a nicety; never block a training on it
        log.warning("no signature for %s", getattr(predictor, "model_name", "?"), exc_info=True)
        return None, None
