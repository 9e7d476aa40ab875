"""core.data: fixed split, malignant = 1, feature metadata, input validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from core.data import (
    DATASETS,
    feature_info,
    load_dataset,
    out_of_training_range,
    validate_features,
)
from core.errors import InputNotNumeric, InputOutOfRange, MissingFeature, UnknownModel


def test_breast_cancer_label_one_is_malignant():
    data = load_dataset("breast_cancer")
    assert data.target_names == ("benign", "malignant")
    raw = load_breast_cancer()
    assert raw.target_names[0] == "malignant"  # sklearn's 0 is malignant ...
    n_malignant = int((raw.target == 0).sum())
    # ... and ours is 1: 212 malignant cases in total
    assert int(data.y_train.sum() + data.y_test.sum()) == n_malignant == 212


@pytest.mark.parametrize("name", DATASETS)
def test_split_is_fixed_stratified_and_disjoint(name):
    data = load_dataset(name)
    n = len(data.X_train) + len(data.X_test)
    assert len(data.X_test) == math.ceil(0.25 * n)
    assert list(data.X_train.columns) == list(data.feature_names)
    # stratified: class shares equal within one case
    for cls in np.unique(data.y_train):
        assert abs((data.y_train == cls).mean() - (data.y_test == cls).mean()) < 2 / len(data.y_test)
    # disjoint rows
    train_rows = {tuple(r) for r in data.X_train.to_numpy()}
    assert not any(tuple(r) in train_rows for r in data.X_test.to_numpy())
    # the same split every time (cache cleared: recomputed from scratch)
    load_dataset.cache_clear()
    again = load_dataset(name)
    assert np.array_equal(again.X_test.to_numpy(), data.X_test.to_numpy())
    assert np.array_equal(again.y_test, data.y_test)


def test_feature_info_units_ranges_and_order():
    infos = feature_info("breast_cancer", ["mean radius", "mean area", "mean smoothness", "worst perimeter"])
    assert [i.unit for i in infos] == ["mm", "mm²", "", "mm"]
    assert infos[0].display_name == "Radius (mean)"
    data = load_dataset("breast_cancer")
    radius = data.X_train["mean radius"]
    assert infos[0].train_min == radius.min() and infos[0].train_max == radius.max()
    assert infos[0].median == pytest.approx(radius.median())
    for info in feature_info("breast_cancer") + feature_info("iris"):
        assert 0.0 <= info.plausible_min <= info.train_min <= info.median <= info.train_max < info.plausible_max
    iris = feature_info("iris")
    assert [i.unit for i in iris] == ["cm"] * 4
    assert iris[0].display_name == "Sepal length"


def test_feature_info_unknowns():
    with pytest.raises(UnknownModel, match="no feature 'radius'"):
        feature_info("breast_cancer", ["radius"])
    with pytest.raises(UnknownModel, match="Unknown dataset"):
        feature_info("mnist")


IRIS = feature_info("iris")
GOOD = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}


def test_validate_accepts_numbers_and_ignores_extra_keys():
    values = dict(GOOD, **{"petal width (cm)": np.float32(0.2), "sepal width (cm)": 3, "comment": "x"})
    out = validate_features(values, IRIS)
    assert set(out) == set(GOOD)
    assert all(isinstance(v, float) for v in out.values())
    assert out["sepal width (cm)"] == 3.0


def test_validate_missing_feature():
    values = {k: v for k, v in GOOD.items() if k != "petal length (cm)"}
    with pytest.raises(MissingFeature, match="petal length") as err:
        validate_features(values, IRIS)
    assert err.value.field == "petal length (cm)"


@pytest.mark.parametrize("bad", ["5.1", "abc", None, float("nan"), float("inf"), -float("inf"), True, [1.0]])
def test_validate_not_numeric(bad):
    with pytest.raises(InputNotNumeric) as err:
        validate_features(dict(GOOD, **{"sepal length (cm)": bad}), IRIS)
    assert "sepal length (cm)" in str(err.value)
    assert err.value.field == "sepal length (cm)"


@pytest.mark.parametrize("bad", [-1.0, 1000.0])
def test_validate_out_of_range_names_value_and_range(bad):
    info = IRIS[0]
    with pytest.raises(InputOutOfRange) as err:
        validate_features(dict(GOOD, **{"sepal length (cm)": bad}), IRIS)
    message = str(err.value)
    assert "sepal length (cm)" in message and f"{bad:.4g}" in message
    assert f"{info.plausible_min:.4g}" in message and f"{info.plausible_max:.4g}" in message and "cm" in message


def test_out_of_training_range_lists_only_unusual_values():
    values = dict(GOOD, **{"sepal length (cm)": 9.0, "petal width (cm)": "x"})
    assert out_of_training_range(values, IRIS) == ["sepal length (cm)"]
    assert out_of_training_range(GOOD, IRIS) == []
