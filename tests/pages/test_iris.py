"""Iris page: inputs bounded by training range, prediction drawn, limits and errors as one message."""
from __future__ import annotations

import pytest

from core.data import feature_info
from core.errors import ModelUnavailable
from tests.pages.conftest import decode, plotly_specs, texts
from tests.pages.fakes import IRIS_PROBS

IRIS = "pages/iris.py"


def _keys(name: str) -> tuple[str, str]:
    slug = name.split(" (")[0].replace(" ", "_")
    return f"iris_{slug}_slider", f"iris_{slug}_number"


def _open(app, role="clinician"):
    at = app(role)
    return at.switch_page(IRIS).run()


def test_inputs_start_at_training_medians_and_are_bounded_by_the_training_range(app, studio):
    at = _open(app)
    assert not at.exception
    infos = feature_info("iris")
    assert len(at.slider) == 4 and len(at.number_input) == 4
    for info in infos:
        slider_key, number_key = _keys(info.name)
        slider, number = at.slider(key=slider_key), at.number_input(key=number_key)
        assert slider.min == pytest.approx(info.train_min) and slider.max == pytest.approx(info.train_max)
        assert number.min == pytest.approx(info.train_min) and number.max == pytest.approx(info.train_max)
        assert slider.value == pytest.approx(round(info.median, 1)) == number.value
        assert "cm" in slider.label


def test_number_entry_and_slider_stay_in_step(app, studio):
    at = _open(app)
    petal_slider, petal_number = _keys("petal length (cm)")
    at.number_input(key=petal_number).set_value(5.5).run()
    assert at.slider(key=petal_slider).value == pytest.approx(5.5)
    sepal_slider, sepal_number = _keys("sepal length (cm)")
    at.slider(key=sepal_slider).set_value(6.1).run()
    assert at.number_input(key=sepal_number).value == pytest.approx(6.1)


def test_happy_path_shows_species_probability_chart_and_version(app, studio):
    at = _open(app)
    at.radio(key="iris_model").set_value("iris_logistic_regression").run()
    at.number_input(key=_keys("petal width (cm)")[1]).set_value(1.3).run()
    at.button(key="iris_predict").click().run()
    assert not at.exception and not at.error
    name, values = studio.service.predict_calls[-1]
    assert name == "iris_logistic_regression"
    assert values["petal width (cm)"] == pytest.approx(1.3)
    assert len(values) == 4
    species, model = at.metric
    assert species.value == "versicolor" and species.delta == "87.0% probability"
    assert model.value == "Logistic regression" and model.delta == "version 7"
    (spec,) = plotly_specs(at)
    bar = spec["data"][0]
    assert decode(bar["x"]) == list(IRIS_PROBS) and decode(bar["y"]) == pytest.approx(list(IRIS_PROBS.values()))
    assert any("version 7" in c for c in texts(at, "caption"))
    # the prediction was audited under the logged-in user
    studio.audit.flush()
    trail = studio.audit.query(username="clinician1")
    assert list(trail["model"]) == ["iris_logistic_regression"]


def test_result_says_when_inputs_changed_after_predicting(app, studio):
    at = _open(app)
    at.button(key="iris_predict").click().run()
    at.slider(key=_keys("sepal width (cm)")[0]).set_value(3.9).run()
    assert any("inputs changed" in i for i in texts(at, "info"))


@pytest.fixture
def studio_overrides():
    return {"RATE_LIMIT_DEFAULT": "2"}


def test_rate_limited_click_says_when_to_try_again(app, studio):
    at = _open(app)
    for _ in range(2):
        at.button(key="iris_predict").click().run()
        assert not at.warning
    at.button(key="iris_predict").click().run()
    (warning,) = texts(at, "warning")
    assert "Too many predictions" in warning and "Try again in" in warning
    assert not at.exception
    assert len(studio.service.predict_calls) == 2
    studio.audit.flush()
    assert studio.audit.query(username="clinician1")["rate_limited"].tolist() == [True, False, False]


def test_core_error_becomes_one_message_not_a_traceback(app, studio):
    at = _open(app)
    studio.service.error = ModelUnavailable("iris_random_forest is not ready (training, 40%); try again shortly.")
    at.button(key="iris_predict").click().run()
    assert not at.exception
    assert texts(at, "warning") == ["iris_random_forest is not ready (training, 40%); try again shortly."]
    assert not at.metric


def test_unexpected_error_is_one_sentence(app, studio):
    at = _open(app)
    studio.service.error = RuntimeError("boom at line 42")
    at.button(key="iris_predict").click().run()
    assert not at.exception
    (error,) = texts(at, "error")
    assert "Something went wrong" in error and "boom" not in error
