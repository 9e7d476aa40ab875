"""MCMC diagnostics of the Bayesian model: summary table, verdict and plotly figures.

The diagnostics page draws only what this module returns. ArviZ (and, through the
predictor, NumPyro/JAX) cost seconds to import, so they are imported inside functions:
importing this module is cheap and pages that never diagnose never pay for them.

Inputs are an ArviZ InferenceData with a `posterior` group (chain, draw, ...) and,
when available, a `sample_stats` group with `diverging` and `energy`. Build one from a
predictor with `inference_data(predictor)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from core.errors import InvalidInput, StudioError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import plotly.graph_objects as go

RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3
# Variables with more scalar components than this per draw (e.g. per-row logits) are
# left out of the table and plots: they are not parameters anyone reads one by one.
MAX_COMPONENTS = 32
# Names a texture-group intercept vector may have, in order of preference.
GROUP_INTERCEPT_NAMES = ("alpha_group", "group_intercept", "alpha", "a_group", "intercept_group", "a")

SUMMARY_COLUMNS = ("mean", "sd", "hdi_low", "hdi_high", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")
CHAIN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


class DiagnosticsUnavailable(StudioError):
    """The model has no posterior to diagnose (e.g. the fallback stub)."""


@dataclass(frozen=True)
class Component:
    """One scalar of a posterior variable: `beta[mean radius]` is component 0 of beta."""

    label: str
    var: str
    index: tuple[int, ...]
    draws: np.ndarray  # (chain, draw)


@dataclass(frozen=True)
class DiagnosticsReport:
    """Everything the diagnostics page shows above its plots."""

    summary: pd.DataFrame  # index = component label, columns = SUMMARY_COLUMNS
    flags: pd.DataFrame  # same index; bool columns r_hat, ess_bulk, ess_tail
    n_chains: int
    n_draws: int
    divergences: int
    bfmi: list[float]
    hdi_prob: float
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        """One line: healthy, or what is wrong."""
        scope = f"{self.n_chains} chains x {self.n_draws} draws"
        if self.healthy:
            return (
                f"Healthy: all R-hat <= {RHAT_MAX}, all ESS >= {ESS_MIN:.0f}, no divergences, "
                f"E-BFMI >= {BFMI_MIN} ({scope})."
            )
        return f"Needs attention ({scope}): " + "; ".join(self.problems) + "."


def inference_data(predictor: Any) -> Any:
    """ArviZ InferenceData of a Bayesian predictor.

    Uses the predictor's own `to_inference_data()`; a predictor with plain
    `posterior` / `sample_stats` dicts of (chain, draw, ...) arrays also works.
    Raises DiagnosticsUnavailable for a model without a posterior.
    """
    if hasattr(predictor, "to_inference_data"):
        return predictor.to_inference_data()
    posterior = getattr(predictor, "posterior", None)
    if not posterior:
        name = getattr(predictor, "model_name", type(predictor).__name__)
        raise DiagnosticsUnavailable(f"{name} has no posterior samples to diagnose.")
    import arviz as az

    return az.from_dict(posterior=dict(posterior), sample_stats=dict(getattr(predictor, "sample_stats", None) or {}))


def components(idata: Any, var_names: Sequence[str] | None = None) -> list[Component]:
    """Scalar components of the posterior, in variable order, big variables left out."""
    posterior = _posterior(idata)
    names = list(var_names) if var_names is not None else [str(v) for v in posterior.data_vars]
    out: list[Component] = []
    for var in names:
        if var not in posterior.data_vars:
            raise InvalidInput(f"The posterior has no variable {var!r}.", field=var)
        da = posterior[var]
        values = np.asarray(da.values, dtype=float)
        extra_dims = [d for d in da.dims if d not in ("chain", "draw")]
        shape = values.shape[2:]
        size = int(np.prod(shape)) if shape else 1
        if var_names is None and size > MAX_COMPONENTS:
            continue
        if not shape:
            out.append(Component(var, var, (), values))
            continue
        coord_labels = [_coord_labels(da, dim, n) for dim, n in zip(extra_dims, shape)]
        for index in np.ndindex(*shape):
            label = var + "[" + ", ".join(coord_labels[k][i] for k, i in enumerate(index)) + "]"
            out.append(Component(label, var, tuple(int(i) for i in index), values[(slice(None), slice(None)) + index]))
    if not out:
        raise DiagnosticsUnavailable("The posterior has no parameters small enough to diagnose.")
    return out


def diagnose(
    idata: Any,
    *,
    var_names: Sequence[str] | None = None,
    hdi_prob: float = 0.94,
) -> DiagnosticsReport:
    """Summary table (mean, sd, HDI, MCSE, bulk/tail ESS, R-hat) with flags and a verdict."""
    import arviz as az

    comps = components(idata, var_names)
    rows = []
    for comp in comps:
        draws = comp.draws
        flat = draws.reshape(-1)
        low, high = np.asarray(az.hdi(flat, hdi_prob=hdi_prob), dtype=float)
        rows.append(
            {
                "mean": float(flat.mean()),
                "sd": float(flat.std(ddof=1)) if flat.size > 1 else 0.0,
                "hdi_low": float(low),
                "hdi_high": float(high),
                "mcse_mean": float(az.mcse(draws, method="mean")),
                "mcse_sd": float(az.mcse(draws, method="sd")),
                "ess_bulk": float(az.ess(draws, method="bulk")),
                "ess_tail": float(az.ess(draws, method="tail")),
                "r_hat": float(az.rhat(draws)),
            }
        )
    summary = pd.DataFrame(rows, index=pd.Index([c.label for c in comps], name="parameter"), columns=list(SUMMARY_COLUMNS))
    flags = pd.DataFrame(
        {
            "r_hat": ~(summary["r_hat"] <= RHAT_MAX),  # NaN R-hat (one chain) counts as a flag
            "ess_bulk": ~(summary["ess_bulk"] >= ESS_MIN),
            "ess_tail": ~(summary["ess_tail"] >= ESS_MIN),
        },
        index=summary.index,
    )
    n_chains, n_draws = comps[0].draws.shape
    divergences = _divergences(idata)
    bfmi = _bfmi(idata)
    problems: list[str] = []
    if n_chains < 2:
        problems.append("only one chain: R-hat cannot be judged")
    bad_rhat = summary.index[flags["r_hat"]].tolist() if n_chains >= 2 else []
    if bad_rhat:
        problems.append(f"R-hat > {RHAT_MAX} for {_names(bad_rhat)} (max {summary['r_hat'].max():.3f})")
    low_ess = summary.index[flags["ess_bulk"] | flags["ess_tail"]].tolist()
    if low_ess:
        worst = float(summary[["ess_bulk", "ess_tail"]].min().min())
        problems.append(f"ESS < {ESS_MIN:.0f} for {_names(low_ess)} (min {worst:.0f})")
    if divergences:
        problems.append(f"{divergences} divergent transition{'s' if divergences != 1 else ''}")
    low_bfmi = [i for i, b in enumerate(bfmi) if b < BFMI_MIN]
    if low_bfmi:
        problems.append(f"E-BFMI < {BFMI_MIN} in chain {', '.join(str(i) for i in low_bfmi)}")
    return DiagnosticsReport(
        summary=summary,
        flags=flags,
        n_chains=int(n_chains),
        n_draws=int(n_draws),
        divergences=divergences,
        bfmi=bfmi,
        hdi_prob=hdi_prob,
        problems=problems,
    )


def trace_rank_figure(idata: Any, label: str, *, r_hat: float | None = None) -> "go.Figure":
    """Trace (left) and rank histogram per chain (right) of one component; R-hat in the title."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    from scipy.stats import rankdata

    comp = _component(idata, label)
    draws = comp.draws
    if r_hat is None:
        import arviz as az

        r_hat = float(az.rhat(draws))
    n_chains, n_draws = draws.shape
    ranks = rankdata(draws.reshape(-1)).reshape(draws.shape)
    bins = max(5, min(20, n_draws // 20))
    edges = np.linspace(0.5, draws.size + 0.5, bins + 1)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=("trace", "rank per chain"))
    for chain in range(n_chains):
        color = CHAIN_COLORS[chain % len(CHAIN_COLORS)]
        fig.add_trace(
            go.Scatter(y=draws[chain], mode="lines", line={"width": 1, "color": color}, name=f"chain {chain}", legendgroup=str(chain)),
            row=1,
            col=1,
        )
        counts, _ = np.histogram(ranks[chain], bins=edges)
        fig.add_trace(
            go.Scatter(
                x=(edges[:-1] + edges[1:]) / 2,
                y=counts,
                mode="lines",
                line={"shape": "hvh", "color": color},
                name=f"chain {chain}",
                legendgroup=str(chain),
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    fig.add_hline(y=n_draws / bins, line_dash="dot", line_color="grey", row=1, col=2)
    rhat_text = "n/a" if r_hat is None or not np.isfinite(r_hat) else f"{r_hat:.3f}"
    flag = " ⚠" if rhat_text != "n/a" and r_hat > RHAT_MAX else ""
    fig.update_layout(title=f"{label}: R-hat {rhat_text}{flag}", height=300, margin={"t": 60, "b": 30, "l": 40, "r": 20})
    fig.update_xaxes(title_text="draw", row=1, col=1)
    fig.update_xaxes(title_text="rank (all chains)", row=1, col=2)
    return fig


def pair_figure(idata: Any, labels: Sequence[str], *, max_points: int = 2000) -> "go.Figure":
    """Scatter matrix of a few components; divergent draws in red."""
    import plotly.graph_objects as go

    if len(labels) < 2:
        raise InvalidInput("Choose at least two parameters for the pair plot.", field="labels")
    comps = [_component(idata, label) for label in labels]
    diverging = _diverging_mask(idata, comps[0].draws.shape).reshape(-1)
    data = {c.label: c.draws.reshape(-1) for c in comps}
    n = diverging.size
    keep = np.arange(n)
    if n > max_points:  # thin evenly, but keep every divergent draw
        step = int(np.ceil(n / max_points))
        keep = np.union1d(np.arange(0, n, step), np.flatnonzero(diverging))
    dims = [{"label": c.label, "values": data[c.label][keep]} for c in comps]
    colors = np.where(diverging[keep], "#d62728", "rgba(31,119,180,0.35)")
    sizes = np.where(diverging[keep], 6, 3)
    fig = go.Figure(
        go.Splom(
            dimensions=dims,
            marker={"color": colors.tolist(), "size": sizes.tolist()},
            diagonal_visible=False,
            showupperhalf=False,
            text=np.where(diverging[keep], "divergent", "").tolist(),
        )
    )
    n_div = int(diverging.sum())
    fig.update_layout(
        title=f"Pair plot: {n_div} divergent draw{'s' if n_div != 1 else ''} (red)",
        height=180 * len(labels) + 100,
        margin={"t": 60, "b": 30, "l": 40, "r": 20},
    )
    return fig


def energy_figure(idata: Any) -> "go.Figure":
    """Marginal energy vs energy transitions (overlaid histograms); E-BFMI per chain in the title."""
    import plotly.graph_objects as go

    energy = _sample_stat(idata, "energy")
    if energy is None:
        raise DiagnosticsUnavailable("The sampler did not record energy: no energy plot.")
    bfmi = _bfmi(idata)
    marginal = (energy - energy.mean(axis=1, keepdims=True)).reshape(-1)
    transitions = np.diff(energy, axis=1).reshape(-1)
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=marginal, name="marginal energy", opacity=0.6, histnorm="probability density", nbinsx=40))
    fig.add_trace(go.Histogram(x=transitions, name="energy transition", opacity=0.6, histnorm="probability density", nbinsx=40))
    bfmi_text = ", ".join(f"{b:.2f}" for b in bfmi)
    fig.update_layout(
        barmode="overlay",
        title=f"Energy: E-BFMI per chain {bfmi_text} (low if < {BFMI_MIN})",
        xaxis_title="energy - mean",
        height=320,
        margin={"t": 60, "b": 40, "l": 40, "r": 20},
    )
    return fig


def group_intercept_var(idata: Any) -> str | None:
    """Name of the texture-group intercept vector in the posterior, if there is one."""
    posterior = _posterior(idata)
    names = [str(v) for v in posterior.data_vars]
    for candidate in GROUP_INTERCEPT_NAMES:
        if candidate in names and posterior[candidate].ndim == 3:
            return candidate
    for name in names:  # e.g. 'alpha_texture', 'group_alpha'
        lowered = name.lower()
        if posterior[name].ndim == 3 and ("group" in lowered or "texture" in lowered) and "raw" not in lowered and "z" != lowered:
            return name
    return None


def forest_figure(idata: Any, var_name: str | None = None, *, hdi_prob: float = 0.94) -> "go.Figure":
    """Forest plot of the texture-group intercepts: mean and HDI per group (log-odds)."""
    import arviz as az
    import plotly.graph_objects as go

    var = var_name or group_intercept_var(idata)
    if var is None:
        raise DiagnosticsUnavailable("The posterior has no texture-group intercepts to plot.")
    comps = [c for c in components(idata, [var])]
    means, lows, highs = [], [], []
    for comp in comps:
        flat = comp.draws.reshape(-1)
        low, high = np.asarray(az.hdi(flat, hdi_prob=hdi_prob), dtype=float)
        means.append(float(flat.mean()))
        lows.append(float(low))
        highs.append(float(high))
    means_a, lows_a, highs_a = np.array(means), np.array(lows), np.array(highs)
    fig = go.Figure(
        go.Scatter(
            x=means_a,
            y=[c.label for c in comps],
            mode="markers",
            marker={"size": 9},
            error_x={"type": "data", "symmetric": False, "array": highs_a - means_a, "arrayminus": means_a - lows_a},
            name=f"mean and {hdi_prob:.0%} HDI",
        )
    )
    fig.add_vline(x=0.0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title=f"Texture-group intercepts ({var}): mean and {hdi_prob:.0%} HDI",
        xaxis_title="log-odds of malignancy",
        yaxis={"autorange": "reversed"},
        height=120 + 45 * len(comps),
        margin={"t": 60, "b": 40, "l": 40, "r": 20},
    )
    return fig


# --- helpers -----------------------------------------------------------------------


def _posterior(idata: Any) -> Any:
    posterior = getattr(idata, "posterior", None)
    if posterior is None or not list(posterior.data_vars):
        raise DiagnosticsUnavailable("No posterior samples to diagnose.")
    return posterior


def _coord_labels(da: Any, dim: str, n: int) -> list[str]:
    if dim in da.coords:
        values = [str(v) for v in np.asarray(da.coords[dim].values).tolist()]
        if len(values) == n:
            return values
    return [str(i) for i in range(n)]


def _component(idata: Any, label: str) -> Component:
    var = label.split("[", 1)[0]
    for comp in components(idata, [var]):
        if comp.label == label:
            return comp
    raise InvalidInput(f"The posterior has no parameter {label!r}.", field="label")


def _sample_stat(idata: Any, name: str) -> np.ndarray | None:
    stats = getattr(idata, "sample_stats", None)
    if stats is None or name not in stats.data_vars:
        return None
    return np.asarray(stats[name].values)


def _diverging_mask(idata: Any, shape: tuple[int, ...]) -> np.ndarray:
    diverging = _sample_stat(idata, "diverging")
    if diverging is None or diverging.shape != shape:
        return np.zeros(shape, dtype=bool)
    return diverging.astype(bool)


def _divergences(idata: Any) -> int:
    diverging = _sample_stat(idata, "diverging")
    return 0 if diverging is None else int(np.asarray(diverging, dtype=bool).sum())


def _bfmi(idata: Any) -> list[float]:
    """E-BFMI per chain: mean squared energy change over energy variance."""
    energy = _sample_stat(idata, "energy")
    if energy is None or energy.ndim != 2 or energy.shape[1] < 3:
        return []
    import arviz as az

    return [float(b) for b in np.atleast_1d(az.bfmi(energy.astype(float)))]


def _names(labels: list[str], limit: int = 4) -> str:
    shown = ", ".join(labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")
