"""Bayesian breast-cancer model: one small NUTS run shared by every test in this module."""
from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from core.data import load_dataset
from core.errors import ArtifactsMissing, InputNotNumeric, InputOutOfRange, MissingFeature
from core.models import CANCER_PREDICTORS, CancerPrediction, get_spec, load_predictor
from core.models._cancer import assign_groups
from core.models.cancer_bayes import BayesPredictor, bayes_gate, scalar_diagnostics
from tests.conftest import make_settings
from tests.core.models._helpers import known_cases, log_and_load


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    # conftest's small run (4 chains x 300 + 300), sharing the JAX cache with other tests
    settings = make_settings(tmp_path_factory.mktemp("bayes"))
    seen = []
    model = get_spec("breast_cancer_bayes").train(settings, progress=lambda f, m: seen.append((f, m)))
    model.progress_seen = seen  # type: ignore[attr-defined]
    return model


def test_jax_sees_four_host_devices(trained):
    import jax

    assert jax.local_device_count() == 4
    assert trained.params["host_devices"] == 4 and trained.params["chain_method"] == "parallel"


def test_posterior_shapes_and_sampler_stats(trained):
    pred = trained.predictor
    assert pred.posterior["beta"].shape == (4, 300, len(CANCER_PREDICTORS))
    assert pred.posterior["a"].shape == (4, 300, 5) and pred.posterior["z_a"].shape == (4, 300, 5)
    # non-centered: a = mu + sigma * z, exactly
    mu, sigma, z = (pred.posterior[k] for k in ("mu_a", "sigma_a", "z_a"))
    np.testing.assert_allclose(pred.posterior["a"], mu[..., None] + sigma[..., None] * z, rtol=1e-5, atol=1e-5)
    for key in ("diverging", "energy", "tree_depth", "accept_prob", "n_steps", "step_size", "lp"):
        assert pred.sample_stats[key].shape == (4, 300), key
    assert trained.metrics["divergences"] == pred.sample_stats["diverging"].sum()
    assert [f for f, _ in trained.progress_seen] == sorted(f for f, _ in trained.progress_seen)
    assert trained.progress_seen[-1][0] == 1.0


def test_metrics_are_held_out_and_sampler_metrics_present(trained):
    data = load_dataset("breast_cancer")
    p = trained.predictor.predict_frame(data.X_test)["probability"].to_numpy()
    m = trained.metrics
    assert m["n_test"] == 143 and m["n_train"] == 426
    assert m["roc_auc"] == pytest.approx(roc_auc_score(data.y_test, p))
    assert m["brier"] == pytest.approx(brier_score_loss(data.y_test, p))
    assert m["roc_auc"] >= 0.98 and m["brier"] <= 0.04
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "compile_s", "sampling_s", "accuracy"):
        assert np.isfinite(m[key]), key
    assert m["compile_s"] > 0 and m["sampling_s"] > 0
    assert m["compile_s"] + m["sampling_s"] == pytest.approx(m["fit_s"])
    calib = trained.extra_artifacts["calibration.json"]
    assert sum(b["count"] for b in calib["bins"]) == 143


def test_diagnostics_agree_with_arviz(trained):
    import arviz as az

    beta = trained.predictor.posterior["beta"][:, :, 0].astype(float)
    rhat, bulk, tail = scalar_diagnostics(beta)
    assert rhat == pytest.approx(float(az.rhat(beta)), abs=1e-3)
    assert bulk == pytest.approx(float(az.ess(beta, method="bulk")), rel=0.05)
    assert tail == pytest.approx(float(az.ess(beta, method="tail")), rel=0.05)
    idata = trained.predictor.to_inference_data()
    assert "beta" in idata.posterior and "diverging" in idata.sample_stats


def test_gate():
    good = {"max_rhat": 1.004, "divergences": 0, "min_ess_bulk": 900, "roc_auc": 0.995, "brier": 0.02}
    assert bayes_gate(good).passed
    bad = bayes_gate(dict(good, max_rhat=1.05, divergences=3, min_ess_bulk=100))
    assert not bad.passed and len(bad.reasons) == 3
    assert any("R-hat" in r for r in bad.reasons) and any("divergent" in r for r in bad.reasons)
    assert not bayes_gate(dict(good, roc_auc=float("nan"))).passed


def test_known_cases_right_side_of_half(trained):
    cases = known_cases()
    malignant, benign = trained.predictor.predict(cases[1]), trained.predictor.predict(cases[0])
    assert isinstance(malignant, CancerPrediction) and not malignant.is_fallback
    assert malignant.probability > 0.5 > benign.probability
    for p in (malignant, benign):
        assert 0 <= p.lower < p.probability < p.upper <= 1
        assert p.credible_mass == 0.94


def test_prediction_is_posterior_mean_with_equal_tailed_interval(trained):
    pred = trained.predictor
    row = load_dataset("breast_cancer").X_test.iloc[3].to_dict()
    out = pred.predict(row)
    z = (np.array([row[f] for f in CANCER_PREDICTORS]) - pred.scaler_mean) / pred.scaler_sd
    g = int(assign_groups(np.array([row["mean texture"]]), pred.group_edges)[0])
    a = pred.posterior["a"].reshape(-1, 5)[:, g]
    beta = pred.posterior["beta"].reshape(-1, len(CANCER_PREDICTORS))
    p = 1 / (1 + np.exp(-(a + beta @ z)))
    assert out.texture_group == g
    assert out.probability == pytest.approx(p.mean())
    assert out.lower == pytest.approx(np.quantile(p, 0.03)) and out.upper == pytest.approx(np.quantile(p, 0.97))
    assert len(out.probability_draws) == 1200
    assert [c.feature for c in out.contributions] == CANCER_PREDICTORS
    c0 = beta[:, 0] * z[0]
    assert out.contributions[0].mean == pytest.approx(c0.mean())
    assert out.contributions[0].lower == pytest.approx(np.quantile(c0, 0.03))


def test_texture_groups_use_training_quintiles_and_clamp_outside(trained):
    edges = trained.predictor.group_edges
    tex = load_dataset("breast_cancer").X_train["mean texture"].to_numpy()
    assert edges[0] == tex.min() and edges[-1] == tex.max()
    counts = np.bincount(assign_groups(tex, edges), minlength=5)
    assert counts.min() >= 80  # ~85 training rows per quintile
    assert list(assign_groups(np.array([0.5, 60.0]), edges)) == [0, 4]


def test_bad_input(trained):
    pred = trained.predictor
    good = load_dataset("breast_cancer").X_test.iloc[0].to_dict()
    with pytest.raises(MissingFeature, match="mean texture"):
        pred.predict({k: v for k, v in good.items() if k != "mean texture"})
    with pytest.raises(InputNotNumeric, match="worst radius"):
        pred.predict(dict(good, **{"worst radius": float("nan")}))
    with pytest.raises(InputNotNumeric, match="worst radius"):
        pred.predict(dict(good, **{"worst radius": "large"}))
    with pytest.raises(InputOutOfRange, match=re.escape("'worst radius' = 500 mm is outside the accepted range")):
        pred.predict(dict(good, **{"worst radius": 500}))


def test_save_load_round_trip_no_object_arrays(trained, tmp_path):
    artifacts = trained.predictor.save(tmp_path)
    with np.load(artifacts["posterior"], allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    meta = json.loads(Path(artifacts["meta"]).read_text())
    assert meta["predictors"] == CANCER_PREDICTORS and len(meta["group_edges"]) == 6
    loaded = load_predictor("breast_cancer_bayes", artifacts)
    assert isinstance(loaded, BayesPredictor)
    X = load_dataset("breast_cancer").X_test
    pd.testing.assert_frame_equal(loaded.predict_frame(X), trained.predictor.predict_frame(X))
    np.testing.assert_array_equal(loaded.sample_stats["diverging"], trained.predictor.sample_stats["diverging"])
    Path(artifacts["posterior"]).write_bytes(b"truncated")
    with pytest.raises(ArtifactsMissing, match="posterior"):
        load_predictor("breast_cancer_bayes", artifacts)


def test_round_trip_through_mlflow(trained, tmp_path):
    loaded = log_and_load(trained.predictor, "breast_cancer_bayes", tmp_path, with_config=False)
    X = load_dataset("breast_cancer").X_test
    pd.testing.assert_frame_equal(
        loaded.predict(X).reset_index(drop=True), trained.predictor.predict_frame(X).reset_index(drop=True)
    )
    rich = loaded.unwrap_python_model().predictor
    assert rich.predict(X.iloc[0].to_dict()).probability == trained.predictor.predict(X.iloc[0].to_dict()).probability
    assert mlflow.get_tracking_uri() != f"sqlite:///{tmp_path}/m.db"  # restored for other tests
