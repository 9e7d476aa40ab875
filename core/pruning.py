"""Registry-aware pruning of the MLflow store, then an in-process `mlflow gc` of exactly
what was pruned.

Why this exists: MLflow keeps every run forever, and in MLflow 3 a model lives in a
LoggedModel (<artifact root>/models/m-<id>/), not in its run, so deleting runs alone frees
almost nothing. Nothing in MLflow protects a registered version either: delete_run,
delete_logged_model and gc never look at the registry, and a version whose LoggedModel
was purged stays READY but fails to load. So the pruner decides what may go from the
registry (aliases, gate tags, newest versions), deletes in the order version ->
logged models -> run, and only then purges.

Two kinds of store:
- a database the app opens itself (sqlite:/// or postgresql://): purge with
  `mlflow gc --backend-store-uri URI --tracking-uri URI --run-ids ... --logged-model-ids ...`;
- an MLflow server (http(s)://) where the app only knows the tracking URI: it soft-deletes
  through the REST API and deletes the artifacts through the server's artifact proxy;
  the metadata rows stay soft-deleted until someone runs `mlflow gc` with the server's
  database URI (pass backend_store_uri=... and the pruner does that itself).

gc prints one line per purged object on stdout (click.echo); callers that need a clean
stdout (jobs.vacuum) redirect it.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from core.config import Settings
from core.errors import PruneError
from core.mlflow_compat import model_id_of, process_tracking_uri

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
GATE_TAG = "gate"
GATE_PASSED = "passed"
MODEL_NAME_TAG = "model_name"
#: Runs backing no registered version are removed by prune_store once older than this.
DEFAULT_ORPHAN_MAX_AGE_DAYS = 7.0
#: A RUNNING run younger than this is a training in progress: never touch it.
RUNNING_GRACE_S = 6 * 3600
#: Walking a server's artifact proxy costs one request per folder: give up past this.
MAX_PROXY_DIRS = 5000
_PAGE = 1000
#: One prune at a time per process: a purge takes every soft-deleted logged model left
#: over, which must not race another prune between its deletes and its gc.
_PRUNE_LOCK = threading.Lock()


@dataclass(frozen=True)
class StoreUsage:
    """Bytes on disk of the store. None where the app cannot see it (a server's disk)."""

    artifact_bytes: int | None
    db_bytes: int | None
    note: str = ""

    @property
    def total_bytes(self) -> int | None:
        if self.artifact_bytes is None and self.db_bytes is None:
            return None
        return (self.artifact_bytes or 0) + (self.db_bytes or 0)


@dataclass(frozen=True)
class KeptRun:
    """A run the pruner looked at and kept, and why (e.g. 'alias champion')."""

    model: str
    versions: tuple[str, ...]
    run_id: str
    reason: str


@dataclass
class PruneReport:
    """What one prune did (or, with dry_run, would do). Ids are MLflow ids;
    deleted_versions are 'name/version'. errors are messages; an empty list means ok."""

    scope: str
    dry_run: bool
    retain: int
    deleted_versions: list[str] = field(default_factory=list)
    deleted_runs: list[str] = field(default_factory=list)
    deleted_logged_models: list[str] = field(default_factory=list)
    purged_runs: list[str] = field(default_factory=list)
    purged_logged_models: list[str] = field(default_factory=list)
    kept: list[KeptRun] = field(default_factory=list)
    usage_before: StoreUsage = field(default_factory=lambda: StoreUsage(None, None))
    usage_after: StoreUsage = field(default_factory=lambda: StoreUsage(None, None))
    #: Artifact bytes of what is (or would be) deleted, measured before deleting; None
    #: when the artifacts are not on a disk the app can see.
    planned_artifact_bytes: int | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bytes_before(self) -> int | None:
        return self.usage_before.total_bytes

    @property
    def bytes_after(self) -> int | None:
        return self.usage_after.total_bytes

    @property
    def freed_bytes(self) -> int | None:
        if self.bytes_before is None or self.bytes_after is None:
            return None
        return self.bytes_before - self.bytes_after

    def summary(self) -> dict[str, Any]:
        """JSON-ready dict: counts, ids, bytes, seconds, errors (for logs, ops, jobs)."""
        return {
            "scope": self.scope,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "retain": self.retain,
            "deleted_runs": len(self.deleted_runs),
            "deleted_versions": len(self.deleted_versions),
            "deleted_logged_models": len(self.deleted_logged_models),
            "purged_runs": len(self.purged_runs),
            "purged_logged_models": len(self.purged_logged_models),
            "kept_runs": len(self.kept),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "freed_bytes": self.freed_bytes,
            "artifact_bytes_before": self.usage_before.artifact_bytes,
            "artifact_bytes_after": self.usage_after.artifact_bytes,
            "db_bytes_before": self.usage_before.db_bytes,
            "db_bytes_after": self.usage_after.db_bytes,
            "planned_artifact_bytes": self.planned_artifact_bytes,
            "seconds": round(self.seconds, 3),
            "errors": list(self.errors),
            "notes": list(self.notes),
            "deleted_version_ids": list(self.deleted_versions),
            "deleted_run_ids": list(self.deleted_runs),
            "deleted_logged_model_ids": list(self.deleted_logged_models),
            "kept": [asdict(k) for k in self.kept],
        }


# --------------------------------------------------------------------------- usage


def _is_server(settings: Settings) -> bool:
    return settings.mlflow_tracking_uri.startswith(("http://", "https://", "databricks"))


def local_artifact_root(settings: Settings) -> Path | None:
    """The artifact root as a local folder, or None when artifacts are not on this disk."""
    root = settings.mlflow_artifact_root
    if _is_server(settings):
        return None
    if root.startswith("file:"):
        from mlflow.utils.file_utils import local_file_uri_to_path

        return Path(local_file_uri_to_path(root))
    if "://" in root:
        return None
    return Path(root).absolute()


def folder_bytes(path: Path) -> int:
    """Apparent size of the regular files under path (du -sb without the folders):
    what deleting them frees. 0 for a missing folder."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            total += st.st_size
    return total


def _db_bytes(settings: Settings) -> int | None:
    path = settings.sqlite_path()
    if path is None:
        return None
    total = 0
    for suffix in ("", "-wal", "-journal"):
        p = Path(f"{path}{suffix}")
        if p.is_file():
            total += p.stat().st_size
    return total


def store_usage(settings: Settings) -> StoreUsage:
    """Bytes of the store: artifact folder (files) and the SQLite file (with its WAL).

    For an MLflow server the app sees no disk: the artifact bytes are summed through the
    server's artifact proxy (one request per folder; None past MAX_PROXY_DIRS folders),
    and the database size is unknown (None)."""
    if not _is_server(settings):
        root = local_artifact_root(settings)
        artifact = folder_bytes(root) if root is not None else None
        note = "" if root is not None else f"artifacts at {settings.mlflow_artifact_root} are not on a local disk"
        db = _db_bytes(settings)
        if db is None:
            note = (note + "; " if note else "") + "database size is not visible for a non-SQLite backend"
        return StoreUsage(artifact, db, note)
    try:
        artifact = _proxy_bytes(settings)
    except Exception as exc:  # noqa: BLE001 - sizes are informative, never fatal
        return StoreUsage(None, None, f"tracking server: could not list artifacts ({exc})")
    note = "tracking server: artifact bytes summed through the artifact proxy; database size not visible"
    if artifact is None:
        note = f"tracking server: more than {MAX_PROXY_DIRS} artifact folders, not summed; database size not visible"
    return StoreUsage(artifact, None, note)


def _proxy_bytes(settings: Settings) -> int | None:
    from mlflow.entities import ViewType
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = _client(settings)
    total = 0
    budget = [MAX_PROXY_DIRS]
    with process_tracking_uri(settings.mlflow_tracking_uri):
        for exp in _paged(lambda tok: client.search_experiments(view_type=ViewType.ALL, page_token=tok)):
            repo = get_artifact_repository(exp.artifact_location)
            size = _walk_repo(repo, None, budget)
            if size is None:
                return None
            total += size
    return total


def _walk_repo(repo: Any, path: str | None, budget: list[int]) -> int | None:
    budget[0] -= 1
    if budget[0] < 0:
        return None
    total = 0
    for info in repo.list_artifacts(path):
        if info.is_dir:
            sub = _walk_repo(repo, info.path, budget)
            if sub is None:
                return None
            total += sub
        else:
            total += info.file_size or 0
    return total


# --------------------------------------------------------------------------- helpers


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)


def _paged(fetch: Any) -> Iterator[Any]:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _version_key(version: Any) -> int:
    return int(version.version)


@dataclass
class _Doomed:
    """One run to delete, with the versions and logged models that go before it."""

    model: str
    run_id: str
    versions: list[str]
    logged_models: list[Any]  # LoggedModel entities, read before deleting
    artifact_uri: str | None


class _Index:
    """The registry read once: versions per model, aliases, and which runs and logged
    models any registered version needs."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.versions: dict[str, list[Any]] = {}
        self.aliases: dict[str, dict[str, list[str]]] = {}
        for mv in _paged(lambda tok: client.search_model_versions(max_results=_PAGE, page_token=tok)):
            self.versions.setdefault(mv.name, []).append(mv)
        for rm in _paged(lambda tok: client.search_registered_models(max_results=_PAGE, page_token=tok)):
            self.versions.setdefault(rm.name, [])
        for name in self.versions:
            # search_model_versions leaves aliases empty: read them from the model.
            rm = client.get_registered_model(name)
            by_version: dict[str, list[str]] = {}
            for alias, version in (rm.aliases or {}).items():
                by_version.setdefault(str(version), []).append(alias)
            self.aliases[name] = by_version
        self.runs_with_versions = {mv.run_id for mvs in self.versions.values() for mv in mvs if mv.run_id}

    def runs_needed(self, doomed: set[tuple[str, str]]) -> dict[str, str]:
        """run_id -> 'name vN' for every version that is not about to be deleted."""
        needed: dict[str, str] = {}
        for name, mvs in self.versions.items():
            for mv in mvs:
                if (name, str(mv.version)) not in doomed and mv.run_id:
                    needed.setdefault(mv.run_id, f"{name} v{mv.version}")
        return needed

    def model_ids_needed(self, doomed: set[tuple[str, str]]) -> set[str]:
        needed = set()
        for name, mvs in self.versions.items():
            for mv in mvs:
                model_id = model_id_of(mv)
                if (name, str(mv.version)) not in doomed and model_id:
                    needed.add(model_id)
        return needed


def _plan_model(index: _Index, name: str, retain: int) -> tuple[list[tuple[str, list[str]]], list[KeptRun]]:
    """Which runs of model `name` go (run_id, versions) and which stay (with reasons)."""
    mvs = sorted(index.versions.get(name, []), key=_version_key, reverse=True)
    aliases = index.aliases.get(name, {})
    newest_passing = next((str(mv.version) for mv in mvs if (mv.tags or {}).get(GATE_TAG) == GATE_PASSED), None)
    runs: dict[str, list[str]] = {}  # run -> versions, newest run first
    for mv in mvs:
        runs.setdefault(mv.run_id or f"<no run> v{mv.version}", []).append(str(mv.version))
    doomed: list[tuple[str, list[str]]] = []
    kept: list[KeptRun] = []
    for rank, (run_id, versions) in enumerate(runs.items()):
        reasons = []
        held = [f"{a} on v{v}" for v in versions for a in aliases.get(v, [])]
        if held:
            reasons.append("alias " + ", ".join(held))
        if newest_passing in versions:
            reasons.append(f"newest passing version v{newest_passing}")
        if rank < retain:
            reasons.append(f"within the newest {retain}")
        if run_id.startswith("<no run>"):
            reasons.append("version has no run")
        if reasons:
            kept.append(KeptRun(name, tuple(versions), run_id, "; ".join(reasons)))
        else:
            doomed.append((run_id, versions))
    return doomed, kept


# --------------------------------------------------------------------------- pruning


def prune_model(
    settings: Settings, name: str, *, retain: int | None = None, dry_run: bool = False,
    backend_store_uri: str | None = None,
) -> PruneReport:
    """Keep the newest `retain` runs of registered model `name` (default
    RETAIN_RUNS_PER_MODEL) plus every run behind an aliased version and the newest
    passing version; delete the rest (version -> logged models -> run) and gc them.

    Raises PruneError only when it cannot start (unknown model, bad retain, store not
    reachable); a failure while deleting or purging lands in report.errors. With
    dry_run the deleted_* lists say what would go, and nothing is touched."""
    retain = _check_retain(settings, retain)
    with _PRUNE_LOCK:
        return _prune_model(settings, name, retain, dry_run, backend_store_uri)


def _prune_model(settings: Settings, name: str, retain: int, dry_run: bool, backend_store_uri: str | None) -> PruneReport:
    start = time.perf_counter()
    report = PruneReport(scope=name, dry_run=dry_run, retain=retain)
    client = _client(settings)
    try:
        index = _Index(client)
    except Exception as exc:  # noqa: BLE001
        raise PruneError(f"Cannot read the model registry at {_redacted(settings)}: {exc}") from exc
    if name not in index.versions:
        raise PruneError(f"No registered model named {name!r}: nothing to prune.")
    report.usage_before = store_usage(settings)
    doomed_pairs, kept = _plan_model(index, name, retain)
    report.kept.extend(kept)
    try:
        leftovers = _leftover_runs(client, index, model=name) if not dry_run else []
        _execute(settings, client, index, name, doomed_pairs, report, dry_run, leftovers, backend_store_uri)
    except Exception as exc:  # noqa: BLE001 - deletes may have begun: report, never raise
        report.errors.append(f"prune of {name} stopped: {type(exc).__name__}: {exc}")
    report.seconds = time.perf_counter() - start
    log.info("prune %s: %s", name, report.summary())
    return report


def prune_store(
    settings: Settings, *, retain: int | None = None, max_age_days: float | None = None,
    dry_run: bool = False, vacuum_db: bool = False, backend_store_uri: str | None = None,
) -> PruneReport:
    """prune_model for every registered model, plus runs that back no registered
    version and are older than max_age_days (default DEFAULT_ORPHAN_MAX_AGE_DAYS; a
    RUNNING run younger than RUNNING_GRACE_S is never touched); then gc, then
    optionally VACUUM a SQLite store (SQLite never shrinks by itself)."""
    retain = _check_retain(settings, retain)
    if max_age_days is None:
        max_age_days = DEFAULT_ORPHAN_MAX_AGE_DAYS
    if max_age_days < 0:
        raise PruneError(f"max_age_days={max_age_days} is negative: use 0 or more days.")
    with _PRUNE_LOCK:
        return _prune_store(settings, retain, max_age_days, dry_run, vacuum_db, backend_store_uri)


def _prune_store(settings: Settings, retain: int, max_age_days: float, dry_run: bool, vacuum_db: bool,
                 backend_store_uri: str | None) -> PruneReport:
    start = time.perf_counter()
    report = PruneReport(scope="store", dry_run=dry_run, retain=retain)
    client = _client(settings)
    try:
        index = _Index(client)
        report.usage_before = store_usage(settings)
        doomed: list[tuple[str, str, list[str]]] = []
        for name in sorted(index.versions):
            pairs, kept = _plan_model(index, name, retain)
            report.kept.extend(kept)
            doomed.extend((name, run_id, versions) for run_id, versions in pairs)
        orphans = _orphan_runs(client, index, max_age_days)
        leftovers = _leftover_runs(client, index, model=None) if not dry_run else []
    except PruneError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PruneError(f"Cannot read the MLflow store at {_redacted(settings)}: {exc}") from exc
    try:
        _execute_many(settings, client, index, doomed, orphans, report, dry_run, leftovers, backend_store_uri)
    except Exception as exc:  # noqa: BLE001 - deletes may have begun: report, never raise
        report.errors.append(f"store prune stopped: {type(exc).__name__}: {exc}")
    if vacuum_db and not dry_run:
        _vacuum_sqlite(settings, report)
        report.usage_after = store_usage(settings)
    report.seconds = time.perf_counter() - start
    log.info("prune store: %s", report.summary())
    return report


def _check_retain(settings: Settings, retain: int | None) -> int:
    if retain is None:
        return settings.retain_runs_per_model
    if isinstance(retain, bool) or not isinstance(retain, int) or retain < 1:
        raise PruneError(f"retain={retain!r} is not valid: keep at least 1 run per model.")
    return retain


def _redacted(settings: Settings) -> str:
    return str(settings.redacted()["mlflow_tracking_uri"])


def _execute(settings: Settings, client: Any, index: _Index, name: str, pairs: list[tuple[str, list[str]]],
             report: PruneReport, dry_run: bool, leftovers: list[str], backend_store_uri: str | None) -> None:
    _execute_many(settings, client, index, [(name, r, v) for r, v in pairs], [], report, dry_run, leftovers,
                  backend_store_uri)


def _execute_many(settings: Settings, client: Any, index: _Index, doomed_versions: list[tuple[str, str, list[str]]],
                  orphans: list[Any], report: PruneReport, dry_run: bool, leftovers: list[str],
                  backend_store_uri: str | None) -> None:
    doomed_set = {(name, v) for name, _r, versions in doomed_versions for v in versions}
    needed_models = index.model_ids_needed(doomed_set)
    needed_runs = index.runs_needed(doomed_set)
    plan: list[_Doomed] = []
    lm_cache: dict[str, dict[str, list[Any]]] = {}
    for name, run_id, versions in doomed_versions:
        if run_id in needed_runs:
            # The run also backs a version of another model that stays.
            report.kept.append(KeptRun(name, tuple(versions), run_id, f"also backs {needed_runs[run_id]}"))
            plan.append(_Doomed(name, "", versions, [], None))  # versions still go, run stays
            continue
        plan.append(_describe_run(client, name, run_id, versions, needed_models, lm_cache, report))
    for run in orphans:
        plan.append(_describe_run(client, "", run.info.run_id, [], needed_models, lm_cache, report, run=run))
    root = local_artifact_root(settings)
    if root is not None:
        report.planned_artifact_bytes = sum(_planned_bytes(d) for d in plan)
    for d in plan:
        report.deleted_versions.extend(f"{d.model}/{v}" for v in d.versions)
        if d.run_id:
            report.deleted_runs.append(d.run_id)
        report.deleted_logged_models.extend(lm.model_id for lm in d.logged_models)
    if dry_run:
        report.usage_after = report.usage_before
        report.notes.append("dry run: nothing was deleted")
        return
    gone_runs, gone_models = _delete(client, plan, report)
    _purge(settings, client, gone_runs, gone_models, plan, leftovers, report, backend_store_uri)
    report.usage_after = store_usage(settings)


def _describe_run(client: Any, name: str, run_id: str, versions: list[str], needed_models: set[str],
                  lm_cache: dict[str, dict[str, list[Any]]], report: PruneReport, run: Any = None) -> _Doomed:
    try:
        run = run or client.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - a version whose run is already gone
        report.notes.append(f"run {run_id} of {name} is not readable ({exc}); its versions are deleted only")
        return _Doomed(name, "", versions, [], None)
    exp_id = run.info.experiment_id
    if exp_id not in lm_cache:
        by_run: dict[str, list[Any]] = {}
        for lm in _paged(lambda tok: client.search_logged_models(experiment_ids=[exp_id], max_results=_PAGE, page_token=tok)):
            by_run.setdefault(lm.source_run_id, []).append(lm)
        lm_cache[exp_id] = by_run
    lms = [lm for lm in lm_cache[exp_id].get(run_id, []) if lm.model_id not in needed_models]
    return _Doomed(name, run_id, versions, lms, run.info.artifact_uri)


def _planned_bytes(d: _Doomed) -> int:
    from mlflow.utils.file_utils import local_file_uri_to_path

    total = 0
    uris = [lm.artifact_location for lm in d.logged_models] + ([d.artifact_uri] if d.artifact_uri else [])
    for uri in uris:
        if uri and (uri.startswith("file:") or "://" not in uri):
            total += folder_bytes(Path(local_file_uri_to_path(uri)))
    return total


def _delete(client: Any, plan: list[_Doomed], report: PruneReport) -> tuple[list[str], list[str]]:
    """Soft-delete in the only safe order: versions, then logged models, then the run.
    A failure stops that run (its later steps are skipped) and is reported."""
    gone_runs: list[str] = []
    gone_models: list[str] = []
    for d in plan:
        step = "version"
        try:
            for v in d.versions:
                client.delete_model_version(d.model, v)
            step = "logged model"
            for lm in d.logged_models:
                client.delete_logged_model(lm.model_id)
                gone_models.append(lm.model_id)
            step = "run"
            if d.run_id:
                client.delete_run(d.run_id)
                gone_runs.append(d.run_id)
        except Exception as exc:  # noqa: BLE001
            report.errors.append(f"deleting {step} of run {d.run_id or '-'} ({d.model or 'orphan'}): {exc}")
    deleted = set(gone_runs)
    report.deleted_runs[:] = [r for r in report.deleted_runs if r in deleted]
    models = set(gone_models)
    report.deleted_logged_models[:] = [m for m in report.deleted_logged_models if m in models]
    return gone_runs, gone_models


def _purge(settings: Settings, client: Any, runs: list[str], models: list[str], plan: list[_Doomed],
           leftovers: list[str], report: PruneReport, backend_store_uri: str | None) -> None:
    """Hard-delete what was soft-deleted, and its artifacts, plus what an earlier failed
    purge left soft-deleted. Failures go to report.errors, never raise."""
    all_runs = list(dict.fromkeys(runs + leftovers))
    leftover_models = [m for m in _leftover_logged_models(client, settings, backend_store_uri) if m not in models]
    all_models = list(dict.fromkeys(models + leftover_models))
    if not all_runs and not all_models:
        return
    tracking = settings.mlflow_tracking_uri
    if _is_server(settings) and not backend_store_uri:
        with process_tracking_uri(tracking):  # mlflow-artifacts:/ URIs resolve through it
            _purge_via_proxy(plan, report)
        return
    backend = backend_store_uri or tracking
    args = ["--backend-store-uri", backend, "--tracking-uri", tracking]
    if all_runs:
        args += ["--run-ids", ",".join(all_runs)]
    if all_models:
        args += ["--logged-model-ids", ",".join(all_models)]
    # gc given only one of the two lists takes *every* soft-deleted object of the other
    # kind; both are garbage by then, and the lists above already hold all we know of.
    try:
        import mlflow.cli

        with process_tracking_uri(tracking):
            mlflow.cli.gc.main(args=args, standalone_mode=False)
    except BaseException as exc:  # noqa: BLE001 - click raises SystemExit/Abort too
        if isinstance(exc, KeyboardInterrupt):
            raise
        report.errors.append(f"mlflow gc failed: {type(exc).__name__}: {exc}")
        # gc works run by run: record what it got through before failing.
        report.purged_runs.extend(r for r in all_runs if _run_gone(client, r))
        remaining = set(_leftover_logged_models(client, settings, backend_store_uri))
        report.purged_logged_models.extend(m for m in all_models if m not in remaining)
        report.notes.append("the rest stays soft-deleted; the next prune purges it")
        return
    report.purged_runs.extend(all_runs)
    report.purged_logged_models.extend(all_models)
    _remove_empty_parents(plan, set(all_runs), set(all_models))
    if leftovers or leftover_models:
        report.notes.append(
            f"purged {len(leftovers)} run(s) and {len(leftover_models)} logged model(s) left soft-deleted by an earlier prune"
        )


def _run_gone(client: Any, run_id: str) -> bool:
    try:
        client.get_run(run_id)
        return False
    except Exception:  # noqa: BLE001 - not found: hard-deleted
        return True


def _remove_empty_parents(plan: list[_Doomed], runs: set[str], models: set[str]) -> None:
    """gc removes <id>/artifacts and leaves the empty <id> folder: remove it (rmdir only
    succeeds on an empty folder, so nothing else can go)."""
    from mlflow.utils.file_utils import local_file_uri_to_path

    uris = [lm.artifact_location for d in plan for lm in d.logged_models if lm.model_id in models]
    uris += [d.artifact_uri for d in plan if d.run_id in runs and d.artifact_uri]
    for uri in uris:
        if uri and (uri.startswith("file:") or "://" not in uri):
            path = Path(local_file_uri_to_path(uri))
            for folder in (path, path.parent):
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    continue
                except OSError:
                    break


def _purge_via_proxy(plan: list[_Doomed], report: PruneReport) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    for d in plan:
        uris = [(lm.model_id, lm.artifact_location) for lm in d.logged_models if lm.model_id in report.deleted_logged_models]
        if d.run_id in report.deleted_runs and d.artifact_uri:
            uris.append((d.run_id, d.artifact_uri))
        for object_id, uri in uris:
            try:
                get_artifact_repository(uri).delete_artifacts()
            except Exception as exc:  # noqa: BLE001
                report.errors.append(f"deleting artifacts of {object_id} through the server: {exc}")
    report.notes.append(
        "tracking server: artifacts deleted through the artifact proxy; the runs and logged models stay "
        "soft-deleted in the server's database until `mlflow gc --backend-store-uri <db> --tracking-uri <server>` "
        "runs (or pass backend_store_uri / --backend-store-uri)"
    )


def _search_runs(client: Any, filter_string: str, run_view_type: Any) -> Iterator[Any]:
    """Runs of every active experiment (asked 100 experiments at a time), page by page."""
    from mlflow.entities import ViewType

    exps = [e.experiment_id for e in _paged(lambda tok: client.search_experiments(view_type=ViewType.ACTIVE_ONLY, page_token=tok))]
    for i in range(0, len(exps), 100):
        chunk = exps[i:i + 100]
        yield from _paged(lambda tok: client.search_runs(chunk, filter_string=filter_string, run_view_type=run_view_type,
                                                         max_results=_PAGE, page_token=tok))


def _orphan_runs(client: Any, index: _Index, max_age_days: float) -> list[Any]:
    from mlflow.entities import ViewType

    now_ms = int(time.time() * 1000)
    cutoff = now_ms - int(max_age_days * 86_400_000)
    grace = now_ms - RUNNING_GRACE_S * 1000
    out = []
    for run in _search_runs(client, f"attributes.start_time <= {cutoff}", ViewType.ACTIVE_ONLY):
        if run.info.run_id in index.runs_with_versions:
            continue
        if run.info.status == "RUNNING" and run.info.start_time > grace:
            continue
        out.append(run)
    return out


def _leftover_runs(client: Any, index: _Index, model: str | None) -> list[str]:
    """Runs left soft-deleted (by an earlier prune whose gc failed), to purge now."""
    from mlflow.entities import ViewType

    flt = f"tags.{MODEL_NAME_TAG} = '{_quote(model)}'" if model else ""
    return [r.info.run_id for r in _search_runs(client, flt, ViewType.DELETED_ONLY)]


def _leftover_logged_models(client: Any, settings: Settings, backend_store_uri: str | None) -> list[str]:
    """Logged models left soft-deleted by an earlier prune whose gc failed. A deleted
    LoggedModel cannot be fetched or searched through the client, so ask the SQL store
    (the same private query mlflow gc uses); unknown (empty) for a server without its
    database URI. All of them are garbage: nothing reaches a deleted LoggedModel."""
    try:
        if _is_server(settings):
            if not backend_store_uri:
                return []
            from mlflow.tracking._tracking_service.utils import _get_store

            store = _get_store(backend_store_uri)
        else:
            store = client._tracking_client.store
        finder = getattr(store, "_get_deleted_logged_models", None)
        return list(finder()) if finder else []
    except Exception as exc:  # noqa: BLE001 - leftovers are a retry nicety, never fatal
        log.warning("could not list soft-deleted logged models: %s", exc)
        return []


def _vacuum_sqlite(settings: Settings, report: PruneReport) -> None:
    path = settings.sqlite_path()
    if path is None:
        report.notes.append("vacuum_db: not a SQLite store, skipped (PostgreSQL reclaims space with its own VACUUM/autovacuum)")
        return
    try:
        con = sqlite3.connect(str(path), timeout=30)
        try:
            con.execute("VACUUM")
        finally:
            con.close()
        report.notes.append("SQLite store vacuumed")
    except Exception as exc:  # noqa: BLE001
        report.errors.append(f"VACUUM of {path} failed: {exc}")

