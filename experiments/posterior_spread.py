"""What the point estimate hides: posterior spread, correlation, prediction and calibration.

Claim
    A Ridge fit gives one number per coefficient; its Bayesian twin (unknown noise under Jeffreys' prior)
    gives a distribution whose mean is that number. On diabetes (training split, alpha chosen by
    Ridge's leave-one-out cross-validation) the 90% intervals show which coefficients the data
    cannot tell from 0, that the serum coefficients s1 and s2 trade off against each other, and how
    wide a prediction really is (checked on a held-out split). The spread is honest: over data sets
    drawn from the model's own prior on the same design (with a proper InverseGamma(1, 1) on the noise
    variance there, since Jeffreys' prior cannot be drawn from), 50/90/95% intervals cover the truth at
    their nominal rate (exact posterior and NUTS) within 3 Monte Carlo standard errors; with a prior
    10x too narrow they do not.

Writes ``results/posterior_spread/``
    ``coefficients.csv``  per coefficient: Ridge, exact and NUTS mean, SD, 90% interval, contains 0
    ``correlation.csv``   per pair of features: exact and NUTS posterior correlation
    ``prediction.csv``    per held-out patient: observed, Ridge prediction, 90% predictive interval
    ``calibration.csv``   per (method, prior, level): coverage, Monte Carlo SE, z-score vs nominal
    ``nuts_fits.csv``     convergence diagnostics of every NUTS fit
    ``coefficients.png``  forest plot of 50/90% intervals, Ridge marked
    ``correlation.png``   joint posterior of s1 and s2, Ridge marked
    ``prediction.png``    held-out 90% predictive intervals sorted by Ridge prediction
    ``calibration.png``   coverage vs nominal level with Monte Carlo error bars
    ``posterior.nc``      the diabetes NUTS posterior with sampler stats (git-ignored)
    ``metadata.json``     config, seed, versions, seconds, checks, metrics

Run
    python -m experiments.posterior_spread            # published settings
    python -m experiments.posterior_spread --fast     # smoke run
"""

import sys
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import train_test_split

from experiments import _cli, _plots
from models import calibration, diagnostics
from models import data as datasets
from models.exact import linear_posterior
from models.fit import compile_nuts, intercept_first, posterior_coefficients, sample_nuts
from models.linear import linear_regression
from models.measure import Stopwatch

NAME = "posterior_spread"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261126
    test_size: float = 0.25
    cv_alphas: tuple[float, ...] = tuple(np.logspace(-4, 2, 61))
    interval: float = 0.9
    levels: tuple[float, ...] = (0.5, 0.9, 0.95)
    n_exact: int = 2000
    n_nuts: int = 100
    prior_scale_factors: tuple[float, ...] = (0.1, 10.0)
    # Data cannot be simulated from the twin's Jeffreys noise prior (it is improper), so the calibration
    # simulates from, and analyses with, this proper InverseGamma(shape, rate) on sigma**2 instead.
    calibration_noise_prior: tuple[float, float] = (1.0, 1.0)
    # 2,000 draws per chain: over 100 calibration fits the worst R-hat was 1.0076 with 1,000
    # draws and 1.0044 with 2,000, in about the same time (per-fit overhead dominates at this size).
    draws: int = 2000
    tune: int = 1000
    chains: int = 2

    @property
    def sampler(self) -> dict:
        """The settings of every NUTS fit."""
        return {"draws": self.draws, "tune": self.tune, "chains": self.chains}


FAST = Config(n_exact=200, n_nuts=2, draws=300, tune=300)

PRIOR_LABELS = {1.0: "well-specified", 0.1: "prior 10x too small", 10.0: "prior 10x too large"}


class Result(NamedTuple):
    ridge_alpha: float
    coefficients: pd.DataFrame
    correlation: pd.DataFrame
    prediction: pd.DataFrame
    predictive_draws: np.ndarray
    calibration: pd.DataFrame
    nuts_fits: pd.DataFrame
    idata: object
    seconds: dict


def split(config: Config, rng: np.random.Generator):
    """Diabetes split into training and held-out rows; alpha by leave-one-out CV on training."""
    ds = datasets.diabetes()
    rows = np.arange(len(ds.y))
    train, test = train_test_split(
        rows, test_size=config.test_size, random_state=int(rng.integers(2**31))
    )
    # RidgeCV's default (cv=None) is efficient leave-one-out on the training rows only.
    alpha = float(RidgeCV(alphas=config.cv_alphas).fit(ds.X[train], ds.y[train]).alpha_)
    return ds, np.sort(train), np.sort(test), alpha


def run(config: Config) -> Result:
    """Fit diabetes (training split) by NUTS and exactly, predict held-out rows, calibrate."""
    split_rng, nuts_rng, predictive_rng, prior_rng = np.random.default_rng(config.seed).spawn(4)
    nuts_seeds = nuts_rng.integers(2**31, size=config.n_nuts + 1)
    ds, train, test, alpha = split(config, split_rng)
    X, y = ds.X[train], ds.y[train]
    twin = {"ridge_alpha": alpha, "noise_sigma": None, "feature_names": ds.feature_names}
    clock = Stopwatch()
    compiled = compile_nuts(linear_regression(X, y, **twin))
    seconds = {"compile": clock.lap()}
    idata = sample_nuts(compiled, seed=int(nuts_seeds[-1]), **config.sampler)
    seconds["diabetes_nuts"] = clock.lap()
    exact = linear_posterior(X, y, **twin)
    ridge = Ridge(alpha=alpha, solver="svd").fit(X, y)

    coefficients = calibration.interval_table(posterior_coefficients(idata), exact, config.interval)
    coefficients.insert(0, "ridge", intercept_first(ridge))
    correlation = diagnostics.correlation_table(
        idata["posterior"]["beta"].values, exact.cov[1:, 1:], exact.names[1:]
    )
    rows = pd.Index(test, name="obs_id")
    prediction, y_rep = calibration.predictive_table(
        idata, exact, ds.X[test], ds.y[test], level=config.interval, rng=predictive_rng, index=rows
    )
    prediction.insert(1, "ridge_prediction", ridge.predict(ds.X[test]))

    clock.lap()
    coverage, fits = calibration.prior_calibration(
        X,
        compiled,
        ridge_alpha=alpha,
        levels=config.levels,
        n_exact=config.n_exact,
        rng=prior_rng,
        seeds=nuts_seeds[: config.n_nuts],
        noise_prior=config.calibration_noise_prior,
        scale_factors=config.prior_scale_factors,
        **config.sampler,
    )
    coverage.insert(1, "prior", coverage.prior_scale_factor.map(PRIOR_LABELS))
    seconds["calibration"] = clock.lap()
    health = diagnostics.convergence(idata)._asdict()
    fits = pd.DataFrame([{"fit": "diabetes", "true_sigma": np.nan} | health, *fits])
    return Result(
        alpha, coefficients, correlation, prediction, y_rep, coverage, fits, idata, seconds
    )


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    coefficients = result.coefficients
    coef = coefficients.drop(index="intercept")
    nonzero = coef.ridge != 0
    corr = result.correlation
    strongest = corr.exact.abs().idxmax()
    pred = result.prediction
    held_out = calibration.coverage(pred.covered.to_numpy(), level=config.interval)
    cal = result.calibration.set_index(["method", "prior", "level"])
    fits = result.nuts_fits
    diabetes = fits.iloc[0]
    predictive_scale = (pred.exact_upper - pred.exact_lower) / 2.0
    bound_error = np.maximum(
        (pred.nuts_lower - pred.exact_lower).abs(), (pred.nuts_upper - pred.exact_upper).abs()
    )
    bound_error_scaled = float((bound_error / predictive_scale).max())
    ridge_error = diagnostics.relative_error(coefficients.ridge, coefficients.exact_mean)
    metrics = {
        "ridge_alpha": result.ridge_alpha,
        "n_coef_interval_contains_zero": int((coef.contains_zero & nonzero).sum()),
        "n_coef_exact_interval_contains_zero": int((coef.exact_contains_zero & nonzero).sum()),
        "max_abs_posterior_corr": float(corr.exact.abs().max()),
        "max_abs_posterior_corr_pair": "-".join(strongest),
        "strongest_posterior_corr": float(corr.exact[strongest]),
        "max_abs_posterior_corr_nuts": float(corr.nuts.abs().max()),
        "heldout_coverage_90": held_out.coverage,
        "heldout_coverage_90_mcse": held_out.mcse,
        "heldout_coverage_90_exact": float(pred.exact_covered.mean()),
    }
    for method, prefix in (("exact", ""), ("nuts", "nuts_")):
        for level in config.levels:
            row = cal.loc[(method, "well-specified", level)]
            metrics[f"{prefix}coverage_{round(100 * level)}"] = row.coverage
            metrics[f"{prefix}coverage_{round(100 * level)}_mcse"] = row.mcse
    for factor in config.prior_scale_factors:
        label = PRIOR_LABELS[factor]
        for level in config.levels:
            key = f"coverage_{round(100 * level)}_{label.replace(' ', '_')}"
            metrics[key] = cal.loc[("exact", label, level)].coverage
    metrics |= {
        "max_nuts_rhat": float(fits.rhat_max.max()),
        "min_nuts_ess_bulk": float(fits.ess_bulk_min.min()),
        "nuts_divergences": int(fits.divergences.sum()),
        "n_nuts_fits": len(fits),
        "n_exact_replications": config.n_exact,
        "n_nuts_replications": config.n_nuts,
    }
    targets = {
        "diabetes_nuts_mean_within_4_mcse": (float(coefficients.mean_z.max()), "<=", 4.0),
        # Ridge and the exact mean: the same linear algebra, two implementations.
        "ridge_is_exact_mean": (ridge_error, "<=", 1e-10),
        # The MC error of a correlation from ~2,000 effective draws is (1 - r**2) / 45 <= 0.025.
        "nuts_correlation_within_0.1": (float((corr.nuts - corr.exact).abs().max()), "<=", 0.1),
        # A 5% quantile of ~2,000 draws has an MC error near 0.05 predictive SDs; 0.25 is ~5 MCSE.
        "nuts_predictive_bounds_vs_exact": (bound_error_scaled, "<=", 0.25),
        "diabetes_nuts_rhat": (float(diabetes.rhat_max), "<=", 1.01),
        "diabetes_nuts_ess_bulk": (float(diabetes.ess_bulk_min), ">=", 400.0),
        "diabetes_nuts_divergences": (int(diabetes.divergences), "<=", 0),
        "calibration_nuts_rhat": (float(fits.rhat_max.max()), "<=", 1.01),
        "calibration_nuts_ess_bulk": (float(fits.ess_bulk_min.min()), ">=", 400.0),
        "calibration_nuts_divergences": (int(fits.divergences.sum()), "<=", 0),
    }
    for method in ("exact", "nuts"):
        for level in config.levels:
            z = abs(cal.loc[(method, "well-specified", level)].z)
            # 3 MCSE: a calibrated interval fails by chance about once in 370 checks.
            targets[f"{method}_coverage_{round(100 * level)}_within_3_mcse"] = (z, "<=", 3.0)
    return metrics, diagnostics.checks(targets)


def plot_coefficients(idata, coefficients: pd.DataFrame, level: float):
    """Forest plot (ArviZ) of the NUTS 50% and ``level`` intervals, Ridge's point marked."""
    features = coefficients.drop(index="intercept")
    fig = _plots.forest_with_point(idata, "beta", features.ridge, level=level, point_label="Ridge")
    ax = fig.axes[-1]
    ax.axvline(0.0, color="0.4", linewidth=0.8, linestyle=":")
    ax.set_xlabel("coefficient (change in progression per unit of the scaled feature)")
    n_zero = int(features.contains_zero.sum())
    fig.suptitle(f"Diabetes: Ridge gives one point; {n_zero} of 10 {level:.0%} intervals contain 0")
    return fig


def plot_correlation(
    idata, coefficients: pd.DataFrame, correlation: pd.DataFrame, pair=("s1", "s2")
):
    """Joint posterior (ArviZ pair plot) of two coefficients, Ridge's point marked."""
    fig, _ = _plots.pair_with_point(idata, "beta", pair, coefficients.ridge, point_label="Ridge")
    r = correlation.loc[pair, "exact"]
    fig.suptitle(
        f"Joint posterior of {pair[0]} and {pair[1]}: correlation {r:.2f}\n"
        "(one Ridge point; the data allow a whole ridge of trade-offs)"
    )
    return fig


def plot_prediction(pred: pd.DataFrame, predictive_draws, level: float):
    """Held-out predictive intervals (ArviZ, NUTS draws) sorted by Ridge prediction, Ridge marked."""
    fig, ax = _plots.predictive_intervals(
        predictive_draws, pred, "ridge_prediction", level=level, point_label="Ridge"
    )
    ax.set_xlabel("held-out patient (sorted by Ridge prediction)")
    ax.set_ylabel("disease progression after one year")
    ax.set_title(
        f"Held-out predictions: {pred.covered.mean():.0%} of {len(pred)} observations inside "
        f"the {level:.0%} posterior predictive intervals"
    )
    return fig


def plot_calibration(table: pd.DataFrame):
    """Coverage with 2-MCSE bars: well-specified (exact, NUTS) as gap to nominal; every prior."""
    fig, axs = plt.subplots(1, 2, figsize=(13, 5.5))
    styles = {
        ("exact", "well-specified"): ("C0", "o", -0.004),
        ("nuts", "well-specified"): ("C2", "s", 0.004),
        ("exact", "prior 10x too small"): ("C3", "v", 0.0),
        ("exact", "prior 10x too large"): ("C1", "^", 0.0),
    }
    for (method, prior), rows in table.groupby(["method", "prior"], sort=False):
        color, marker, shift = styles.get((method, prior), ("C7", "x", 0.0))
        n = rows.n_replications.iloc[0]
        label = f"{'NUTS' if method == 'nuts' else 'exact'}, {prior} ({n} data sets)"
        style = dict(color=color, marker=marker, capsize=3, linewidth=0.8, label=label)
        if prior == "well-specified":
            axs[0].errorbar(
                rows.level + shift, rows.coverage - rows.level, yerr=2 * rows.mcse, **style
            )
        if method == "exact":
            axs[1].errorbar(rows.level, rows.coverage, yerr=2 * rows.mcse, **style)
    axs[0].axhline(0.0, color="0.4", linewidth=0.8, linestyle=":")
    axs[0].set_ylabel("empirical coverage minus nominal")
    axs[0].set_title("Well-specified prior: coverage minus nominal")
    axs[1].plot([0.45, 1.0], [0.45, 1.0], ":", color="0.4", linewidth=0.8, label="nominal")
    axs[1].set(ylabel="empirical coverage of the true coefficients", ylim=(0.0, 1.02))
    axs[1].set_title("Exact posterior under each prior")
    for ax in axs:
        ax.set_xlabel("nominal level")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Calibration on data sets drawn from the prior (bars: 2 Monte Carlo SE)")
    return fig


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    n = metrics["n_exact_replications"]
    return [
        f"On diabetes at RidgeCV's alpha = {metrics['ridge_alpha']:.3g}, the 90% intervals of "
        f"{metrics['n_coef_interval_contains_zero']} of the 10 coefficients contain 0: Ridge gives each a "
        "number, the data cannot tell them from no effect.",
        f"The strongest posterior correlation is {metrics['strongest_posterior_corr']:.2f}, between "
        f"{metrics['max_abs_posterior_corr_pair'].replace('-', ' and ')}: their coefficients trade off, "
        "so each one's Ridge value means little alone.",
        f"90% intervals covered {metrics['coverage_90']:.1%} ± {metrics['coverage_90_mcse']:.1%} of "
        f"{n:,} truths drawn from the prior (NUTS: {metrics['nuts_coverage_90']:.1%} ± "
        f"{metrics['nuts_coverage_90_mcse']:.1%}); with a prior 10x too narrow, "
        f"{metrics['coverage_90_prior_10x_too_small']:.0%}.",
        f"On held-out patients the 90% predictive intervals covered "
        f"{metrics['heldout_coverage_90']:.1%} ± {metrics['heldout_coverage_90_mcse']:.1%}, one split "
        "of real data where the model is only an approximation.",
    ]


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={
            "coefficients.csv": result.coefficients,
            "correlation.csv": result.correlation,
            "prediction.csv": result.prediction,
            "calibration.csv": result.calibration.set_index(["method", "prior", "level"]),
            "nuts_fits.csv": result.nuts_fits.set_index("fit"),
        },
        figures={
            "coefficients.png": plot_coefficients(
                result.idata, result.coefficients, config.interval
            ),
            "correlation.png": plot_correlation(
                result.idata, result.coefficients, result.correlation
            ),
            "prediction.png": plot_prediction(
                result.prediction, result.predictive_draws, config.interval
            ),
            "calibration.png": plot_calibration(result.calibration),
        },
        posteriors={"posterior.nc": result.idata},
        config={"data": "diabetes", "ridge_alpha_selection": "RidgeCV leave-one-out"},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
