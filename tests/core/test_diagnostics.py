"""core.diagnostics on synthetic posteriors whose problems we planted on purpose."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core import diagnostics
from core.errors import InvalidInput

az = pytest.importorskip("arviz")

CHAINS, DRAWS = 4, 300


def _idata(*, stuck_chain: bool = False, divergent_every: int = 0, one_chain: bool = False):
    rng = np.random.default_rng(7)
    chains = 1 if one_chain else CHAINS
    posterior = {
        "mu_alpha": rng.normal(size=(chains, DRAWS)),
        "sigma_alpha": np.abs(rng.normal(size=(chains, DRAWS))),
        "alpha_group": rng.normal(size=(chains, DRAWS, 3)),
        "beta": rng.normal(size=(chains, DRAWS, 2)),
        "logits": rng.normal(size=(chains, DRAWS, 50)),  # per-row: too big to diagnose
    }
    if stuck_chain:
        posterior["mu_alpha"][0] += 4.0  # one chain somewhere else: R-hat and ESS fail
    diverging = np.zeros((chains, DRAWS), dtype=bool)
    if divergent_every:
        diverging[1, ::divergent_every] = True
    sample_stats = {"diverging": diverging, "energy": rng.normal(size=(chains, DRAWS))}
    return az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        coords={"feature": ["mean radius", "mean concavity"]},
        dims={"beta": ["feature"]},
    )


def test_healthy_posterior_gets_a_healthy_verdict():
    report = diagnostics.diagnose(_idata())
    assert report.healthy
    assert report.verdict.startswith("Healthy")
    assert list(report.summary.columns) == list(diagnostics.SUMMARY_COLUMNS)
    # big per-row variables are left out; coords name the vector components
    assert list(report.summary.index) == [
        "mu_alpha",
        "sigma_alpha",
        "alpha_group[0]",
        "alpha_group[1]",
        "alpha_group[2]",
        "beta[mean radius]",
        "beta[mean concavity]",
    ]
    assert not report.flags.to_numpy().any()
    assert (report.summary["r_hat"] < 1.01).all()
    assert (report.summary["ess_bulk"] > 400).all()
    assert report.summary.loc["mu_alpha", "hdi_low"] < 0 < report.summary.loc["mu_alpha", "hdi_high"]
    assert report.n_chains == CHAINS and report.n_draws == DRAWS and report.divergences == 0
    assert report.bfmi == pytest.approx(list(az.bfmi(_idata())))


def test_planted_problems_are_flagged_and_named_in_the_verdict():
    report = diagnostics.diagnose(_idata(stuck_chain=True, divergent_every=30))
    assert not report.healthy
    assert report.flags.loc["mu_alpha", "r_hat"]
    assert report.flags.loc["mu_alpha", "ess_bulk"]
    assert report.flags.drop(index="mu_alpha").to_numpy().sum() == 0
    assert report.summary.loc["mu_alpha", "r_hat"] > 1.1
    assert report.divergences == 10
    assert "R-hat > 1.01 for mu_alpha" in report.verdict
    assert "ESS < 400 for mu_alpha" in report.verdict
    assert "10 divergent transitions" in report.verdict


def test_one_chain_cannot_be_called_healthy():
    report = diagnostics.diagnose(_idata(one_chain=True))
    assert "only one chain" in report.verdict


def test_trace_rank_figure_has_one_trace_and_rank_line_per_chain_and_rhat_in_title():
    idata = _idata(stuck_chain=True)
    fig = diagnostics.trace_rank_figure(idata, "mu_alpha")
    assert len(fig.data) == 2 * CHAINS
    assert "R-hat 1." in fig.layout.title.text and "⚠" in fig.layout.title.text
    # rank histograms count every draw of each chain once
    rank_counts = [sum(t.y) for t in fig.data if t.xaxis == "x2"]
    assert rank_counts == [DRAWS] * CHAINS
    json.loads(fig.to_json())  # serialisable for st.plotly_chart


def test_pair_figure_marks_divergent_draws():
    idata = _idata(divergent_every=30)
    fig = diagnostics.pair_figure(idata, ["mu_alpha", "beta[mean radius]"])
    colors = fig.data[0].marker.color
    assert sum(1 for c in colors if c == "#d62728") == 10
    assert "10 divergent draws" in fig.layout.title.text
    with pytest.raises(InvalidInput):
        diagnostics.pair_figure(idata, ["mu_alpha"])
    with pytest.raises(InvalidInput):
        diagnostics.pair_figure(idata, ["mu_alpha", "nope"])


def test_energy_and_forest_figures():
    idata = _idata()
    energy = diagnostics.energy_figure(idata)
    assert "E-BFMI" in energy.layout.title.text and len(energy.data) == 2
    assert diagnostics.group_intercept_var(idata) == "alpha_group"
    forest = diagnostics.forest_figure(idata)
    assert list(forest.data[0].y) == ["alpha_group[0]", "alpha_group[1]", "alpha_group[2]"]
    means = _idata().posterior["alpha_group"].values.reshape(-1, 3).mean(axis=0)
    assert np.allclose(forest.data[0].x, means)


def test_predictor_without_posterior_is_refused():
    class Stub:
        model_name = "breast_cancer_stub"
        posterior = None

    with pytest.raises(diagnostics.DiagnosticsUnavailable, match="no posterior"):
        diagnostics.inference_data(Stub())


def test_predictor_with_plain_dicts_is_accepted():
    class Plain:
        model_name = "x"
        posterior = {"mu": np.random.default_rng(1).normal(size=(2, 50))}
        sample_stats = {"diverging": np.zeros((2, 50), dtype=bool)}

    idata = diagnostics.inference_data(Plain())
    assert diagnostics.diagnose(idata).summary.index.tolist() == ["mu"]
