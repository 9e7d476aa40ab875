"""Breast-cancer page: inputs, held-out cases, the Bayesian answer, the fallback notice, limits."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from core.data import feature_info, load_dataset
from core.errors import InputOutOfRange
from core.models import get_spec
from tests.pages.conftest import decode, plotly_specs, texts
from tests.pages.fakes import CANCER_LOWER, CANCER_PROBABILITY, CANCER_UPPER

CANCER = "pages/cancer.py"
INFOS = feature_info("breast_cancer", get_spec("breast_cancer_bayes").input_features)


def _key(name: str) -> str:
    return "cancer_" + name.replace(" ", "_")


@pytest.fixture
def studio_overrides():
    return {"RATE_LIMIT_CANCER": "2"}


def _open(app, role="clinician"):
    return app(role).switch_page(CANCER).run()


def test_inputs_have_units_plausible_bounds_and_training_medians(app, studio):
    at = _open(app)
    assert not at.exception
    assert len(at.number_input) == len(INFOS) >= 4
    for info in INFOS:
        box = at.number_input(key=_key(info.name))
        assert box.value == pytest.approx(info.median)
        assert box.min == pytest.approx(info.plausible_min) and box.max == pytest.approx(info.plausible_max)
        if info.unit:
            assert f"({info.unit})" in box.label
    assert not at.warning  # medians are inside the training range
    assert any("not a medical device" in c for c in texts(at, "caption"))


def test_bayesian_answer_with_interval_group_plots_and_csv(app, studio, downloads):
    at = _open(app)
    at.button(key="cancer_predict").click().run()
    assert not at.exception and not at.error and not at.warning
    name, values = studio.service.predict_calls[-1]
    assert name == "breast_cancer"
    assert values == {info.name: pytest.approx(info.median) for info in INFOS}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Probability of malignancy"] == f"{CANCER_PROBABILITY:.1%}" == "23.7%"
    assert metrics["94% credible interval"] == "15.1% – 34.2%"
    assert metrics["Texture group"] == "3 of 5"
    words = " ".join(texts(at, "markdown"))
    assert "**24%** chance" in words and "between **15%** and **34%**" in words
    assert any("breast_cancer_bayes" in c and "version 4" in c for c in texts(at, "caption"))
    draws_spec, contrib_spec = plotly_specs(at)
    assert draws_spec["data"][0]["type"] == "histogram" and len(decode(draws_spec["data"][0]["x"])) == 400
    assert "posterior" in draws_spec["layout"]["title"]["text"]
    assert len(decode(contrib_spec["data"][0]["x"])) == len(INFOS)
    (table,) = [d.value for d in at.dataframe if "contribution" in d.value.columns]
    assert list(table["contribution"]) == pytest.approx([0.5 - 0.3 * i for i in range(len(INFOS))])
    csv = pd.read_csv(io.BytesIO(downloads["cancer_download"]))
    assert len(csv) == 1
    row = csv.iloc[0]
    assert row["probability_malignant"] == pytest.approx(CANCER_PROBABILITY)
    assert (row["interval_lower"], row["interval_upper"]) == pytest.approx((CANCER_LOWER, CANCER_UPPER))
    assert row["model_name"] == "breast_cancer_bayes" and str(row["model_version"]) == "4"
    assert row["username"] == "clinician1" and not row["is_fallback"]
    for info in INFOS:
        assert row[info.name] == pytest.approx(info.median)
    assert pd.Timestamp(row["time_utc"]).tzinfo is not None


def test_fallback_answer_is_clearly_labelled(app, studio):
    studio.service.set_ready("breast_cancer_bayes", False)
    at = _open(app)
    banner = texts(at, "warning")
    assert any("fallback" in w for w in banner)  # app banner: the fallback serves
    at.button(key="cancer_predict").click().run()
    notice = [w for w in texts(at, "warning") if "Fallback answer" in w]
    assert len(notice) == 1
    assert "training (40%)" in notice[0] and "breast_cancer_stub" in notice[0] and "version 2" in notice[0]
    metrics = {m.label: m.value for m in at.metric}
    assert "94% bootstrap interval" in metrics and metrics["Texture group"] == "n/a (fallback)"


def test_held_out_case_fills_inputs_and_shows_truth_after_prediction(app, studio):
    at = _open(app)
    at.button(key="cancer_load_case").click().run()
    case = at.session_state["cancer_case"]
    data = load_dataset("breast_cancer")
    expected = data.X_test.iloc[case["index"]]
    for info in INFOS:
        assert at.number_input(key=_key(info.name)).value == pytest.approx(expected[info.name])
    truth = data.target_names[int(data.y_test[case["index"]])]
    assert not [i for i in texts(at, "info") if "True diagnosis" in i]  # not before predicting
    at.button(key="cancer_predict").click().run()
    (shown,) = [i for i in texts(at, "info") if "True diagnosis" in i]
    assert f"**{truth}**" in shown


def test_input_outside_training_range_warns_but_still_predicts(app, studio):
    at = _open(app)
    radius = next(i for i in INFOS if i.name == "worst radius")
    at.number_input(key=_key("worst radius")).set_value(radius.train_max + 5).run()
    (warning,) = texts(at, "warning")
    assert "Outside the training range" in warning and "Radius (worst)" in warning
    at.button(key="cancer_predict").click().run()
    assert studio.service.predict_calls[-1][1]["worst radius"] == pytest.approx(radius.train_max + 5)
    assert not at.error


def test_refused_input_becomes_one_message(app, studio):
    at = _open(app)
    studio.service.error = InputOutOfRange("'worst radius' = 1400 mm is outside the accepted range 0 to 50 mm.", field="worst radius")
    at.button(key="cancer_predict").click().run()
    assert not at.exception
    assert texts(at, "error") == ["'worst radius' = 1400 mm is outside the accepted range 0 to 50 mm."]
    assert not at.metric


def test_rate_limited_click_says_when_to_try_again(app, studio):
    at = _open(app)
    for _ in range(2):
        at.button(key="cancer_predict").click().run()
    at.button(key="cancer_predict").click().run()
    limited = [w for w in texts(at, "warning") if "Too many cancer predictions" in w]
    assert len(limited) == 1 and "Try again in" in limited[0]
    assert len(studio.service.predict_calls) == 2
