"""Audit trail (admin): every prediction, filtered by user, model and day, exported as CSV."""
from __future__ import annotations

import json
from datetime import datetime, time as dtime, timedelta, timezone

import streamlit as st

from core.models import MODEL_NAMES
from ui import state
from ui.auth_gate import require_page
from ui.errors import user_errors

require_page("audit")

st.title("📜 Audit trail")
st.caption("Every prediction, including refused (rate-limited) attempts. Times are UTC.")

filter_cols = st.columns(4)
user_filter = filter_cols[0].text_input("Username", key="audit_user").strip() or None
model_choice = filter_cols[1].selectbox("Model", ["all", "breast_cancer", *MODEL_NAMES], key="audit_model")
today = datetime.now(timezone.utc).date()
since_day = filter_cols[2].date_input("From", value=today - timedelta(days=7), key="audit_since")
until_day = filter_cols[3].date_input("To", value=today, key="audit_until")

with user_errors("Audit trail"):
    trail = state.audit().query(
        username=user_filter,
        model=None if model_choice == "all" else model_choice,
        since=datetime.combine(since_day, dtime.min, tzinfo=timezone.utc),
        until=datetime.combine(until_day, dtime.max, tzinfo=timezone.utc),
    )
    st.caption(f"{len(trail)} record(s).")
    shown = trail.copy()
    for column in ("inputs", "result"):  # dicts: shown as compact JSON text
        shown[column] = shown[column].map(lambda v: "" if v is None else json.dumps(v, sort_keys=True))
    st.dataframe(shown, hide_index=True, key="audit_table")
    st.download_button(
        "Export CSV",
        state.audit().to_csv(trail),
        file_name=f"audit_{since_day}_{until_day}.csv",
        mime="text/csv",
        key="audit_csv",
    )
