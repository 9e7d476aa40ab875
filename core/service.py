"""ModelService: trains in a thread pool, serves champions, heals itself.

One per process (get_service()). The registry is the source of truth for what serves:
every prediction resolves the `champion` alias (cached for alias_ttl_s) and uses the
loaded model for that version, so a champion promoted by another process (jobs.train) is
picked up without a restart, and a failed or rejected training leaves the previous
champion serving. Status is bookkeeping for people: missing -> queued -> training ->
loaded | failed. State machine: docs/registry.md.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from core.config import Settings, get_settings
from core.errors import ArtifactsMissing, ModelUnavailable, StudioError, UnknownModel
from core.registry import LoadedModel, Registry, VersionInfo

log = logging.getLogger(__name__)

State = Literal["missing", "queued", "training", "loaded", "failed"]
BAYES = "breast_cancer_bayes"
STUB = "breast_cancer_stub"
CANCER_ALIASES = ("breast_cancer", BAYES)
# Start-up order: the stub first so cancer predictions work within seconds.
START_ORDER = (STUB, "iris_logistic_regression", "iris_random_forest", BAYES)


@dataclass(frozen=True)
class ModelStatus:
    name: str
    state: State = "missing"
    version: str | None = None  # the serving (champion) version, if loaded
    last_error: str | None = None
    started_at: float | None = None  # of the last training, epoch seconds
    finished_at: float | None = None
    progress: float = 0.0
    progress_message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    last_prune: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServiceHealth:
    models: dict[str, ModelStatus]
    limiter: Any | None  # core.ratelimit.LimiterStatus (typed loosely: no import cycle)
    last_vacuum: dict[str, Any] | None = None  # the scheduled store-wide vacuum

    @property
    def ok(self) -> bool:
        return any(s.state == "loaded" for s in self.models.values())


class ModelService:
    """Per-process owner of the training pool, the serving models and their status."""

    def __init__(self, settings: Settings, registry: Registry | None = None, *, alias_ttl_s: float = 1.0) -> None:
        from core.models import MODEL_NAMES

        self.settings = settings
        self.registry = registry or Registry(settings)
        self.alias_ttl_s = alias_ttl_s
        self._names: tuple[str, ...] = tuple(MODEL_NAMES)
        self._lock = threading.RLock()
        self._status: dict[str, ModelStatus] = {n: ModelStatus(name=n) for n in self._names}
        self._futures: dict[str, Future] = {}
        self._serving: dict[str, LoadedModel] = {}
        self._alias_cache: dict[str, tuple[float, str | None]] = {}
        self._healed: set[tuple[str, str]] = set()  # versions already sent to retrain
        self._pool = ThreadPoolExecutor(max_workers=settings.train_workers, thread_name_prefix="cms-train")
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cms-load")
        self._limiter: Any | None = None
        self._started = False
        self._closed = False
        self._stopping = threading.Event()
        self._last_vacuum: dict[str, Any] | None = None
        self.trainings_started = 0  # count of training jobs run (ops, tests)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Future:
        """Returns at once. Loads champions in the background and schedules training for
        models without one (when TRAIN_ON_START), the stub first. The returned future
        completes when the start-up loads are done (tests, scripts)."""
        self.registry.ensure_store()  # schema once, before any worker thread touches it
        with self._lock:
            self._started = True
        if self.settings.vacuum_interval_hours > 0:
            threading.Thread(target=self._vacuum_schedule, name="cms-vacuum-timer", daemon=True).start()
        return self._loader.submit(self._load_all)

    def _vacuum_schedule(self) -> None:
        """Store-wide vacuum every VACUUM_INTERVAL_HOURS, run in the training pool.

        On Railway the store sits on a volume that only this service mounts, so a separate
        cron service cannot reach it: the app keeps it bounded itself."""
        interval_s = self.settings.vacuum_interval_hours * 3600.0
        while not self._stopping.wait(interval_s):
            with self._lock:
                if self._closed:
                    return
                self._pool.submit(self._vacuum_job)

    def _vacuum_job(self) -> None:
        def prune() -> Any:
            from core.pruning import prune_store

            return prune_store(self.settings, vacuum_db=self.settings.tracking_is_sqlite)

        result = self._run_pruner("scheduled vacuum", prune)
        with self._lock:
            self._last_vacuum = result

    def _load_all(self) -> None:
        for name in START_ORDER:
            if name not in self._names:
                continue
            try:
                version = self._champion_version(name, fresh=True)
            except Exception as error:  # store unreachable: report, do not crash start-up
                log.exception("cannot read the champion of %s", name)
                self._update(name, last_error=f"registry unreachable: {error}")
                continue
            if version is None:
                with self._lock:
                    running = self._futures.get(name)
                    if running is None or running.done():  # a retrain asked meanwhile stays queued
                        self._update(name, state="missing", version=None)
                if self.settings.train_on_start:
                    self.retrain(name)
                continue
            self._serve(name, version)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
        self._stopping.set()
        self._loader.shutdown(wait=wait, cancel_futures=not wait)
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, ModelStatus]:
        with self._lock:
            return dict(self._status)

    def attach_limiter(self, limiter: Any) -> None:
        self._limiter = limiter

    def health(self) -> ServiceHealth:
        limiter_status = None
        if self._limiter is not None:
            try:
                limiter_status = self._limiter.status()
            except Exception:
                log.exception("rate limiter status failed")
        with self._lock:
            last_vacuum = self._last_vacuum
        return ServiceHealth(models=self.status(), limiter=limiter_status, last_vacuum=last_vacuum)

    def _update(self, name: str, **changes: Any) -> ModelStatus:
        with self._lock:
            current = dataclasses.replace(self._status[name], **changes)
            self._status[name] = current
            return current

    # ------------------------------------------------------------------ training
    def retrain(self, name: str) -> Future:
        """Queue a training; while one is queued or running, return that one's future."""
        name = self._model_name(name)
        with self._lock:
            running = self._futures.get(name)
            if running is not None and not running.done():
                return running
            if self._closed:
                raise ModelUnavailable("The model service is shut down.")
            self._update(name, state="queued", progress=0.0, progress_message="queued")
            future = self._pool.submit(self._train_job, name)
            self._futures[name] = future
            return future

    def _train_job(self, name: str) -> VersionInfo:
        from core.models import get_spec

        with self._lock:
            self.trainings_started += 1
        started = time.time()
        self._update(name, state="training", started_at=started, finished_at=None,
                     progress=0.0, progress_message="starting")
        log.info("training %s", name)

        def progress(fraction: float, message: str = "") -> None:
            fraction = min(max(float(fraction), 0.0), 1.0)
            self._update(name, progress=fraction, progress_message=str(message)[:200])

        try:
            trained = get_spec(name).train(self.settings, progress)
            progress(0.95, "registering")
            info = self.registry.log_training(trained)
        except Exception as error:
            message = _describe(error)
            log.error("training %s failed: %s", name, message, exc_info=not isinstance(error, StudioError))
            self._update(name, state="failed", last_error=message, finished_at=time.time(), progress_message="failed")
            raise
        finished = time.time()
        self._forget_alias(name)
        if info.gate_passed:
            try:
                self._serve(name, info.version, raise_errors=True)
            except Exception as error:
                self._update(name, state="failed", last_error=_describe(error), finished_at=finished)
                raise
            self._update(name, state="loaded", last_error=None, finished_at=finished, progress=1.0,
                         progress_message=f"version {info.version} is champion ({finished - started:.1f} s)")
        else:
            reason = f"version {info.version} rejected by the quality gate: {info.gate_reason}"
            with self._lock:
                serving = self._serving.get(name)
            self._update(name, state="loaded" if serving else "failed", last_error=reason,
                         finished_at=finished, progress=1.0, progress_message=reason[:200],
                         version=serving.version if serving else None)
        if self.settings.mlflow_gc_after_train:
            with self._lock:
                if not self._closed:
                    self._pool.submit(self._prune_job, name)
        return info

    def _prune_job(self, name: str) -> None:
        """Registry-aware pruning after a training; any failure is recorded, never raised."""

        def prune() -> Any:
            from core.pruning import prune_model  # an ImportError is recorded like any failure

            return prune_model(self.settings, name)

        self._update(name, last_prune=self._run_pruner(f"pruning {name}", prune))

    def _run_pruner(self, what: str, prune: Any) -> dict[str, Any]:
        """Runs a pruning call; pruned versions leave the load cache. Never raises."""
        at = time.time()
        try:
            report = prune()
        except Exception as error:
            log.warning("%s failed: %s", what, _describe(error))
            return {"ok": False, "at": at, "error": _describe(error)}
        self._forget_pruned(report)
        if not report.ok:
            log.warning("%s reported errors: %s", what, "; ".join(report.errors))
        return {"ok": report.ok, "at": at, "report": report.summary()}

    def prune_now(self, *, vacuum_db: bool = False) -> Any:
        """A store-wide prune asked for by a person (model ops): returns the PruneReport;
        PruneError if it cannot start. Pruned versions leave the load cache."""
        from core.pruning import prune_store

        report = prune_store(self.settings, vacuum_db=vacuum_db)
        self._forget_pruned(report)
        return report

    def _forget_pruned(self, report: Any) -> None:
        for deleted in report.deleted_versions:  # 'name/version'
            model, _, version = deleted.rpartition("/")
            self.registry.evict(model, version)

    # ------------------------------------------------------------------ serving
    def predict(self, name: str, values: Mapping[str, object]) -> Any:
        """A prediction from the serving model; for breast_cancer the Bayesian champion,
        else the stub marked is_fallback=True. ModelUnavailable if nothing can answer."""
        if name in CANCER_ALIASES:
            loaded = self._serving_model(BAYES)
            if loaded is not None:
                return dataclasses.replace(loaded.predictor.predict(values), model_version=loaded.version)
            stub = self._serving_model(STUB)
            if stub is not None:
                prediction = stub.predictor.predict(values)
                return dataclasses.replace(prediction, model_version=stub.version, is_fallback=True)
            raise ModelUnavailable(
                "No breast cancer model is ready yet (the Bayesian model and its fallback are "
                f"{self._describe_state(BAYES)} / {self._describe_state(STUB)}); try again shortly."
            )
        name = self._model_name(name)
        loaded = self._serving_model(name)
        if loaded is None:
            raise ModelUnavailable(f"{name} is not ready ({self._describe_state(name)}); try again shortly.")
        return dataclasses.replace(loaded.predictor.predict(values), model_version=loaded.version)

    def serving(self, name: str) -> LoadedModel | None:
        """The loaded model that answers for name now (breast_cancer: Bayes, else stub)."""
        if name in ("breast_cancer",):
            return self._serving_model(BAYES) or self._serving_model(STUB)
        return self._serving_model(self._model_name(name))

    def _serving_model(self, name: str) -> LoadedModel | None:
        try:
            version = self._champion_version(name)
        except Exception:
            log.exception("cannot resolve the champion of %s; serving what is loaded", name)
            with self._lock:
                return self._serving.get(name)
        if version is None:
            return None
        return self._serve(name, version)

    def _serve(self, name: str, version: str, raise_errors: bool = False) -> LoadedModel | None:
        """The loaded champion (from the registry's cache); vanished artifacts -> missing
        + retrain, and None so the caller falls back."""
        try:
            loaded = self.registry.load_version(name, version)
        except ArtifactsMissing as error:
            with self._lock:
                self._serving.pop(name, None)
                running = self._futures.get(name)
                busy = running is not None and not running.done()
                first_time = (name, version) not in self._healed
                self._healed.add((name, version))
            if not busy and first_time:  # once per version: a broken store must not loop
                log.warning("%s version %s lost its artifacts; retraining", name, version)
                self._update(name, state="missing", version=None, last_error=str(error))
                self.retrain(name)
            if raise_errors:
                raise
            return None
        except Exception as error:  # store busy/unreachable: keep serving what is loaded
            if raise_errors:
                raise
            log.warning("cannot load %s version %s (%s); serving what is loaded", name, version, _describe(error))
            self._update(name, last_error=f"cannot load version {version}: {_describe(error)}")
            with self._lock:
                return self._serving.get(name)
        with self._lock:
            previous = self._serving.get(name)
            self._serving[name] = loaded
            status = self._status[name]
            if previous is None or previous.version != loaded.version or status.state in ("missing",):
                keep = status.state in ("queued", "training")
                self._status[name] = dataclasses.replace(
                    status,
                    state=status.state if keep else "loaded",
                    version=loaded.version,
                    metrics=dict(loaded.info.metrics),
                )
        return loaded

    def _champion_version(self, name: str, fresh: bool = False) -> str | None:
        now = time.monotonic()
        with self._lock:
            cached = self._alias_cache.get(name)
        if not fresh and cached is not None and now - cached[0] < self.alias_ttl_s:
            return cached[1]
        version = self.registry.champion_version(name)
        with self._lock:
            self._alias_cache[name] = (now, version)
        return version

    def _forget_alias(self, name: str) -> None:
        with self._lock:
            self._alias_cache.pop(name, None)

    def _describe_state(self, name: str) -> str:
        with self._lock:
            status = self._status[name]
        if status.state == "training":
            return f"{name} training, {status.progress:.0%}"
        return f"{name} {status.state}"

    def _model_name(self, name: str) -> str:
        if name == "breast_cancer":
            return BAYES
        if name not in self._names:
            raise UnknownModel(f"Unknown model {name!r}: use one of {', '.join(self._names)} or breast_cancer.")
        return name


def _describe(error: BaseException) -> str:
    if isinstance(error, StudioError):
        return str(error)
    return f"{type(error).__name__}: {error}"


_service: ModelService | None = None
_service_lock = threading.Lock()


def get_service() -> ModelService:
    """The process's started ModelService."""
    global _service
    with _service_lock:
        if _service is None:
            service = ModelService(get_settings())
            service.start()
            _service = service
        return _service


def reset_service() -> None:
    """For tests: shut the singleton down and forget it."""
    global _service
    with _service_lock:
        if _service is not None:
            _service.shutdown(wait=True)
        _service = None
