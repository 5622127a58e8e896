"""KernelRidge is a Gaussian process: its curve, the GP's band, and full Bayes over the kernel's settings.

Claim
    On a simulated 1-D problem and on diabetes (standardized features and response, 200 training rows, 242
    held out), ``KernelRidge(alpha, kernel="rbf", gamma)`` is the posterior mean of the Gaussian process with
    kernel ``c exp(-gamma |x - x'|**2)`` and noise variance ``alpha c`` (:func:`models.kernel.kernel_twin`):
    the twin's mean equals ``KernelRidge.predict`` and its SD equals ``GaussianProcessRegressor(optimizer=None)``
    to 1e-8. KernelRidge's settings are read off a ``GaussianProcessRegressor`` fitted by type-II maximum
    likelihood (``ConstantKernel * RBF + WhiteKernel``). Full Bayes over the same three numbers (NUTS on the
    exact marginal likelihood) shows how far that point is from the posterior, and what integrating the
    hyperparameters does to the 90% band; on diabetes both bands are scored on the held-out rows.

Hyperpriors (:func:`models.kernel.rbf_marginal_regression`, which says why)
    ``length_scale ~ LogNormal(log(median distance between training rows), 1)``; the signal SD ``eta`` and
    the noise SD ``sigma`` ``~ HalfNormal(sd(y))``. NUTS (nutpie) samples them on the exact marginal
    likelihood, an ``n x n`` Cholesky per gradient: on the 200 diabetes training rows a chain (1,000 + 1,000
    draws) took 12 CPU seconds; the other 242 rows are held out to score the bands.

Writes ``results/kernel_gp/``
    ``equivalence.csv``     one row per (problem, comparison): relative error of the twin against scikit-learn
    ``hyperparameters.csv`` one row per (problem, parameter): type-II ML point, posterior mean, 5/50/95% quantiles,
                            whether the ML point is inside the 90% interval, R-hat, bulk ESS
    ``coverage.csv``        one row per (problem, band): held-out coverage of the 90% predictive interval, its
                            binomial SE, mean width; plug-in (ML) vs integrated hyperparameters
    ``one_d.png``           KernelRidge's curve inside the GP's 90% band, the data, the true function
    ``hyperparameters.png`` posterior of length scale, eta and sigma against the type-II ML point
    ``bands.png``           1-D: the 90% band of f, plug-in vs integrated hyperparameters, and their width ratio
    ``posterior_one_d.nc``, ``posterior_diabetes.nc`` the hyperparameter posteriors (git-ignored)
    ``metadata.json``       config, seed, versions, seconds, checks, metrics

Run
    python -m experiments.kernel_gp            # published settings (2.5-3 minutes on 2 shared cores)
    python -m experiments.kernel_gp --fast     # smoke run
"""

import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
from sklearn.kernel_ridge import KernelRidge

from experiments import _cli
from models import data as datasets
from models import diagnostics
from models.diagnostics import convergence, relative_error
from models.fit import compile_nuts, sample_nuts_retrying
from models.kernel import (
    kernel_twin,
    rbf_integrated_band,
    rbf_marginal_data,
    rbf_marginal_regression,
    rbf_posterior,
    rbf_type_two_ml,
)

NAME = "kernel_gp"
PARAMETERS = ("length_scale", "eta", "sigma")
Z90 = scipy.stats.norm.isf(0.05)


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261130
    one_d_rows: int = 50
    one_d_noise: float = 0.3
    one_d_fresh_rows: int = 2000
    diabetes_train_rows: int = 200
    ml_restarts: int = 5
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    predictive_draws: int = 400


FAST = Config(
    one_d_rows=30, diabetes_train_rows=60, ml_restarts=1, draws=300, tune=300, predictive_draws=60
)


class Problem(NamedTuple):
    """Training rows ``(X, y)`` and new rows ``(X_new, y_new)`` to predict and score."""

    name: str
    X: np.ndarray
    y: np.ndarray
    X_new: np.ndarray
    y_new: np.ndarray


def problems(config: Config, rng: np.random.Generator) -> list[Problem]:
    """1-D: ``y = sin(2 x) + x / 2 + N(0, noise**2)``, ``x ~ U(-3, 3)``, scored on fresh draws (sorted by x, the
    figures' grid); diabetes: features and response standardized with the training rows' moments, the rest held
    out."""
    x = rng.uniform(-3, 3, config.one_d_rows + config.one_d_fresh_rows)[:, None]
    y = np.sin(2 * x[:, 0]) + x[:, 0] / 2 + config.one_d_noise * rng.standard_normal(len(x))
    m = config.one_d_rows
    fresh = m + np.argsort(x[m:, 0])  # sorted by x: the figures draw curves through them
    one_d = Problem("one_d", x[:m], y[:m], x[fresh], y[fresh])
    ds = datasets.diabetes()
    rows = rng.permutation(len(ds.y))
    train, test = rows[: config.diabetes_train_rows], rows[config.diabetes_train_rows :]
    X = (ds.X - ds.X[train].mean(axis=0)) / ds.X[train].std(axis=0)
    y = (ds.y - ds.y[train].mean()) / ds.y[train].std()
    return [one_d, Problem("diabetes", X[train], y[train], X[test], y[test])]


def equivalence(problem: Problem, ml: dict) -> tuple[dict, dict]:
    """KernelRidge at the ML point, its twin, and scikit-learn's GP: the relative errors, and the twin's bands."""
    signal, noise = ml["eta"] ** 2, ml["sigma"] ** 2
    ridge = KernelRidge(alpha=noise / signal, kernel="rbf", gamma=0.5 / ml["length_scale"] ** 2)
    ridge.fit(problem.X, problem.y)
    twin = kernel_twin(ridge, problem.X, problem.y, noise_sigma=ml["sigma"])
    mean, sd = twin.predict(problem.X_new, return_std=True)
    _, observation_sd = twin.predict(problem.X_new, return_std=True, observation=True)
    point = {name: ml[name] for name in PARAMETERS}  # the regressor's own SD is checked apart
    gp_mean, gp_sd = rbf_posterior(problem.X, problem.y, problem.X_new, **point)
    errors = {
        "map_vs_kernel_ridge": twin.checks["map_vs_estimator"]["value"],
        "mean_vs_kernel_ridge": relative_error(mean, ridge.predict(problem.X_new)),
        "mean_vs_gaussian_process": relative_error(mean, gp_mean),
        "sd_vs_gaussian_process": relative_error(sd, gp_sd),
        "observation_sd_vs_fitted_gp": relative_error(observation_sd, ml["observation_sd"]),
    }
    return errors, {"mean": mean, "sd": sd, "observation_sd": observation_sd, "ridge": ridge}


def hyperparameter_rows(problem: Problem, ml: dict, idata, retried: bool) -> list[dict]:
    """Per hyperparameter: the ML point against the posterior's mean and quantiles, and convergence."""
    rows = []
    for name in PARAMETERS:
        draws = idata["posterior"][name].values
        q05, median, q95 = np.quantile(draws, [0.05, 0.5, 0.95])
        health = convergence(idata, var_names=[name])
        inside = bool(q05 <= ml[name] <= q95)
        rows.append(
            {"problem": problem.name, "parameter": name, "ml": ml[name], "mean": draws.mean()}
            | {"q05": q05, "median": median, "q95": q95, "ml_inside_90": inside}
            | health._asdict()
            | {"retried": retried}
        )
    return rows


def coverage_rows(problem: Problem, plug_in: dict, integrated: dict) -> list[dict]:
    """How many held-out ``y`` each 90% predictive interval covers; its distance from 0.9 in binomial SEs
    (held-out rows are independent given the training rows)."""
    n, se = len(problem.y_new), np.sqrt(0.9 * 0.1 / len(problem.y_new))
    half = Z90 * plug_in["observation_sd"]
    plug_in_band = (plug_in["mean"] - half, plug_in["mean"] + half)
    rows = []
    for band, (lo, hi) in [("plug_in", plug_in_band), ("integrated", integrated["y"])]:
        coverage = np.mean((lo <= problem.y_new) & (problem.y_new <= hi))
        row = {"problem": problem.name, "band": band, "coverage": coverage, "n": n}
        z = abs(coverage - 0.9) / se
        rows.append(row | {"binomial_se": se, "z": z, "mean_width": np.mean(hi - lo)})
    return rows


class Result(NamedTuple):
    problems: list
    equivalence: pd.DataFrame
    hyperparameters: pd.DataFrame
    coverage: pd.DataFrame
    bands: dict
    posteriors: dict
    seconds: dict


def run(config: Config) -> Result:
    """Type-II ML, the twin's equivalence checks, NUTS over the hyperparameters and both bands, per problem.
    One compiled model serves both problems (their data are ``pm.Data``)."""
    data_rng, seed_rng = np.random.default_rng(config.seed).spawn(2)
    cases = problems(config, data_rng)
    seeds = [int(s) for s in seed_rng.integers(2**31, size=2 * len(cases))]
    start = time.perf_counter()
    compiled = compile_nuts(rbf_marginal_regression(cases[0].X, cases[0].y))
    seconds = {"compile": time.perf_counter() - start}
    equivalences, hyperparameters, coverage, bands, posteriors = [], [], [], {}, {}
    for i, problem in enumerate(cases):
        _cli.progress(f"{problem.name}: type-II ML, the twin, NUTS over the hyperparameters")
        gpr, ml = rbf_type_two_ml(
            problem.X, problem.y, restarts=config.ml_restarts, seed=seeds[2 * i]
        )
        ml["observation_sd"] = gpr.predict(problem.X_new, return_std=True)[1]
        errors, plug_in = equivalence(problem, ml)
        for comparison, error in errors.items():
            equivalences.append(
                {"problem": problem.name, "comparison": comparison, "relative_error": error}
            )
        start = time.perf_counter()
        sampling = {"draws": config.draws, "tune": config.tune, "chains": config.chains}
        idata, note = sample_nuts_retrying(
            compiled, seed=seeds[2 * i + 1], **sampling, **rbf_marginal_data(problem.X, problem.y)
        )
        seconds[f"nuts_{problem.name}"] = time.perf_counter() - start
        posteriors[problem.name] = idata
        hyperparameters += hyperparameter_rows(problem, ml, idata, retried=bool(note))
        integrated = rbf_integrated_band(
            problem.X, problem.y, problem.X_new, idata, count=config.predictive_draws
        )
        bands[problem.name] = {"plug_in": plug_in, "integrated": integrated}
        coverage += coverage_rows(problem, plug_in, integrated)
    tables = (pd.DataFrame(rows) for rows in (equivalences, hyperparameters, coverage))
    return Result(cases, *tables, bands, posteriors, seconds)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Headline metrics and the checks: equivalence to 1e-8, NUTS health, held-out coverage in binomial SEs."""
    eq, hyper, cover = result.equivalence, result.hyperparameters, result.coverage
    metrics = {"max_rel_err_twin_vs_sklearn": eq.relative_error.max()}
    for (problem, name), row in hyper.set_index(["problem", "parameter"]).iterrows():
        metrics |= {f"{problem}_{name}_{k}": row[k] for k in ("ml", "median", "q05", "q95")}
    metrics["ml_inside_90_count"] = int(hyper.ml_inside_90.sum())
    metrics["n_hyperparameters"] = len(hyper)
    for (problem, band), row in cover.set_index(["problem", "band"]).iterrows():
        metrics |= {
            f"{problem}_coverage_{band}": row.coverage,
            f"{problem}_width_{band}": row.mean_width,
        }
        metrics[f"{problem}_coverage_{band}_z"] = row.z
    f_bands = result.bands["one_d"]
    plug_width = 2 * Z90 * f_bands["plug_in"]["sd"]
    integrated_width = np.subtract(*f_bands["integrated"]["f"][::-1])
    metrics["one_d_f_band_width_ratio"] = float(np.mean(integrated_width / plug_width))
    # One row per hyperparameter: its rhat/ESS; divergences and retried are per fit, so once per problem.
    worst = {"rhat_max": "max", "ess_bulk_min": "min", "divergences": "first", "retried": "first"}
    fits = hyper.groupby("problem").agg(worst)
    health, targets = diagnostics.nuts_health(fits)
    metrics |= health
    # A Cholesky solve against scikit-learn's Cholesky solves of the same matrices: exact to rounding.
    error = metrics["max_rel_err_twin_vs_sklearn"]
    targets["twin_equals_kernel_ridge_and_gp"] = (error, "<=", 1e-8)
    for band in ("plug_in", "integrated"):
        # Binomial coverage: 3 SEs fail a calibrated band by chance 0.3% of the time. Only diabetes is
        # checked: the 1-D coverage is of one simulated data set, reported.
        z = metrics[f"diabetes_coverage_{band}_z"]
        targets[f"diabetes_coverage_{band}_within_3_se"] = (z, "<=", 3.0)
    return metrics, diagnostics.checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    m = metrics
    return [
        f"At the type-II ML hyperparameters, the twin's posterior mean equals KernelRidge's prediction and its SD "
        f"equals GaussianProcessRegressor's, on both problems, to {m['max_rel_err_twin_vs_sklearn']:.1e}: "
        "KernelRidge is the GP's posterior mean, its alpha the noise-to-signal variance ratio.",
        f"The ML point lies inside the posterior's 90% interval for {m['ml_inside_90_count']} of "
        f"{m['n_hyperparameters']} hyperparameters; on diabetes the length scale's 90% interval is "
        f"[{m['diabetes_length_scale_q05']:.2g}, {m['diabetes_length_scale_q95']:.2g}] around the ML "
        f"{m['diabetes_length_scale_ml']:.2g} (1-D: [{m['one_d_length_scale_q05']:.2g}, "
        f"{m['one_d_length_scale_q95']:.2g}] around {m['one_d_length_scale_ml']:.2g}).",
        f"Integrating the hyperparameters widens the 1-D band of f by {m['one_d_f_band_width_ratio'] - 1:.0%} on "
        f"average; on diabetes the held-out coverage of the 90% predictive interval is "
        f"{m['diabetes_coverage_plug_in']:.3f} plug-in and {m['diabetes_coverage_integrated']:.3f} integrated.",
        f"NUTS: R-hat at most {m['max_nuts_rhat']:.3f}, smallest bulk ESS {m['min_nuts_ess_bulk']:.0f}, "
        f"{m['nuts_divergences']} divergent transitions ({m['nuts_retried_fits']} fits sampled again at a "
        "smaller step).",
    ]


def plot_one_d(result: Result):
    """KernelRidge's curve inside the GP's 90% band (plug-in ML hyperparameters), the data, the truth."""
    problem = result.problems[0]
    plug = result.bands["one_d"]["plug_in"]
    x = problem.X_new[:, 0]
    fig, ax = plt.subplots(figsize=(9, 5))
    for sd, shade, label in [(plug["observation_sd"], 0.12, "a new y"), (plug["sd"], 0.3, "f")]:
        lo, hi = plug["mean"] - Z90 * sd, plug["mean"] + Z90 * sd
        ax.fill_between(
            x, lo, hi, color="tab:blue", alpha=shade, lw=0, label=f"90% band of {label}"
        )
    ax.plot(x, plug["ridge"].predict(problem.X_new), color="black", label="KernelRidge.predict")
    ax.plot(x, np.sin(2 * x) + x / 2, "--", color="tab:red", linewidth=1, label="true f")
    ax.plot(problem.X[:, 0], problem.y, "o", color="black", markersize=4, label="training data")
    ax.set(xlabel="x", ylabel="y", title="KernelRidge (ML settings) = the GP's posterior mean")
    ax.legend(fontsize=8)
    return fig


def plot_hyperparameters(result: Result):
    """Posterior histograms of each hyperparameter, its 90% interval and the type-II ML point."""
    names = [p.name for p in result.problems]
    fig, axs = plt.subplots(
        len(names), len(PARAMETERS), figsize=(12, 3.3 * len(names)), squeeze=False
    )
    hyper = result.hyperparameters.set_index(["problem", "parameter"])
    for i, problem in enumerate(names):
        for j, name in enumerate(PARAMETERS):
            ax, row = axs[i, j], hyper.loc[(problem, name)]
            draws = result.posteriors[problem]["posterior"][name].values.ravel()
            ax.hist(draws, bins=50, color="tab:gray")
            ax.axvspan(row.q05, row.q95, color="tab:blue", alpha=0.15, label="90% interval")
            ax.axvline(row.ml, color="tab:red", label="type-II ML")
            ax.set(title=f"{problem}: {name}", yticks=[])
    axs[0, 0].legend(fontsize=8)
    fig.suptitle("Full Bayes (NUTS) over the kernel's settings vs the type-II ML point")
    fig.tight_layout()
    return fig


def plot_bands(result: Result):
    """1-D: the 90% band of f with plug-in and integrated hyperparameters, and the ratio of their widths."""
    x = result.problems[0].X_new[:, 0]
    plug, integrated = result.bands["one_d"]["plug_in"], result.bands["one_d"]["integrated"]["f"]
    fig, axs = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, height_ratios=[3, 1.3])
    axs[0].fill_between(
        x, *integrated, color="tab:orange", alpha=0.3, linewidth=0, label="integrated (NUTS)"
    )
    axs[0].plot(x, plug["mean"] - Z90 * plug["sd"], color="tab:blue", label="plug-in (type-II ML)")
    axs[0].plot(x, plug["mean"] + Z90 * plug["sd"], color="tab:blue")
    axs[0].set(ylabel="f(x)", title="90% band of f: hyperparameters plugged in vs integrated")
    axs[0].legend(fontsize=8)
    axs[1].plot(x, (integrated[1] - integrated[0]) / (2 * Z90 * plug["sd"]), color="black")
    axs[1].axhline(1.0, color="gray", linewidth=0.8, linestyle=":")
    axs[1].set(xlabel="x", ylabel="width ratio\nintegrated / plug-in")
    return fig


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={
            "equivalence.csv": result.equivalence.set_index(["problem", "comparison"]),
            "hyperparameters.csv": result.hyperparameters.set_index(["problem", "parameter"]),
            "coverage.csv": result.coverage.set_index(["problem", "band"]),
        },
        figures={
            "one_d.png": plot_one_d(result),
            "hyperparameters.png": plot_hyperparameters(result),
            "bands.png": plot_bands(result),
        },
        posteriors={f"posterior_{name}.nc": idata for name, idata in result.posteriors.items()},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
