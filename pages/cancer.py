"""Breast cancer: probability of malignancy with a credible interval from the Bayesian model."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import streamlit as st

from core.data import feature_info, load_dataset, out_of_training_range
from core.models import get_spec
from ui import charts, state
from ui.auth_gate import require_page
from ui.errors import user_errors

MODEL = "breast_cancer"
BAYES = "breast_cancer_bayes"
RESULT_KEY = "cancer_result"
CASE_KEY = "cancer_case"
DISCLAIMER = (
    "This is a teaching tool built on a public research dataset (Wisconsin diagnostic breast cancer). "
    "It is not a medical device and does not replace a pathologist's diagnosis: use it to explore, "
    "not to decide care."
)

user = require_page("cancer")

st.title("🎗️ Breast cancer: probability of malignancy")
st.caption(
    "Measurements of cell nuclei from a digitized fine-needle aspirate image. "
    "Defaults are the training medians; values far outside what the model saw are refused."
)

infos = feature_info("breast_cancer", get_spec(BAYES).input_features)
display_names = {info.name: info.display_name for info in infos}


def _key(name: str) -> str:
    return "cancer_" + name.replace(" ", "_")


def _step(info) -> float:
    """A step of about 1/100 of the training span, rounded to a power of ten."""
    span = max(info.train_max - info.train_min, 1e-9)
    return float(10 ** math.floor(math.log10(span / 100)))


def _format(step: float) -> str:
    """One decimal more than the step, so a median such as 14.98 shows as it is."""
    decimals = max(0, -int(math.floor(math.log10(step)))) + 1
    return f"%.{decimals}f"


def _load_case() -> None:
    """Put a random held-out (test split) case into the inputs; its truth is shown after predicting."""
    data = load_dataset("breast_cancer")
    rng = np.random.default_rng()
    index = int(rng.integers(len(data.X_test)))
    row = data.X_test.iloc[index]
    case_values = {}
    for info in infos:
        value = float(row[info.name])
        st.session_state[_key(info.name)] = value
        case_values[info.name] = value
    st.session_state[CASE_KEY] = {
        "index": index,
        "truth": data.target_names[int(data.y_test[index])],
        "values": case_values,
    }


def _reset() -> None:
    for info in infos:
        st.session_state[_key(info.name)] = float(info.median)
    st.session_state.pop(CASE_KEY, None)


for info in infos:
    st.session_state.setdefault(_key(info.name), float(info.median))

buttons = st.columns([1, 1, 3])
buttons[0].button("Load a held-out case", on_click=_load_case, key="cancer_load_case", help="A random patient from the test split, never seen in training.")
buttons[1].button("Reset to medians", on_click=_reset, key="cancer_reset")

values: dict[str, float] = {}
columns = st.columns(3)
for i, info in enumerate(infos):
    step = _step(info)
    unit = f" ({info.unit})" if info.unit else ""
    with columns[i % 3]:
        st.number_input(
            f"{info.display_name}{unit}",
            min_value=float(info.plausible_min),
            max_value=float(info.plausible_max),
            step=step,
            format=_format(step),
            key=_key(info.name),
            help=(
                f"`{info.name}`. Training range {info.train_min:.4g} to {info.train_max:.4g}{unit}, "
                f"median {info.median:.4g}. Accepted: {info.plausible_min:.4g} to {info.plausible_max:.4g}."
            ),
        )
    values[info.name] = float(st.session_state[_key(info.name)])

outside = out_of_training_range(values, infos)
if outside:
    by_name = {info.name: info for info in infos}
    listed = ", ".join(
        f"{display_names[n]} = {values[n]:.4g} (training {by_name[n].train_min:.4g} to {by_name[n].train_max:.4g})"
        for n in outside
    )
    st.warning(f"Outside the training range: {listed}. The model extrapolates here; treat the answer with extra caution.", icon="⚠️")

case = st.session_state.get(CASE_KEY)
if case and case["values"] != values:
    st.session_state.pop(CASE_KEY, None)  # edited by hand: no longer the held-out case
    case = None
if case:
    st.caption(f"Held-out case #{case['index']} loaded; its true diagnosis is shown after the prediction.")


def _model_status_text() -> str:
    try:
        status = state.service().status().get(BAYES)
    except Exception:  # noqa: BLE001 - the notice must draw even if status fails
        return "not ready"
    if status is None:
        return "not ready"
    if status.state == "training":
        return f"training ({status.progress:.0%})"
    if status.state == "failed":
        return "failed to train; an admin has been shown the error"
    return status.state


def _result_frame(result: dict) -> pd.DataFrame:
    p = result["prediction"]
    row: dict[str, object] = {"time_utc": result["time"], "username": user.username}
    row.update({name: value for name, value in result["values"].items()})
    row.update(
        {
            "probability_malignant": round(p.probability, 6),
            "interval_lower": round(p.lower, 6),
            "interval_upper": round(p.upper, 6),
            "interval_mass": p.credible_mass,
            "texture_group": p.texture_group if p.texture_group is not None else "",
            "model_name": p.model_name,
            "model_version": p.model_version or "",
            "is_fallback": p.is_fallback,
        }
    )
    if result.get("case"):
        row["held_out_case"] = result["case"]["index"]
        row["true_diagnosis"] = result["case"]["truth"]
    return pd.DataFrame([row])


@st.fragment
def estimate_and_show(values: dict[str, float], case: dict | None) -> None:
    """Button and result rerun on their own: a click redraws only this part of the page."""
    if st.button("Estimate probability", type="primary", key="cancer_predict"):
        with user_errors():
            prediction = state.predict(user.username, MODEL, values)
            st.session_state[RESULT_KEY] = {
                "values": dict(values),
                "prediction": prediction,
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "case": case,
            }

    result = st.session_state.get(RESULT_KEY)
    if result:
        p = result["prediction"]
        st.divider()
        if result["values"] != values:
            st.info("The inputs changed since this estimate: press **Estimate probability** for a new answer.")
        version = p.model_version or "unregistered"
        if p.is_fallback:
            st.warning(
                f"**Fallback answer.** The Bayesian model is {_model_status_text()}, so this estimate comes from the "
                f"fallback model (`{p.model_name}`, version {version}: logistic regression with a bootstrap interval). "
                "It will switch to the Bayesian model by itself once that is ready.",
                icon="⏳",
            )
        mass = f"{p.credible_mass:.0%}"
        kind = "bootstrap" if p.is_fallback else "credible"
        metric_col, interval_col, group_col = st.columns(3)
        metric_col.metric("Probability of malignancy", f"{p.probability:.1%}")
        interval_col.metric(f"{mass} {kind} interval", f"{p.lower:.1%} – {p.upper:.1%}")
        group_col.metric("Texture group", "n/a (fallback)" if p.texture_group is None else f"{p.texture_group + 1} of 5")
        st.markdown(
            f"The model estimates a **{p.probability:.0%}** chance that this tumour is malignant. "
            f"It is {mass} sure the chance lies between **{p.lower:.0%}** and **{p.upper:.0%}**"
            + (" (a wide interval: the data say little about this case)." if p.upper - p.lower > 0.3 else ".")
        )
        if result.get("case"):
            truth = result["case"]["truth"]
            st.info(f"True diagnosis of held-out case #{result['case']['index']}: **{truth}**.", icon="🔎")
        st.caption(
            f"Model `{p.model_name}`, version {version}; answered at {result['time'][11:23]} UTC."
            + (f" {p.note}" if getattr(p, "note", "") else "")
        )
        figure = charts.probability_distribution(p)
        if figure is not None:
            st.plotly_chart(figure, key="cancer_draws_chart")
        if p.contributions:
            st.plotly_chart(charts.contributions(p, display_names), key="cancer_contrib_chart")
            st.dataframe(
                pd.DataFrame(
                    [
                        {"input": display_names.get(c.feature, c.feature), "contribution": c.mean, "lower": c.lower, "upper": c.upper}
                        for c in p.contributions
                    ]
                ).style.format({"contribution": "{:+.2f}", "lower": "{:+.2f}", "upper": "{:+.2f}"}),
                hide_index=True,
                key="cancer_contrib_table",
            )
        st.download_button(
            "Download this result (CSV)",
            _result_frame(result).to_csv(index=False).encode(),
            file_name=f"cancer_estimate_{result['time'].replace(':', '')}.csv",
            mime="text/csv",
            key="cancer_download",
            on_click="ignore",
        )
    st.caption(f"ℹ️ {DISCLAIMER}")


estimate_and_show(values, case)
