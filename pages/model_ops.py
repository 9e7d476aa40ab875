"""Model operations (admin): status, retraining, champions, cleanup, rate limiter."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core.models import MODEL_NAMES
from ui import state
from ui.auth_gate import require_page
from ui.errors import show_error, user_errors

POLL_BUSY_S = 1.5
POLL_IDLE_S = 10.0
KEY_METRICS = ("accuracy", "roc_auc", "brier", "log_loss", "max_rhat", "min_ess_bulk", "divergences")
STATE_ICONS = {"loaded": "🟢", "training": "🟡", "queued": "🟡", "missing": "⚪", "failed": "🔴"}
PRUNE_KEY = "ops_prune_report"
SNAPSHOT_KEY = "ops_status_snapshot"
RETRAIN_MSG_KEY = "ops_retrain_message"

require_page("model_ops")

st.title("⚙️ Model operations")


def _when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def _metrics_text(metrics: dict[str, float]) -> str:
    keys = [k for k in KEY_METRICS if k in metrics] or sorted(metrics)[:4]
    return ", ".join(f"{k} {metrics[k]:.3g}" for k in keys)


def _prune_text(last_prune: dict | None) -> str:
    if not last_prune:
        return ""
    when = _when(last_prune.get("at"))
    if not last_prune.get("ok"):
        return f"failed {when}: {last_prune.get('error', '')}"
    report = last_prune.get("report") or {}
    return f"ok {when}: {report.get('deleted_runs', 0)} run(s) deleted"  # PruneReport.summary(): a count


def _busy() -> bool:
    try:
        return any(s.state in ("queued", "training") for s in state.service().status().values())
    except Exception:  # noqa: BLE001
        return False


def _retrain(name: str) -> None:
    """Button callback: queue a training and return at once (the pool runs it)."""
    try:
        state.service().retrain(name)
        st.session_state[RETRAIN_MSG_KEY] = ("ok", f"{name}: training queued.")
    except Exception as error:  # noqa: BLE001 - shown by the fragment as one message
        st.session_state[RETRAIN_MSG_KEY] = ("error", error)


@st.fragment(run_every=POLL_BUSY_S if _busy() else POLL_IDLE_S)
def model_status() -> None:
    """Redrawn on its own every few seconds: progress of running trainings, retrain buttons."""
    service = state.service()
    statuses = service.status()
    message = st.session_state.pop(RETRAIN_MSG_KEY, None)
    if message is not None:
        kind, payload = message
        if kind == "ok":
            st.toast(payload)
        else:
            show_error(payload, action="Retrain")
    champions: dict[str, str | None] = {}
    for name in statuses:
        try:
            champions[name] = state.registry().champion_version(name)
        except Exception as error:  # noqa: BLE001 - a status table must still draw
            champions[name] = f"unreadable ({type(error).__name__})"
    rows = []
    for name, s in statuses.items():
        rows.append(
            {
                "model": name,
                "state": f"{STATE_ICONS.get(s.state, '')} {s.state}",
                "serving version": s.version or "",
                "champion": champions.get(name) or "",
                "trained at": _when(s.finished_at),
                "key metrics": _metrics_text(s.metrics),
                "last error": s.last_error or "",
                "last prune": _prune_text(s.last_prune),
            }
        )
    st.table(pd.DataFrame(rows).set_index("model"))  # small, and plain HTML: readable by people and browser tests
    busy_any = False
    for name, s in statuses.items():
        if s.state in ("queued", "training"):
            busy_any = True
            detail = f" ({s.progress_message})" if s.progress_message and s.progress_message != s.state else ""
            st.progress(min(max(s.progress, 0.0), 1.0), text=f"{name}: {s.state}, {s.progress:.0%}{detail}")
    st.caption(f"Retraining runs in the background; this panel refreshes every {POLL_BUSY_S if busy_any else POLL_IDLE_S:g} s.")
    buttons = st.columns(len(statuses) or 1)
    for column, (name, s) in zip(buttons, statuses.items()):
        busy = s.state in ("queued", "training")
        column.button(
            f"Retrain {name}",
            key=f"ops_retrain_{name}",
            disabled=busy,
            on_click=_retrain,
            args=(name,),
            help="Already running" if busy else "Train a new version in the background; the champion moves only if it passes the quality gate.",
        )
    # A training that finished changes what the rest of the page shows (banner, registry
    # versions): redraw the whole page once when a state or champion changes.
    snapshot = {name: (s.state, champions.get(name)) for name, s in statuses.items()}
    previous = st.session_state.get(SNAPSHOT_KEY)
    st.session_state[SNAPSHOT_KEY] = snapshot
    if previous is not None and previous != snapshot:
        st.rerun()


st.subheader("Models")
model_status()

# ------------------------------------------------------------------------- registry
st.subheader("Registry versions and champion")
model = st.selectbox("Registered model", list(MODEL_NAMES), key="ops_registry_model")
versions = []
with user_errors("Reading the registry"):
    versions = state.registry().list_versions(model)
if not versions:
    st.info(f"No version of {model} is registered yet.")
else:
    table = pd.DataFrame(
        [
            {
                "version": v.version,
                "created": _when(v.created_at),
                "aliases": ", ".join(v.aliases),
                "gate": "passed" if v.gate_passed else "rejected",
                "gate reason": v.gate_reason,
                **{k: round(val, 4) for k, val in sorted(v.metrics.items())},
            }
            for v in versions
        ]
    )
    st.dataframe(table, hide_index=True, key="ops_versions_table")
    champion = next((v for v in versions if "champion" in v.aliases), None)
    passing = [v for v in versions if v.gate_passed]
    promote_col, rollback_col = st.columns(2)
    with promote_col:
        candidates = [v.version for v in passing if champion is None or v.version != champion.version]
        target = st.selectbox(
            "Version to make champion", candidates, key=f"ops_promote_version_{model}", help="Only versions that passed the quality gate."
        )
        if st.button("Promote to champion", key="ops_promote", disabled=target is None):
            with user_errors("Promote"):
                state.registry().set_champion(model, target)
                st.session_state["ops_flash"] = f"{model} version {target} is now champion."
                st.rerun()
    with rollback_col:
        older = [v for v in passing if champion is not None and int(v.version) < int(champion.version)]
        previous = older[0] if older else None  # versions are newest first
        label = f"Roll back to version {previous.version}" if previous else "Roll back (no older passing version)"
        st.write("")
        if st.button(label, key="ops_rollback", disabled=previous is None):
            with user_errors("Roll back"):
                state.registry().set_champion(model, previous.version)
                st.session_state["ops_flash"] = f"{model} rolled back to version {previous.version}."
                st.rerun()
if "ops_flash" in st.session_state:
    st.success(st.session_state.pop("ops_flash"))

# ------------------------------------------------------------------------- cleanup
st.subheader("Store cleanup")
settings = state.settings()
st.caption(
    f"Keeps the newest {settings.retain_runs_per_model} runs per model, every version with an alias and the newest "
    "passing version; deletes the rest (version, logged models, run) and purges their artifacts."
)
if settings.vacuum_interval_hours > 0:
    last_vacuum = state.service().health().last_vacuum
    st.caption(
        f"Scheduled vacuum of the whole store every {settings.vacuum_interval_hours:g} h; "
        + (f"last: {_prune_text(last_vacuum)}." if last_vacuum else "not run yet in this process.")
    )
vacuum = st.checkbox("Also compact the database (VACUUM)", key="ops_vacuum", disabled=not settings.tracking_is_sqlite)
if st.button("Prune and purge now", key="ops_prune"):
    with user_errors("Cleanup"), st.spinner("Pruning and purging..."):
        st.session_state[PRUNE_KEY] = state.service().prune_now(vacuum_db=vacuum)
report = st.session_state.get(PRUNE_KEY)
if report is not None:
    cols = st.columns(3)
    cols[0].metric("Store before", _bytes(report.bytes_before))
    cols[1].metric("Store after", _bytes(report.bytes_after))
    cols[2].metric("Freed", _bytes(report.freed_bytes))
    what = (
        f"Deleted {len(report.deleted_versions)} version(s), {len(report.deleted_logged_models)} logged model(s) and "
        f"{len(report.deleted_runs)} run(s); kept {len(report.kept)} run(s); {report.seconds:.1f} s."
    )
    (st.success if report.ok else st.warning)(what)
    for error in report.errors:
        st.error(error)
    with st.expander("What went and what stayed"):
        st.write({"deleted versions": report.deleted_versions, "deleted runs": report.deleted_runs,
                  "deleted logged models": report.deleted_logged_models,
                  "kept": [dataclasses.asdict(k) for k in report.kept], "notes": report.notes})

# ------------------------------------------------------------------------- rate limiter
st.subheader("Rate limiter")
try:
    limiter_status = state.limiter().status()
except Exception as error:  # noqa: BLE001
    show_error(error, action="Rate limiter status")
else:
    cols = st.columns(4)
    cols[0].metric("Backend", limiter_status.backend)
    cols[1].metric("State", "degraded" if limiter_status.degraded else "healthy")
    cols[2].metric("Predictions per minute", settings.rate_limit_default, help="Per user and per browser session.")
    cols[3].metric("Cancer predictions per minute", settings.rate_limit_cancer, help="Per user and per browser session.")
    st.caption(f"Login: at most {settings.rate_limit_login} attempts per {settings.rate_limit_login_window_s} s per username and per address.")
    (st.warning if limiter_status.degraded else st.caption)(limiter_status.detail or "")
