"""The whole posterior of Ridge's alpha: a hierarchical twin against quadrature, and find_MAP's collapse.

Claim
    On diabetes and on a simulated data set drawn from the twin's own prior (``sigma = tau = 1``, so the true
    ``alpha`` is 1), a hierarchical twin with priors on ``tau`` and ``sigma`` gives the whole posterior of
    ``alpha = sigma**2 / tau**2`` (NUTS's 5%, 50% and 95% quantiles of ``alpha`` and its coefficients'
    posterior means checked against quadrature) and coefficients averaged over it, where a point choice of
    ``alpha`` (``choosing_lambda``) reads Ridge at one value. ``find_MAP`` on the hierarchical twin shows what
    a point estimate of a scale does: the centered joint density grows without bound as ``tau -> 0``.

Hierarchical twin
    ``sigma ~ HalfNormal(sd(y))``, ``tau ~ HalfCauchy(sd(y) / rms sd(x_j))`` (see
    :func:`models.evidence.default_hyperprior_scales`), flat intercept. Centered: with n >> p the data pin
    ``beta`` down and the centered form samples better (published run, 2 x 2,000 draws: bulk ESS 4,800-5,500
    and no divergences, where the non-centered one gave 490-690 and 7-10); both are in ``hierarchical.csv``.

Writes ``results/hierarchical_alpha/``
    ``hierarchical.csv`` NUTS vs quadrature for the hierarchical twin, per parametrization
    ``coefficients.csv`` one row per (dataset, feature): the posterior mean and 90% interval
    ``find_map.csv``     find_MAP on the hierarchical twin from several starting points
    ``alpha_posterior.png``, ``map_collapse.png``
    ``posterior_<dataset>.nc`` the hierarchical posterior (git-ignored); ``metadata.json``

Run
    python -m experiments.hierarchical_alpha            # published settings
    python -m experiments.hierarchical_alpha --fast     # smoke run (simulated data only)
"""

import sys
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments import _cli
from experiments.choosing_lambda import load
from models import diagnostics
from models.diagnostics import convergence
from models.evidence import (
    Evidence,
    default_hyperprior_scales,
    hierarchical_find_map,
    hierarchical_linear_regression,
    hyperposterior,
    nuts_against_quadrature,
    tau_profile,
)
from models.fit import compile_nuts, posterior_coefficients, sample_nuts
from models.measure import Stopwatch

NAME = "hierarchical_alpha"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant. ``loo_seeds_skipped`` is not a setting to
    tune but ``len(choosing_lambda.Config().loo_alphas)``, 3 in the fast run (see :func:`nuts_streams`)."""

    seed: int = 20261126
    datasets: tuple[str, ...] = ("diabetes", "well_conditioned")
    draws: int = 2000
    tune: int = 1000
    chains: int = 2
    map_start_factors: tuple[float, ...] = (1.0, 1e-3, 1e3)
    compare_noncentered: bool = True
    loo_seeds_skipped: int = 15


FAST = Config(
    datasets=("well_conditioned",),
    draws=300,
    tune=300,
    map_start_factors=(1.0,),
    compare_noncentered=False,
    loo_seeds_skipped=3,
)


def nuts_streams(config: Config) -> list[np.random.Generator]:
    """Each data set's generator of NUTS seeds, as when this experiment was part of ``choosing_lambda``.

    The config seed spawns two streams (the first draws the simulated data, through
    :func:`experiments.choosing_lambda.load`); the second spawns one child per data set, whose first
    ``config.loo_seeds_skipped`` seeds went to choosing_lambda's PSIS-LOO fits. They are drawn here the same
    way and dropped, so the published draws are the ones committed before the split.
    """
    streams = np.random.default_rng(config.seed).spawn(2)[1].spawn(len(config.datasets))
    for stream in streams:
        stream.integers(2**31, size=config.loo_seeds_skipped)
    return streams


def hierarchical_fit(compiled, ds, config: Config, seed, *, noncentered: bool):
    """NUTS on the hierarchical twin vs the quadrature answer: diagnostics, z-scores, alpha quantiles."""
    scales = default_hyperprior_scales(ds.X, ds.y)._asdict()
    idata = sample_nuts(
        compiled,
        seed=int(seed),
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
        X=ds.X,
        y_observed=ds.y,
        **{name: np.asarray(value) for name, value in scales.items()},
    )
    idata["posterior"] = (
        idata["posterior"].to_dataset().assign_coords(feature=list(ds.feature_names))
    )
    exact = hyperposterior(ds.X, ds.y)
    params = ["intercept", "beta", "sigma", "tau"] + (["beta_raw"] if noncentered else [])
    row = {"dataset": ds.name, "parametrization": "noncentered" if noncentered else "centered"}
    row |= convergence(idata, var_names=params)._asdict() | nuts_against_quadrature(idata, exact)
    return idata, exact, row


def coefficients_table(ds, idata) -> pd.DataFrame:
    """The posterior mean of every coefficient, intercept first, with its 90% interval."""
    draws = posterior_coefficients(idata).reshape(-1, len(ds.feature_names) + 1)
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    return pd.DataFrame(
        {"dataset": ds.name, "feature": ("intercept", *ds.feature_names)}
        | {"coef": draws.mean(axis=0), "q05": low, "q95": high}
    )


class DatasetResult(NamedTuple):
    hierarchical: pd.DataFrame
    coefficients: pd.DataFrame
    find_map: pd.DataFrame
    idata: object
    exact: object
    profile: pd.DataFrame
    evidence_max: float
    true_coef: np.ndarray | None


TABLES = {
    "hierarchical": ["dataset", "parametrization"],
    "coefficients": ["dataset", "feature"],
    "find_map": ["dataset", "parametrization", "start_tau"],
}
"""The tables of :class:`DatasetResult`, each written as ``<name>.csv`` with this index."""


class Result(NamedTuple):
    per_dataset: dict
    seconds: dict


def run(config: Config) -> Result:
    """Compile each parametrization once (shared across data sets); on each data set, NUTS against
    quadrature, ``find_MAP`` from each start, and the profiled joint densities along ``tau``."""
    data_rng = np.random.default_rng(config.seed).spawn(2)[0]
    data = [load(name, data_rng) for name in config.datasets]
    clock, seconds = Stopwatch(), dict.fromkeys(["compile", "hierarchical_nuts", "find_map"], 0.0)
    parametrizations = (False, True) if config.compare_noncentered else (False,)
    compiled = [
        compile_nuts(hierarchical_linear_regression(data[0].X, data[0].y, noncentered=noncentered))
        for noncentered in parametrizations
    ]
    seconds["compile"] = clock.lap()
    per_dataset = {}
    for ds, stream in zip(data, nuts_streams(config), strict=True):
        _cli.progress(f"NUTS and find_MAP on the hierarchical twin of {ds.name}")
        fits = [
            hierarchical_fit(model, ds, config, stream.integers(2**31), noncentered=noncentered)
            for model, noncentered in zip(compiled, parametrizations, strict=True)
        ]
        idata, exact, _ = fits[0]
        tau_median = float(np.median(idata["posterior"]["tau"].values))
        log_tau, centered, noncentered = tau_profile(ds.X, ds.y, tau_median)
        seconds["hierarchical_nuts"] += clock.lap()
        find_map = hierarchical_find_map(ds.X, ds.y, config.map_start_factors)
        find_map.insert(0, "dataset", ds.name)
        seconds["find_map"] += clock.lap()
        per_dataset[ds.name] = DatasetResult(
            pd.DataFrame([row for *_, row in fits]),
            coefficients_table(ds, idata),
            find_map,
            idata,
            exact,
            pd.DataFrame({"log_tau": log_tau, "centered": centered, "noncentered": noncentered}),
            Evidence(ds.X, ds.y).maximize("profiled"),
            ds.true_coef,
        )
    return Result(per_dataset, seconds)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Per data set: the posterior of alpha, find_MAP's tau, NUTS's health, and the quadrature checks."""
    metrics, targets = {}, {}
    for name, r in result.per_dataset.items():
        centered = r.hierarchical.iloc[0]
        alpha_z = float(max(centered.alpha_q05_z, centered.alpha_q50_z, centered.alpha_q95_z))
        default_map = r.find_map[(r.find_map.parametrization == "centered")].iloc[0]
        noncentered_map = r.find_map[(r.find_map.parametrization == "noncentered")].iloc[0]
        m = {
            "hierarchical_alpha_median": centered.alpha_q50_nuts,
            "hierarchical_alpha_q05": centered.alpha_q05_nuts,
            "hierarchical_alpha_q95": centered.alpha_q95_nuts,
            "hierarchical_map_tau": float(default_map.tau),
            "hierarchical_map_alpha": float(default_map.alpha),
            "hierarchical_map_tau_noncentered": float(noncentered_map.tau),
            "hierarchical_tau_median": float(np.median(r.idata["posterior"]["tau"].values)),
            "hierarchical_rhat_max": float(centered.rhat_max),
            "hierarchical_ess_bulk_min": float(centered.ess_bulk_min),
            "hierarchical_divergences": int(centered.divergences),
        }
        metrics |= {f"{name}_{key}": value for key, value in m.items()}
        targets |= {
            f"{name}_hierarchical_rhat": (m["hierarchical_rhat_max"], "<=", 1.01),
            f"{name}_hierarchical_ess_bulk": (m["hierarchical_ess_bulk_min"], ">=", 400),
            f"{name}_hierarchical_divergences": (m["hierarchical_divergences"], "<=", 0),
            # 4 MCSE: a false alarm about once in 15,000 per quantity.
            f"{name}_hierarchical_alpha_quantiles_vs_quadrature_z": (alpha_z, "<=", 4.0),
            f"{name}_hierarchical_coef_mean_vs_quadrature_z": (centered.coef_mean_z_max, "<=", 4.0),
        }
    return metrics, diagnostics.checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics (one clause per data set)."""
    suffix = "_hierarchical_alpha_median"
    names = [key.removesuffix(suffix) for key in metrics if key.endswith(suffix)]

    def clauses(template: str) -> str:
        """``template`` filled in with each data set's metrics (named without the data set's prefix)."""
        return "; ".join(
            template.format(
                name=name,
                **{k.removeprefix(f"{name}_hierarchical_"): v for k, v in metrics.items()},
            )
            for name in names
        )

    truth = "; well_conditioned was drawn with alpha = 1" if "well_conditioned" in names else ""
    return [
        "The hierarchical twin's posterior median of alpha is "
        + clauses("{alpha_median:.3g} on {name}, 90% interval {alpha_q05:.3g} to {alpha_q95:.3g}")
        + f"{truth}.",
        "NUTS on the centered twin: R-hat at most "
        + clauses(
            "{rhat_max:.3f}, bulk ESS at least {ess_bulk_min:.0f} and {divergences} divergences "
            "on {name}"
        )
        + ".",
        "find_MAP from PyMC's default start stopped at tau = "
        + clauses("{map_tau:.3g} on {name} (posterior median {tau_median:.3g})")
        + ": the centered joint density grows without bound as tau -> 0 (map_collapse.png), so "
        "find_MAP either collapses there or stops at a local maximum, depending on where it starts.",
    ]


def plot_alpha_posterior(result: Result):
    """Posterior density of log10(alpha) (NUTS histogram, quadrature curve) and the evidence maximum."""
    items = list(result.per_dataset.items())
    fig, axs = plt.subplots(1, len(items), figsize=(6.5 * len(items), 4.8), squeeze=False)
    for ax, (name, r) in zip(axs[0], items, strict=True):
        draws = np.log10(r.idata["posterior"]["ridge_alpha"].values.ravel())
        ax.hist(draws, bins=60, density=True, color="0.8", label="NUTS draws")
        x = r.exact.log_alpha / np.log(10.0)
        ax.plot(x, r.exact.alpha_density * np.log(10.0), color="black", label="quadrature")
        q05, q95 = np.log10(np.quantile(r.idata["posterior"]["ridge_alpha"].values, [0.05, 0.95]))
        ax.axvspan(q05, q95, color="0.5", alpha=0.12, label="90% interval")
        ax.axvline(
            np.log10(r.evidence_max),
            color="tab:green",
            linestyle="--",
            label=f"evidence maximum (BayesianRidge's point): {r.evidence_max:.3g}",
        )
        if r.true_coef is not None:
            ax.axvline(0.0, color="purple", linewidth=1, label="true alpha: 1")
        ax.set_xlim(q05 - 1.5, q95 + 1.5)
        ax.set(xlabel="log10 Ridge alpha", ylabel="posterior density of log10 alpha", title=name)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Hierarchical posterior of alpha = sigma^2 / tau^2: NUTS against quadrature")
    return fig


def plot_map_collapse(result: Result):
    """find_MAP vs the posterior along tau: profiled joint densities and the marginal posterior of tau."""
    items = list(result.per_dataset.items())
    fig, axs = plt.subplots(1, len(items), figsize=(6.5 * len(items), 5), squeeze=False)
    for ax, (name, r) in zip(axs[0], items, strict=True):
        ln10 = np.log(10.0)
        tau_draws = r.idata["posterior"]["tau"].values.ravel()
        median = np.log(np.median(tau_draws))
        x = r.profile.log_tau / ln10
        for column, label, color in [
            ("centered", "joint density, centered (what find_MAP climbs)", "tab:red"),
            ("noncentered", "joint density, non-centered", "tab:green"),
        ]:
            y = r.profile[column] - np.interp(median, r.profile.log_tau, r.profile[column])
            ax.plot(x, y, color=color, label=f"{label}, max over the rest")
        density = np.log(np.maximum(r.exact.tau_density, 1e-300))
        ax.plot(
            r.exact.log_tau / ln10,
            density - np.interp(median, r.exact.log_tau, density),
            color="black",
            label="marginal posterior of log tau (quadrature)",
        )
        q05, q95 = np.log10(np.quantile(tau_draws, [0.05, 0.95]))
        ax.axvspan(q05, q95, color="0.5", alpha=0.15, label="posterior 90% interval (NUTS)")
        for _, row in r.find_map.iterrows():
            centered = row.parametrization == "centered"
            color, height = ("tab:red", 50.0) if centered else ("tab:green", 42.0)
            ax.plot(np.log10(row.tau), height, "v", markersize=9, color=color)
        ax.plot(
            [], [], "v", color="0.3", label="where find_MAP stopped, one per start (colour: model)"
        )
        ax.set_xlim(x.min(), x.max())
        ax.set(
            ylim=(-40, 60),
            xlabel="log10 tau (prior SD of the coefficients)",
            ylabel="log density relative to its value at the posterior median",
            title=name,
        )
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(
        "The centered joint density grows without bound as tau -> 0; the posterior does not"
    )
    return fig


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    per_dataset = result.per_dataset.values()
    return _cli.Artifacts(
        tables={
            f"{table}.csv": pd.concat(
                [getattr(r, table) for r in per_dataset], ignore_index=True
            ).set_index(index)
            for table, index in TABLES.items()
        },
        figures={
            "alpha_posterior.png": plot_alpha_posterior(result),
            "map_collapse.png": plot_map_collapse(result),
        },
        posteriors={f"posterior_{name}.nc": r.idata for name, r in result.per_dataset.items()},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
