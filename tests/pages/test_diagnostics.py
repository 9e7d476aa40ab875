"""Diagnostics page: champion by default, summary with flags, the five kinds of plot, a verdict."""
from __future__ import annotations

import pytest

from tests.pages.conftest import plotly_specs, texts

DIAG = "pages/diagnostics.py"


def _open(app, role="analyst"):
    return app(role).switch_page(DIAG).run()


def test_champion_is_default_and_healthy_fit_gets_a_healthy_verdict(app, studio):
    at = _open(app)
    assert not at.exception
    box = at.selectbox(key="diag_version")
    assert box.value.version == "1" and "champion" in box.value.aliases
    assert [o.split(" (")[0] for o in box.options] == ["version 3", "version 2", "version 1"]
    (success,) = texts(at, "success")
    assert success.startswith("Healthy")
    summary = at.dataframe[0].value
    assert list(summary.index) == ["mu_a", "sigma_a", "z_a[0]", "z_a[1]", "z_a[2]", "z_a[3]", "z_a[4]",
                                   "a[0]", "a[1]", "a[2]", "a[3]", "a[4]",
                                   "beta[worst radius]", "beta[worst texture]", "beta[worst smoothness]", "beta[worst concave points]"]
    assert {"mean", "sd", "ess_bulk", "ess_tail", "r_hat", "mcse_mean"} <= set(summary.columns)
    assert summary.loc["beta[worst radius]", "mean"] == pytest.approx(1.0, abs=0.05)
    assert "#f8d7da" not in str(at.dataframe[0].proto)  # nothing highlighted
    specs = plotly_specs(at)
    titles = [s["layout"]["title"]["text"] for s in specs]
    # two trace+rank figures (the scalar hyper-parameters), pair, energy, forest
    assert titles[0].startswith("mu_a: R-hat ") and titles[1].startswith("sigma_a: R-hat ")
    assert float(titles[0].split("R-hat ")[1]) == pytest.approx(summary.loc["mu_a", "r_hat"], abs=1e-3)
    assert "⚠" not in titles[0]
    assert titles[2].startswith("Pair plot: 0 divergent draws")
    assert titles[3].startswith("Energy: E-BFMI per chain")
    assert titles[4].startswith("Texture-group intercepts (a)")
    assert len(specs) == 5


def test_a_bad_version_is_flagged_in_verdict_table_and_titles(app, studio):
    at = _open(app)
    versions = at.selectbox(key="diag_version").options
    at.selectbox(key="diag_version").select_index(versions.index(next(o for o in versions if o.startswith("version 2")))).run()
    assert not at.exception
    (error,) = texts(at, "error")
    assert error.startswith("Needs attention") and "R-hat > 1.01 for mu_a" in error and "ESS < 400" in error
    assert "mu_a" in at.multiselect(key="diag_trace_params").value
    styles = str(at.dataframe[0].proto)
    assert "#f8d7da" in styles  # flagged cells are highlighted
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert titles[0].startswith("mu_a: R-hat") and "⚠" in titles[0]
    # mu_a and every a[g] = mu_a + sigma_a * z_a[g] inherit the stuck chain
    assert "6 of 16 parameters flagged" in " ".join(texts(at, "caption"))


def test_choosing_trace_parameters_draws_one_figure_each(app, studio):
    at = _open(app)
    at.multiselect(key="diag_trace_params").set_value(["a[0]", "a[1]", "a[2]"]).run()
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert [t.split(":")[0] for t in titles[:3]] == ["a[0]", "a[1]", "a[2]"]


def test_pair_plot_needs_two_parameters(app, studio):
    at = _open(app)
    at.multiselect(key="diag_pair_params").set_value(["mu_a"]).run()
    assert "Choose at least two parameters." in texts(at, "info")
    assert not any(s["layout"]["title"]["text"].startswith("Pair plot") for s in plotly_specs(at))


def test_no_registered_version_yet(app, studio):
    studio.service.registry.versions.pop("breast_cancer_bayes")
    at = _open(app)
    assert any("No version of the Bayesian model is registered yet" in i for i in texts(at, "info"))
    assert not at.get("plotly_chart")


def test_registry_error_is_one_message(app, studio, monkeypatch):
    from core.errors import ArtifactsMissing

    def broken(name, version):
        raise ArtifactsMissing("breast_cancer_bayes version 1: posterior.npz is gone.")

    monkeypatch.setattr(studio.service.registry, "load_version", broken)
    at = _open(app)
    assert not at.exception
    assert texts(at, "error") == ["Loading version 1: breast_cancer_bayes version 1: posterior.npz is gone."]


def test_admin_sees_it_clinician_cannot_reach_it(app, studio):
    assert not _open(app, "admin").exception
    with pytest.raises(ValueError):
        app("clinician").switch_page(DIAG)
