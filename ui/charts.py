"""Plotly figures drawn from the prediction objects core returns (no model logic here)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np
import plotly.graph_objects as go

if TYPE_CHECKING:  # pragma: no cover
    from core.models.types import CancerPrediction, ClassPrediction

_MARGIN = {"t": 50, "b": 40, "l": 40, "r": 20}


def class_probabilities(prediction: "ClassPrediction") -> go.Figure:
    """Bar per class; the predicted class highlighted."""
    labels = list(prediction.probabilities)
    probs = [float(prediction.probabilities[k]) for k in labels]
    colors = ["#2ca02c" if k == prediction.label else "#9ecae1" for k in labels]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=probs,
            marker_color=colors,
            text=[f"{p:.1%}" for p in probs],
            textposition="outside",
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Probability per species",
        yaxis={"range": [0, 1.1], "tickformat": ".0%", "title": "probability"},
        height=320,
        margin=_MARGIN,
    )
    return fig


def probability_distribution(prediction: "CancerPrediction") -> go.Figure | None:
    """Histogram of the posterior (or bootstrap) draws of the probability, interval shaded."""
    draws = prediction.probability_draws
    if draws is None or np.size(draws) == 0:
        return None
    draws = np.asarray(draws, dtype=float).reshape(-1)
    source = "bootstrap" if prediction.is_fallback else "posterior"
    fig = go.Figure(go.Histogram(x=draws, nbinsx=40, histnorm="probability density", marker_color="#6baed6", name="draws"))
    fig.add_vrect(x0=prediction.lower, x1=prediction.upper, fillcolor="#fdae6b", opacity=0.25, line_width=0)
    fig.add_vline(x=prediction.probability, line_color="#d62728")
    fig.update_layout(
        title=(
            f"Distribution of the probability of malignancy ({source}, {draws.size} draws)<br>"
            f"<sup>red line: estimate {prediction.probability:.1%}; shaded: {prediction.credible_mass:.0%} interval "
            f"{prediction.lower:.1%} to {prediction.upper:.1%}</sup>"
        ),
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": "probability of malignancy"},
        yaxis_title="density",
        height=340,
        margin={**_MARGIN, "t": 70},
        showlegend=False,
    )
    return fig


def contributions(prediction: "CancerPrediction", display_names: Mapping[str, str] | None = None) -> go.Figure:
    """Per-feature contribution to the log-odds with its interval; positive = towards malignant."""
    names = display_names or {}
    contribs = list(prediction.contributions)
    y = [names.get(c.feature, c.feature) for c in contribs]
    means = np.array([c.mean for c in contribs], dtype=float)
    lows = np.array([c.lower for c in contribs], dtype=float)
    highs = np.array([c.upper for c in contribs], dtype=float)
    fig = go.Figure(
        go.Bar(
            x=means,
            y=y,
            orientation="h",
            marker_color=["#d62728" if m > 0 else "#1f77b4" for m in means],
            error_x={"type": "data", "symmetric": False, "array": highs - means, "arrayminus": means - lows},
            hovertemplate="%{y}: %{x:.2f}<extra></extra>",
        )
    )
    fig.add_vline(x=0, line_color="grey")
    fig.update_layout(
        title="Contribution of each input (log-odds; right = towards malignant)",
        xaxis_title="log-odds",
        yaxis={"autorange": "reversed"},
        height=120 + 40 * len(contribs),
        margin=_MARGIN,
    )
    return fig
