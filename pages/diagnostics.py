"""MCMC diagnostics of a registered version of the Bayesian breast-cancer model."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core import diagnostics
from ui import state
from ui.auth_gate import require_page
from ui.errors import user_errors

MODEL = "breast_cancer_bayes"
HIGHLIGHT = "background-color: #f8d7da; color: #842029; font-weight: 600"

require_page("diagnostics")

st.title("🔬 Bayesian model diagnostics")
st.caption(
    f"Can the fit of `{MODEL}` be trusted? R-hat should be at most {diagnostics.RHAT_MAX}, "
    f"bulk and tail ESS at least {diagnostics.ESS_MIN:.0f}, no divergent transitions, E-BFMI at least {diagnostics.BFMI_MIN}."
)


@st.cache_resource(show_spinner=False, max_entries=4)
def _load(name: str, version: str):
    """InferenceData and report of one registered version (versions never change)."""
    loaded = state.registry().load_version(name, version)
    idata = diagnostics.inference_data(loaded.predictor)
    return idata, diagnostics.diagnose(idata)


def _version_label(info) -> str:
    created = datetime.fromtimestamp(info.created_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tags = ", ".join(info.aliases) if info.aliases else ("gate passed" if info.gate_passed else "gate rejected")
    return f"version {info.version} ({tags}; {created})"


versions = []
with user_errors("Reading the registry"):
    versions = state.registry().list_versions(MODEL)
if not versions:
    st.info("No version of the Bayesian model is registered yet: it is probably still training. Come back in a minute.", icon="⏳")
    st.stop()

default = next((i for i, v in enumerate(versions) if "champion" in v.aliases), 0)
chosen = st.selectbox("Version", versions, index=default, format_func=_version_label, key="diag_version")

loaded = None
with user_errors(f"Loading version {chosen.version}"):
    with st.spinner(f"Computing diagnostics for version {chosen.version}..."):
        loaded = _load(MODEL, chosen.version)
if loaded is None:
    st.stop()
idata, report = loaded

if report.healthy:
    st.success(report.verdict, icon="✅")
else:
    st.error(report.verdict, icon="⚠️")

cols = st.columns(4)
cols[0].metric("Chains x draws", f"{report.n_chains} x {report.n_draws}")
cols[1].metric("Max R-hat", f"{report.summary['r_hat'].max():.3f}")
cols[2].metric("Min ESS (bulk / tail)", f"{report.summary['ess_bulk'].min():.0f} / {report.summary['ess_tail'].min():.0f}")
cols[3].metric("Divergences", report.divergences)

st.subheader("Summary")
summary = report.summary.rename(columns={"hdi_low": f"hdi_{report.hdi_prob:.0%}_low", "hdi_high": f"hdi_{report.hdi_prob:.0%}_high"})


def _highlight(frame: pd.DataFrame) -> pd.DataFrame:
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for column in ("r_hat", "ess_bulk", "ess_tail"):  # the columns of report.flags
        styles.loc[report.flags[column], column] = HIGHLIGHT
    return styles


st.dataframe(
    summary.style.apply(_highlight, axis=None).format("{:.3f}").format("{:.0f}", subset=["ess_bulk", "ess_tail"]),
    key="diag_summary",
)
flagged = report.flags.any(axis=1)
st.caption(
    f"{int(flagged.sum())} of {len(flagged)} parameters flagged (highlighted: R-hat > {diagnostics.RHAT_MAX} "
    f"or ESS < {diagnostics.ESS_MIN:.0f})."
)

labels = list(report.summary.index)
scalars = [label for label in labels if "[" not in label]
default_trace = list(dict.fromkeys(report.summary.index[flagged].tolist() + scalars))[:4] or labels[:2]

st.subheader("Trace and rank plots")
picked = st.multiselect("Parameters", labels, default=default_trace, key="diag_trace_params")
for label in picked:
    with user_errors(f"Trace of {label}"):
        st.plotly_chart(
            diagnostics.trace_rank_figure(idata, label, r_hat=float(report.summary.loc[label, "r_hat"])),
            key=f"diag_trace_{label}",
        )

left, right = st.columns(2)
with left:
    st.subheader("Pair plot")
    pair_default = (scalars + [label for label in labels if label not in scalars])[:3]
    pair = st.multiselect("Parameters (2 to 4)", labels, default=pair_default, max_selections=4, key="diag_pair_params")
    if len(pair) >= 2:
        with user_errors("Pair plot"):
            st.plotly_chart(diagnostics.pair_figure(idata, pair), key="diag_pair")
    else:
        st.info("Choose at least two parameters.")
with right:
    st.subheader("Energy")
    with user_errors("Energy plot"):
        st.plotly_chart(diagnostics.energy_figure(idata), key="diag_energy")
    st.subheader("Texture-group intercepts")
    with user_errors("Forest plot"):
        st.plotly_chart(diagnostics.forest_figure(idata, hdi_prob=report.hdi_prob), key="diag_forest")
