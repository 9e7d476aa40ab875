"""Datasets from scikit-learn's bundled loaders (no downloads) and feature metadata.

One fixed stratified split per dataset (test_size=0.25, random_state=42): models train on
X_train and every metric we report is computed on X_test. For breast cancer our label 1
means malignant; scikit-learn's target uses 0 for malignant, so it is inverted here.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from core.errors import InputNotNumeric, InputOutOfRange, MissingFeature, UnknownModel

DATASETS = ("iris", "breast_cancer")
TEST_SIZE = 0.25
RANDOM_STATE = 42
# The plausible range used to refuse input is the training range widened by this many
# training spans on each side (clipped at 0: every feature here is a length, area, count
# or ratio that cannot be negative). Wide on purpose: it catches typos (a radius of 1400),
# not unusual patients; the UI separately warns outside the training range.
PLAUSIBLE_WIDEN = 1.0


@dataclass(frozen=True)
class Dataset:
    name: str
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    display_name: str
    unit: str
    train_min: float
    train_max: float
    median: float
    plausible_min: float
    plausible_max: float


def _raw(name: str) -> tuple[pd.DataFrame, np.ndarray, tuple[str, ...]]:
    from sklearn import datasets

    if name == "iris":
        bunch = datasets.load_iris(as_frame=True)
        return bunch.data.astype(float), bunch.target.to_numpy().astype(int), tuple(bunch.target_names)
    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer(as_frame=True)
        # sklearn: 0 = malignant, 1 = benign. Ours: 1 = malignant.
        y = 1 - bunch.target.to_numpy().astype(int)
        return bunch.data.astype(float), y, ("benign", "malignant")
    raise UnknownModel(f"Unknown dataset {name!r}: use one of {', '.join(DATASETS)}.")


@lru_cache(maxsize=None)
def load_dataset(name: str) -> Dataset:
    """The dataset with its one fixed stratified train/test split (cached per process)."""
    from sklearn.model_selection import train_test_split

    X, y, target_names = _raw(name)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=RANDOM_STATE, stratify=y
    )
    y_train, y_test = np.array(y_train, dtype=int), np.array(y_test, dtype=int)
    y_train.flags.writeable = y_test.flags.writeable = False  # shared by every caller
    return Dataset(
        name=name,
        feature_names=tuple(X.columns),
        target_names=target_names,
        X_train=X_train.reset_index(drop=True),
        X_test=X_test.reset_index(drop=True),
        y_train=y_train,
        y_test=y_test,
    )


def _display_and_unit(dataset: str, name: str) -> tuple[str, str]:
    if dataset == "iris":
        # sklearn: "sepal length (cm)"
        base = name.replace(" (cm)", "")
        return base.capitalize(), "cm"
    # Breast cancer (Wisconsin diagnostic): features of cell nuclei in a digitized image.
    # Units: radius and perimeter in mm, area in mm²; texture (std of grey levels),
    # smoothness, compactness, concavity, concave points, symmetry and fractal dimension
    # are unitless. "error" features are standard errors, "worst" the mean of the three
    # largest values.
    if name.endswith(" error"):
        stat, base = "standard error", name[: -len(" error")]
    else:
        stat, base = name.split(" ", 1)
    unit = "mm" if base in ("radius", "perimeter") else "mm²" if base == "area" else ""
    stat_label = {"mean": "mean", "worst": "worst", "standard error": "SE"}[stat]
    return f"{base.capitalize()} ({stat_label})", unit


@lru_cache(maxsize=None)
def _all_infos(dataset: str) -> tuple[FeatureInfo, ...]:
    data = load_dataset(dataset)
    infos = []
    for name in data.feature_names:
        col = data.X_train[name].to_numpy(dtype=float)
        lo, hi = float(col.min()), float(col.max())
        span = hi - lo
        display, unit = _display_and_unit(dataset, name)
        infos.append(
            FeatureInfo(
                name=name,
                display_name=display,
                unit=unit,
                train_min=lo,
                train_max=hi,
                median=float(np.median(col)),
                plausible_min=max(0.0, lo - PLAUSIBLE_WIDEN * span),
                plausible_max=hi + PLAUSIBLE_WIDEN * span,
            )
        )
    return tuple(infos)


def feature_info(dataset: str, names: Iterable[str] | None = None) -> list[FeatureInfo]:
    """Metadata for the forms and for validation, in the order of names (default: all)."""
    if dataset not in DATASETS:
        raise UnknownModel(f"Unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}.")
    by_name = {info.name: info for info in _all_infos(dataset)}
    if names is None:
        return list(by_name.values())
    out = []
    for name in names:
        if name not in by_name:
            raise UnknownModel(f"Dataset {dataset!r} has no feature {name!r}.")
        out.append(by_name[name])
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _as_number(name: str, value: object) -> float:
    if value is None:
        raise InputNotNumeric(f"'{name}' has no value: enter a number.", field=name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputNotNumeric(f"'{name}' must be a number, got {value!r}.", field=name)
    number = float(value)
    if math.isnan(number):
        raise InputNotNumeric(f"'{name}' is not a number (NaN): enter a number.", field=name)
    if math.isinf(number):
        raise InputNotNumeric(f"'{name}' is infinite: enter a finite number.", field=name)
    return number


def validate_features(values: Mapping[str, object], infos: list[FeatureInfo]) -> dict[str, float]:
    """Checked float values for exactly the features in infos (extra keys are ignored).

    Raises MissingFeature, InputNotNumeric (text, None, NaN, inf, booleans) or
    InputOutOfRange (outside the plausible range); each message names the feature.
    """
    out: dict[str, float] = {}
    for info in infos:
        if info.name not in values:
            raise MissingFeature(f"Missing feature '{info.name}': a value is required.", field=info.name)
        number = _as_number(info.name, values[info.name])
        if not info.plausible_min <= number <= info.plausible_max:
            unit = f" {info.unit}" if info.unit else ""
            raise InputOutOfRange(
                f"'{info.name}' = {_fmt(number)}{unit} is outside the accepted range "
                f"{_fmt(info.plausible_min)} to {_fmt(info.plausible_max)}{unit}.",
                field=info.name,
            )
        out[info.name] = number
    return out


def out_of_training_range(values: Mapping[str, object], infos: list[FeatureInfo]) -> list[str]:
    """Names of features whose (numeric) value lies outside the training min..max."""
    names = []
    for info in infos:
        value = values.get(info.name)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number) and not info.train_min <= number <= info.train_max:
                names.append(info.name)
    return names
