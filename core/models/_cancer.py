"""What both breast-cancer models share: predictors, texture groups, standardization.

Predictors (the comparison is in docs/models.md): three 'worst' features (mean of the
three largest nuclei in the image): size, smoothness and concave points. 'mean texture'
is not a predictor: it defines the five groups (training quintiles) whose intercepts vary
in the Bayesian model, so it is an input too. A texture predictor next to the texture
groups only added a ridge in the posterior (occasional divergences), not accuracy.
"""
from __future__ import annotations

import numpy as np

CANCER_PREDICTORS: list[str] = [
    "worst radius",
    "worst smoothness",
    "worst concave points",
]
GROUP_FEATURE = "mean texture"
N_GROUPS = 5
CANCER_INPUTS: list[str] = CANCER_PREDICTORS + [GROUP_FEATURE]


def group_edges(texture_train: np.ndarray) -> np.ndarray:
    """Six numbers: training min, the 20/40/60/80% quantiles, training max."""
    qs = np.quantile(np.asarray(texture_train, dtype=float), np.linspace(0.0, 1.0, N_GROUPS + 1))
    return qs.astype(float)


def assign_groups(texture: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Group 0..4 by the inner quintile edges; values beyond the training range go to the
    end groups (0 below, 4 above)."""
    return np.searchsorted(np.asarray(edges[1:-1]), np.asarray(texture, dtype=float), side="right").astype(np.int32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
