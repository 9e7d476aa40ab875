"""Hierarchical Bayesian logistic regression for breast cancer (NumPyro, NUTS).

    y_i ~ Bernoulli(logit^-1(a[g_i] + x_i . beta))      x_i: standardized predictors
    a_g = mu_a + sigma_a * z_g,  z_g ~ Normal(0, 1)      g_i: 'mean texture' quintile
    mu_a ~ Normal(0, 2.5),  sigma_a ~ HalfNormal(1),  beta_j ~ Normal(0, 2.5)

Training imports JAX/NumPyro lazily (a cold import costs seconds); loading and predicting
use NumPy only, over the stored posterior draws, so one prediction takes well under 5 ms.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.config import Settings
from core.data import feature_info, load_dataset, validate_features
from core.models._cancer import (
    CANCER_PREDICTORS,
    GROUP_FEATURE,
    N_GROUPS,
    assign_groups,
    group_edges,
    sigmoid,
)
from core.models._common import (
    held_out_scores,
    load_npz,
    read_json,
    report,
    scatter_rows,
    validate_frame,
    write_json,
)
from core.models.types import CancerPrediction, Contribution, GateResult, Progress, TrainedModel
from core.errors import ArtifactsMissing, TrainingFailed

log = logging.getLogger(__name__)

NAME = "breast_cancer_bayes"
DATASET = "breast_cancer"
TARGET_ACCEPT = 0.95
# Prior scales (on standardized predictors, log-odds units); see docs/models.md.
MU_SCALE = 2.5
SIGMA_SCALE = 1.0
BETA_SCALE = 2.5
DENSE_MASS = False  # a dense mass matrix was tried: ~2x slower sampling, no gain here
MAX_PROBABILITY_DRAWS = 4000
# Gate (all must hold): sampler health, then held-out quality.
GATE_MAX_RHAT = 1.01
GATE_MIN_ESS_BULK = 400.0
GATE_MAX_DIVERGENCES = 0
GATE_MIN_AUC = 0.98
GATE_MAX_BRIER = 0.04  # the 5-predictor anchor's Brier score: never serve worse than that
STAT_PREFIX = "stat__"
POSTERIOR_SITES = ("mu_a", "sigma_a", "z_a", "a", "beta")


# ---------------------------------------------------------------- the model (JAX side)
def model(X: Any, group: Any, n_groups: int, y: Any = None) -> None:
    """NumPyro model: a plain function of the data with named sites."""
    import numpyro
    import numpyro.distributions as dist

    n_obs, n_pred = X.shape
    mu_a = numpyro.sample("mu_a", dist.Normal(0.0, MU_SCALE))
    sigma_a = numpyro.sample("sigma_a", dist.HalfNormal(SIGMA_SCALE))
    with numpyro.plate("groups", n_groups):
        z_a = numpyro.sample("z_a", dist.Normal(0.0, 1.0))
    # Non-centered: a = mu + sigma * z with z ~ N(0, 1), instead of a ~ N(mu, sigma). When a
    # group has few rows its intercept is pinned only by the prior, and the centered form
    # makes a funnel (a's scale shrinks with sigma) where NUTS diverges; z is independent
    # of sigma a priori, so the geometry stays round whatever sigma is.
    a = numpyro.deterministic("a", mu_a + sigma_a * z_a)
    with numpyro.plate("predictors", n_pred):
        beta = numpyro.sample("beta", dist.Normal(0.0, BETA_SCALE))
    logits = a[group] + X @ beta
    with numpyro.plate("obs", n_obs):
        numpyro.sample("y", dist.Bernoulli(logits=logits), obs=y)


_jax_lock = threading.Lock()
_jax_ready: dict[str, Any] = {}


def setup_jax(settings: Settings) -> dict[str, Any]:
    """Once per process: persistent compilation cache under settings.jax_cache_dir.

    The first call wins (JAX reads the cache directory when it first compiles); later calls
    with another directory keep the first and say so in the returned dict.
    """
    with _jax_lock:
        if not _jax_ready:
            import jax

            cache_dir = Path(settings.jax_cache_dir).resolve()
            cache_dir.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(cache_dir))
            # Default 1 s would skip caching our small programs, which are the point.
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
            _jax_ready.update(cache_dir=str(cache_dir), devices=jax.local_device_count())
            _install_compile_timer()
        return dict(_jax_ready)


# Compile time is measured from JAX's own monitoring spans (tracing, lowering to MLIR,
# XLA compile or persistent-cache retrieval): their union in wall time during the fit.
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
# Per fitting thread (JAX compiles in the calling thread), so concurrent fits do not mix.
_span_sinks: dict[int, list[tuple[float, float]]] = {}


def _install_compile_timer() -> None:
    from jax import monitoring

    def listener(event: str, start: float, end: float, **kwargs: Any) -> None:
        sink = _span_sinks.get(threading.get_ident())
        if sink is not None and event in _COMPILE_EVENTS:
            sink.append((start, end))

    monitoring.register_event_time_span_listener(listener)


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start  # type: ignore[operator]
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start  # type: ignore[operator]
    return total


# ----------------------------------------------------------------- diagnostics (NumPy)
def _split(x: np.ndarray) -> np.ndarray:
    """(chain, draw) -> (2*chain, draw//2): halves of each chain, as ArviZ does."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri
    from scipy.stats import rankdata

    ranks = rankdata(x, method="average").reshape(x.shape)
    return ndtri((ranks - 0.375) / (x.size + 0.25))


def _ess(x: np.ndarray) -> float:
    from numpyro.diagnostics import effective_sample_size

    if np.ptp(x) == 0:
        return float(x.size)
    return float(effective_sample_size(x))


def _rhat(x: np.ndarray) -> float:
    from numpyro.diagnostics import gelman_rubin

    return float(gelman_rubin(x))


def scalar_diagnostics(x: np.ndarray) -> tuple[float, float, float]:
    """Rank-normalized split R-hat, bulk ESS and tail ESS of one (chain, draw) array
    (Vehtari et al. 2021, the definitions ArviZ uses)."""
    x = np.asarray(x, dtype=float)
    split = _split(x)
    ess_bulk = _ess(_z_scale(split))
    q05, q95 = np.quantile(x, [0.05, 0.95])
    ess_tail = min(_ess((split <= q05).astype(float)), _ess((split <= q95).astype(float)))
    folded = np.abs(split - np.median(split))
    rhat = max(_rhat(_z_scale(split)), _rhat(_z_scale(folded)))
    return rhat, ess_bulk, ess_tail


def posterior_diagnostics(posterior: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Max R-hat, min bulk and tail ESS over every scalar of the sampled sites."""
    rhats, bulks, tails = [], [], []
    for site in ("mu_a", "sigma_a", "z_a", "beta"):
        arr = np.asarray(posterior[site])
        flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
        for k in range(flat.shape[2]):
            r, b, t = scalar_diagnostics(flat[:, :, k])
            rhats.append(r)
            bulks.append(b)
            tails.append(t)
    return {"max_rhat": float(max(rhats)), "min_ess_bulk": float(min(bulks)), "min_ess_tail": float(min(tails))}


# ------------------------------------------------------------------- predictor (NumPy)
class BayesPredictor:
    """Posterior draws + standardization + group edges; predicts in NumPy."""

    def __init__(
        self,
        posterior: Mapping[str, np.ndarray],
        sample_stats: Mapping[str, np.ndarray],
        predictors: list[str],
        scaler_mean: np.ndarray,
        scaler_sd: np.ndarray,
        group_edges: np.ndarray,
        credible_mass: float,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_name = NAME
        self.predictors = list(predictors)
        self.input_features = self.predictors + [GROUP_FEATURE]
        self.posterior = {k: np.asarray(v) for k, v in posterior.items()}
        self.sample_stats = {k: np.asarray(v) for k, v in sample_stats.items()}
        self.scaler_mean = np.asarray(scaler_mean, dtype=float)
        self.scaler_sd = np.asarray(scaler_sd, dtype=float)
        self.group_edges = np.asarray(group_edges, dtype=float)
        self.credible_mass = float(credible_mass)
        self.info = dict(info or {})
        self._infos = feature_info(DATASET, self.input_features)
        chains, draws = self.posterior["beta"].shape[:2]
        # Flattened draws (all chains) in float64 for prediction.
        self._a = self.posterior["a"].reshape(chains * draws, -1).astype(float)  # (S, G)
        self._a_by_group = np.ascontiguousarray(self._a.T)  # (G, S): one row per group
        self._beta = np.ascontiguousarray(self.posterior["beta"].reshape(chains * draws, -1), dtype=float)  # (S, P)
        step = max(1, int(np.ceil(chains * draws / MAX_PROBABILITY_DRAWS)))
        self._thin = step
        alpha = (1.0 - self.credible_mass) / 2.0
        self._q = np.array([alpha, 1.0 - alpha])
        # A contribution beta_j * z_j scales the draws of beta_j by one number, so its mean
        # and equal-tailed quantiles are z_j times beta_j's (tails swap when z_j < 0): one
        # prediction then needs no (draws x predictors) work beyond the matrix product.
        self._beta_mean = self._beta.mean(axis=0)
        self._beta_q = np.quantile(self._beta, self._q, axis=0)  # (2, P)

    @property
    def n_draws(self) -> int:
        return self._beta.shape[0]

    def predict(self, values: Mapping[str, object]) -> CancerPrediction:
        checked = validate_features(values, self._infos)
        x = np.array([checked[f] for f in self.predictors])
        z = (x - self.scaler_mean) / self.scaler_sd
        group = int(assign_groups(np.array([checked[GROUP_FEATURE]]), self.group_edges)[0])
        eta = self._a_by_group[group] + self._beta @ z  # (S,) log-odds per draw
        p = sigmoid(eta)
        lower, upper = np.quantile(p, self._q)
        scaled = self._beta_q * z  # (2, P): quantiles of beta_j * z_j
        c_lo, c_hi = scaled.min(axis=0), scaled.max(axis=0)
        c_mean = self._beta_mean * z
        contributions = [
            Contribution(feature=f, mean=float(c_mean[j]), lower=float(c_lo[j]), upper=float(c_hi[j]))
            for j, f in enumerate(self.predictors)
        ]
        return CancerPrediction(
            model_name=NAME,
            probability=float(p.mean()),
            lower=float(lower),
            upper=float(upper),
            credible_mass=self.credible_mass,
            texture_group=group,
            contributions=contributions,
            probability_draws=p[:: self._thin],
            is_fallback=False,
            note=f"Posterior predictive mean over {self.n_draws} draws; texture group {group + 1} of {N_GROUPS}.",
        )

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Columns: probability, lower, upper, texture_group, is_fallback (0.0), error."""
        X, valid, errors = validate_frame(df, self._infos)
        n = len(X)
        if n:
            Z = (X[:, :-1] - self.scaler_mean) / self.scaler_sd
            groups = assign_groups(X[:, -1], self.group_edges)
            eta = self._a[:, groups] + self._beta @ Z.T  # (S, rows)
            p = sigmoid(eta)
            prob = p.mean(axis=0)
            lower, upper = np.quantile(p, self._q, axis=0)
        else:
            prob = lower = upper = np.zeros(0)
            groups = np.zeros(0, dtype=int)
        cols = {
            "probability": prob,
            "lower": lower,
            "upper": upper,
            "texture_group": groups.astype(float),
            "is_fallback": np.zeros(n),
        }
        return scatter_rows(df, valid, cols, errors)

    def save(self, directory: Path) -> dict[str, Path]:
        """posterior.npz (numeric arrays only) + meta.json (names, scaler, edges)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        npz = directory / "posterior.npz"
        arrays = {k: np.asarray(v) for k, v in self.posterior.items()}
        arrays.update({STAT_PREFIX + k: np.asarray(v) for k, v in self.sample_stats.items()})
        np.savez(npz, **arrays)
        meta = {
            "model_name": NAME,
            "predictors": self.predictors,
            "group_feature": GROUP_FEATURE,
            "input_features": self.input_features,
            "scaler_mean": self.scaler_mean.tolist(),
            "scaler_sd": self.scaler_sd.tolist(),
            "group_edges": self.group_edges.tolist(),
            "credible_mass": self.credible_mass,
            "info": self.info,
        }
        return {"posterior": npz, "meta": write_json(directory / "meta.json", meta)}

    @classmethod
    def load(cls, model_name: str, artifacts: Mapping[str, str | Path]) -> "BayesPredictor":
        meta = read_json(artifacts, "meta")
        arrays = load_npz(artifacts, "posterior")
        missing = [s for s in ("a", "beta") if s not in arrays]
        if missing:
            raise ArtifactsMissing(f"posterior.npz lacks {', '.join(missing)}.")
        posterior = {k: v for k, v in arrays.items() if not k.startswith(STAT_PREFIX)}
        stats = {k[len(STAT_PREFIX) :]: v for k, v in arrays.items() if k.startswith(STAT_PREFIX)}
        return cls(
            posterior,
            stats,
            meta["predictors"],
            np.array(meta["scaler_mean"]),
            np.array(meta["scaler_sd"]),
            np.array(meta["group_edges"]),
            meta["credible_mass"],
            meta.get("info"),
        )

    def to_inference_data(self) -> Any:
        """ArviZ InferenceData of the posterior and sampler stats (arviz imported lazily)."""
        import arviz as az

        rename = {"accept_prob": "acceptance_rate"}
        stats = {rename.get(k, k): v for k, v in self.sample_stats.items()}
        return az.from_dict(
            posterior=dict(self.posterior),
            sample_stats=stats,
            coords={"group": np.arange(self._a.shape[1]), "predictor": self.predictors},
            dims={"z_a": ["group"], "a": ["group"], "beta": ["predictor"]},
        )


# ------------------------------------------------------------------------ training
def fit(
    settings: Settings,
    predictors: list[str] | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> tuple[BayesPredictor, dict[str, float], dict[str, object]]:
    """Run NUTS on the training split; returns predictor, sampler metrics and params."""
    predictors = list(predictors or CANCER_PREDICTORS)
    env = setup_jax(settings)
    import jax
    from numpyro.infer import MCMC, NUTS

    data = load_dataset(DATASET)
    X_raw = data.X_train[predictors].to_numpy(dtype=float)
    mean, sd = X_raw.mean(axis=0), X_raw.std(axis=0)
    edges = group_edges(data.X_train[GROUP_FEATURE].to_numpy())
    groups = assign_groups(data.X_train[GROUP_FEATURE].to_numpy(), edges)
    # NumPy arrays of the final dtypes: jnp.asarray(..., dtype=) would compile a conversion.
    X = np.asarray((X_raw - mean) / sd, dtype=np.float32)
    y = np.asarray(data.y_train, dtype=np.int32)

    chains = settings.bayes_chains
    if env["devices"] < chains:
        log.warning(
            "JAX sees %d host devices for %d chains: chains will run one after another. Import core "
            "before anything imports JAX (it sets XLA_FLAGS=--xla_force_host_platform_device_count).",
            env["devices"], chains,
        )
    report(progress, 0.05, f"compiling and sampling {chains} chains x {settings.bayes_warmup}+{settings.bayes_samples}")
    mcmc = MCMC(
        NUTS(model, target_accept_prob=TARGET_ACCEPT, dense_mass=DENSE_MASS),
        num_warmup=settings.bayes_warmup,
        num_samples=settings.bayes_samples,
        num_chains=chains,
        chain_method="parallel",
        progress_bar=False,
    )
    spans: list[tuple[float, float]] = []
    _span_sinks[threading.get_ident()] = spans
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        mcmc.run(
            jax.random.PRNGKey(seed),
            X,
            groups,
            N_GROUPS,
            y=y,
            extra_fields=("diverging", "energy", "num_steps", "accept_prob", "potential_energy", "adapt_state.step_size"),
        )
        samples = mcmc.get_samples(group_by_chain=True)
        jax.block_until_ready(samples)
    except Exception as exc:  # noqa: BLE001 - any sampler failure is a failed training
        raise TrainingFailed(f"NUTS failed: {type(exc).__name__}: {exc}") from exc
    finally:
        _span_sinks.pop(threading.get_ident(), None)
    total = time.perf_counter() - start
    # CPU seconds of every thread of the process (other work in it counts too); unlike wall
    # time, not stretched by waiting for a CPU on a busy machine.
    total_cpu = time.process_time() - start_cpu
    compile_s = min(_union_seconds(spans), total)
    sampling_s = total - compile_s

    report(progress, 0.8, "diagnostics")
    posterior = {k: np.asarray(v) for k, v in samples.items() if k in POSTERIOR_SITES}
    extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
    num_steps = extra["num_steps"].astype(np.int64)
    sample_stats = {
        "diverging": extra["diverging"].astype(bool),
        "energy": extra["energy"],
        "lp": -extra["potential_energy"],
        "accept_prob": extra["accept_prob"],
        "n_steps": num_steps,
        "tree_depth": np.floor(np.log2(np.maximum(num_steps, 1))).astype(np.int64) + 1,
        "step_size": extra["adapt_state.step_size"],
    }
    diag = posterior_diagnostics(posterior)
    metrics = {
        **diag,
        "divergences": float(sample_stats["diverging"].sum()),
        "compile_s": compile_s,
        "sampling_s": sampling_s,
        "fit_s": total,
        "fit_cpu_s": total_cpu,
        "ess_bulk_per_s": diag["min_ess_bulk"] / max(sampling_s, 1e-9),
    }
    params: dict[str, object] = {
        "dataset": DATASET,
        "predictors": ",".join(predictors),
        "group_feature": GROUP_FEATURE,
        "n_groups": N_GROUPS,
        "chains": chains,
        "warmup": settings.bayes_warmup,
        "samples": settings.bayes_samples,
        "target_accept_prob": TARGET_ACCEPT,
        "chain_method": "parallel",
        "host_devices": env["devices"],
        "parameterization": "non-centered",
        "credible_mass": settings.credible_mass,
        "seed": seed,
    }
    info = {k: params[k] for k in ("chains", "warmup", "samples", "target_accept_prob", "seed")}
    predictor = BayesPredictor(posterior, sample_stats, predictors, mean, sd, edges, settings.credible_mass, info)
    return predictor, metrics, params


def train(settings: Settings, progress: Progress | None = None) -> TrainedModel:
    predictor, metrics, params = fit(settings, progress=progress)
    report(progress, 0.9, "scoring the held-out split")
    data = load_dataset(DATASET)
    p_test = predictor.predict_frame(data.X_test)["probability"].to_numpy()
    scores, extra_artifacts = held_out_scores(data.y_test, p_test)
    metrics.update(scores)
    metrics["n_train"] = float(len(data.y_train))
    report(progress, 1.0, "done")
    return TrainedModel(
        name=NAME,
        predictor=predictor,
        metrics=metrics,
        params=params,
        gate=bayes_gate(metrics),
        extra_artifacts=extra_artifacts,
    )


def bayes_gate(metrics: Mapping[str, float]) -> GateResult:
    """max R-hat <= 1.01, 0 divergences, min bulk ESS >= 400, held-out AUC/Brier floors."""
    reasons = []

    def value(key: str) -> float:
        v = metrics.get(key)
        return float(v) if v is not None and np.isfinite(v) else float("nan")

    if not value("max_rhat") <= GATE_MAX_RHAT:
        reasons.append(f"max R-hat {value('max_rhat'):.4f} > {GATE_MAX_RHAT}")
    if not value("divergences") <= GATE_MAX_DIVERGENCES:
        reasons.append(f"{value('divergences'):.0f} divergent transitions (allowed {GATE_MAX_DIVERGENCES})")
    if not value("min_ess_bulk") >= GATE_MIN_ESS_BULK:
        reasons.append(f"min bulk ESS {value('min_ess_bulk'):.0f} < {GATE_MIN_ESS_BULK:.0f}")
    if not value("roc_auc") >= GATE_MIN_AUC:
        reasons.append(f"held-out ROC AUC {value('roc_auc'):.4f} < {GATE_MIN_AUC}")
    if not value("brier") <= GATE_MAX_BRIER:
        reasons.append(f"held-out Brier {value('brier'):.4f} > {GATE_MAX_BRIER}")
    return GateResult(passed=not reasons, reasons=reasons)
