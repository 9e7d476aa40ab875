"""Iris species: four measurements in, predicted species and class probabilities out."""
from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from core.data import feature_info
from ui import charts, state
from ui.auth_gate import require_page
from ui.errors import user_errors

MODELS = {"iris_random_forest": "Random forest", "iris_logistic_regression": "Logistic regression"}
RESULT_KEY = "iris_result"

user = require_page("iris")

st.title("🌸 Iris species")
st.caption("Enter the flower's four measurements in centimetres; each is limited to the range seen in training.")

infos = feature_info("iris")


def _copy(source: str, target: str) -> None:
    """Keep a slider and its number entry showing the same value."""
    st.session_state[target] = st.session_state[source]


values: dict[str, float] = {}
left, right = st.columns(2)
for i, info in enumerate(infos):
    slug = info.name.split(" (")[0].replace(" ", "_")
    slider_key, number_key = f"iris_{slug}_slider", f"iris_{slug}_number"
    if slider_key not in st.session_state or number_key not in st.session_state:
        start = round(info.median, 1)
        st.session_state[slider_key] = start
        st.session_state[number_key] = start
    column = left if i % 2 == 0 else right
    with column:
        label = f"{info.display_name} ({info.unit})"
        help_text = f"Training range {info.train_min:g} to {info.train_max:g} {info.unit}; median {info.median:g}."
        slider_col, number_col = st.columns([3, 1])
        slider_col.slider(
            label,
            min_value=float(info.train_min),
            max_value=float(info.train_max),
            step=0.1,
            format="%.1f",
            key=slider_key,
            help=help_text,
            on_change=_copy,
            args=(slider_key, number_key),
        )
        number_col.number_input(
            label,
            min_value=float(info.train_min),
            max_value=float(info.train_max),
            step=0.1,
            format="%.1f",
            key=number_key,
            label_visibility="hidden",
            on_change=_copy,
            args=(number_key, slider_key),
        )
        values[info.name] = float(st.session_state[slider_key])

model = st.radio("Model", list(MODELS), format_func=MODELS.__getitem__, horizontal=True, key="iris_model")


@st.fragment
def predict_and_show(values: dict[str, float], model: str) -> None:
    """Button and result rerun on their own: a click redraws only this part of the page,
    not the eight input widgets (a full rerun costs the browser several times more)."""
    if st.button("Predict species", type="primary", key="iris_predict"):
        with user_errors():
            prediction = state.predict(user.username, model, values)
            st.session_state[RESULT_KEY] = {
                "model": model,
                "values": dict(values),
                "prediction": prediction,
                "time": datetime.now(timezone.utc).strftime("%H:%M:%S.%f")[:-3],
            }

    result = st.session_state.get(RESULT_KEY)
    if result:
        prediction = result["prediction"]
        st.divider()
        if result["values"] != values or result["model"] != model:
            st.info("The inputs changed since this prediction: press **Predict species** for a new answer.")
        top = prediction.probabilities[prediction.label]
        metric_col, model_col = st.columns(2)
        metric_col.metric("Predicted species", prediction.label, f"{top:.1%} probability", delta_color="off", delta_arrow="off")
        version = prediction.model_version or "unregistered"
        model_col.metric("Model", MODELS.get(prediction.model_name, prediction.model_name), f"version {version}", delta_color="off", delta_arrow="off")
        st.plotly_chart(charts.class_probabilities(prediction), key="iris_chart")
        st.caption(f"Model `{prediction.model_name}`, version {version}; answered at {result['time']} UTC.")


predict_and_show(values, model)
