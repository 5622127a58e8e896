"""Ridge is the MAP of a Normal prior: MAP vs Ridge vs the exact posterior across the whole alpha path.

Claim
    ``Ridge(alpha)`` is the posterior mode of ``y ~ N(X beta + intercept, sigma**2)`` with a flat intercept and
    ``beta ~ N(0, sigma**2 / alpha)``, for known ``sigma`` and for unknown ``sigma`` (Jeffreys'
    ``p(sigma**2) ∝ 1 / sigma**2``), on every alpha in [1e-4, 1e4] (and alpha = 0, least squares, on a
    full-rank design), on well-conditioned, collinear, p > n, badly scaled (1e6), weighted and
    intercept-free designs, and for diagonal and full prior covariances (Ridge on whitened features). A
    precise MAP reaches the exact posterior mean to <= 1e-8; PyMC's default ``find_MAP`` is reported as
    measured (at every 6th alpha: it recompiles at each call). NUTS (nutpie, 2 chains x 2,000 draws, 5
    alphas, both noise settings on diabetes) matches the exact posterior in MCSE units. One
    compiled model serves the whole path.

Writes ``results/ridge_equivalence/``
    ``path.csv``      one row per (dataset, prior, noise, alpha, coefficient): Ridge, default and precise MAP,
                      exact posterior mean and SD (``map_default`` is empty where find_MAP was not run)
    ``nuts.csv``      one row per NUTS fit and coefficient: exact vs sampled mean and SD, z-score, diagnostics
    ``path.png``      the diabetes regularization path with MAP markers and the 90% posterior band
    ``map_error.png`` MAP-vs-Ridge relative error across alpha, default and precise MAP
    ``posterior_known_noise.nc``, ``posterior_unknown_noise.nc``  a NUTS posterior each (git-ignored)
    ``metadata.json`` config, seed, versions, seconds, checks, metrics

Run
    python -m experiments.ridge_equivalence            # published settings
    python -m experiments.ridge_equivalence --fast     # smoke run
    python -m experiments.ridge_equivalence --data table.csv --target y [--alphas 0.1,1,10]
"""

import sys
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
import scipy.stats
from sklearn.linear_model import Ridge

from experiments import _cli
from models import data as datasets
from models import diagnostics
from models.data import DataError, Dataset
from models.diagnostics import convergence, mean_z_scores, relative_error, sd_ratio
from models.exact import linear_posterior
from models.fit import (
    PreciseMAP,
    coefficients,
    compile_nuts,
    map_default,
    posterior_coefficients,
    sample_nuts,
)
from models.linear import linear_regression
from models.penalties import whitening_factor

NAME = "ridge_equivalence"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261126
    alphas: tuple[float, ...] = tuple(np.logspace(-4, 4, 31))
    designs: tuple[str, ...] = tuple(datasets.SIMULATED_DESIGNS)
    structured_priors: tuple[str, ...] = ("diagonal", "full")
    nuts_alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    default_map_every: int = 6
    draws: int = 2000
    tune: int = 1000
    chains: int = 2
    rebuild_alphas: int = 5


FAST = Config(
    alphas=tuple(np.logspace(-4, 4, 3)),
    designs=("badly_scaled",),
    structured_priors=(),
    nuts_alphas=(1.0,),
    draws=300,
    tune=300,
    rebuild_alphas=2,
    default_map_every=4,
)


class Case(NamedTuple):
    """One data set under one prior shape (``relative_prior_cov``, identity when None)."""

    dataset: Dataset
    prior: str
    relative_prior_cov: np.ndarray | None = None

    def model_kwargs(self, noise_sigma):
        ds = self.dataset
        return dict(
            noise_sigma=noise_sigma,
            sample_weight=ds.sample_weight,
            fit_intercept=ds.fit_intercept,
            relative_prior_cov=self.relative_prior_cov,
            feature_names=ds.feature_names,
        )


def make_cases(config: Config, user_data: Dataset | None = None) -> list[Case]:
    """Diabetes (isotropic, diagonal, full prior) and the simulated designs, or the user's table."""
    if user_data is not None:
        return [Case(user_data, "isotropic")]
    data_rng, prior_rng = np.random.default_rng(config.seed).spawn(2)
    diabetes = datasets.diabetes()
    p = diabetes.X.shape[1]
    variances = np.exp(prior_rng.normal(0.0, 1.0, size=p))
    basis = prior_rng.standard_normal((p, p))
    full = basis @ basis.T / p + np.diag(variances)
    structured = {"diagonal": variances, "full": full}
    cases = [Case(diabetes, "isotropic")]
    cases += [Case(diabetes, kind, structured[kind]) for kind in config.structured_priors]
    cases += [Case(datasets.simulated(d, rng=data_rng), "isotropic") for d in config.designs]
    return cases


def ridge_reference(case: Case, alpha: float) -> np.ndarray:
    """scikit-learn's Ridge (SVD solver) on the whitened features, mapped back; intercept first."""
    ds = case.dataset
    L = (
        np.eye(ds.X.shape[1])
        if case.relative_prior_cov is None
        else whitening_factor(case.relative_prior_cov)
    )
    ridge = Ridge(alpha=alpha, solver="svd", fit_intercept=ds.fit_intercept)
    ridge.fit(ds.X @ L, ds.y, sample_weight=ds.sample_weight)
    coef = L @ ridge.coef_
    return np.concatenate([[ridge.intercept_], coef]) if ds.fit_intercept else coef


SUFFSTAT_ROWS = 10_000
"""Above this many rows NUTS samples the twin through its sufficient statistics (the same posterior at
``O(p**2)`` per gradient instead of ``O(n p)``): at n = 1e5, p = 50 they sampled in 0.44 s where the row-wise
likelihood took 189 s (``results/performance/suffstat.csv``)."""


def likelihood_for(ds: Dataset) -> str:
    """``"suffstat"`` above :data:`SUFFSTAT_ROWS` rows, else the row-wise likelihood."""
    return "suffstat" if len(ds.y) > SUFFSTAT_ROWS else "rows"


def path_table(case: Case, noise: str, alphas, default_map_every: int) -> tuple[pd.DataFrame, dict]:
    """Every fit along the path for one case and noise setting, with the seconds spent compiling and fitting.

    One compiled model (``ridge_alpha`` is ``pm.Data``) serves every alpha > 0; alpha = 0 is a flat prior,
    a model of its own. ``pm.find_MAP`` recompiles the model at every call (about 0.5 s each, 95% of it
    graph rewriting), so it runs at every ``default_map_every``-th alpha; its column is NaN elsewhere.
    """
    ds = case.dataset
    kwargs = case.model_kwargs(ds.noise_sigma if noise == "known" else None)
    seconds = {"compile": 0.0, "fit": 0.0, "n_fits": 0}
    models = {}
    rows = []
    for i, alpha in enumerate(alphas):
        structure = "flat" if alpha == 0 else "normal"
        if structure not in models:
            start = time.perf_counter()
            model = linear_regression(
                ds.X, ds.y, ridge_alpha=alpha, likelihood=likelihood_for(ds), **kwargs
            )
            models[structure] = (model, PreciseMAP(model))
            seconds["compile"] += time.perf_counter() - start
        model, precise_map = models[structure]
        start = time.perf_counter()
        if alpha > 0:
            pm.set_data({"ridge_alpha": alpha}, model=model)
        map_precise = coefficients(precise_map())
        seconds["fit"] += time.perf_counter() - start
        seconds["n_fits"] += 1
        posterior = linear_posterior(ds.X, ds.y, ridge_alpha=alpha, **kwargs)
        k = posterior.mean.size
        columns = {
            "ridge": ridge_reference(case, alpha),
            "map_default": (
                coefficients(map_default(model))
                if i % default_map_every == 0
                else np.full(k, np.nan)
            ),
            "map_precise": map_precise,
            "posterior_mean": posterior.mean,
            "posterior_sd": posterior.sd,
        }
        for j, feature in enumerate(posterior.names):
            row = {"dataset": ds.name, "prior": case.prior, "noise": noise, "alpha": alpha}
            rows.append(row | {"feature": feature} | {k: v[j] for k, v in columns.items()})
    return pd.DataFrame(rows), seconds


def compile_once_timing(case: Case, alphas) -> dict:
    """Seconds per alpha, side by side on the same case (unknown noise) and alphas: rebuilding and
    recompiling the model for each alpha, against ``pm.set_data`` on one compiled model (its compilation and
    first call excluded: they are paid once per path)."""
    ds, kwargs = (
        case.dataset,
        case.model_kwargs(None) | {"likelihood": likelihood_for(case.dataset)},
    )
    start = time.perf_counter()
    for alpha in alphas:
        PreciseMAP(linear_regression(ds.X, ds.y, ridge_alpha=alpha, **kwargs))()
    rebuild = (time.perf_counter() - start) / len(alphas)
    model = linear_regression(ds.X, ds.y, ridge_alpha=alphas[0], **kwargs)
    precise_map = PreciseMAP(model)
    precise_map()
    start = time.perf_counter()
    for alpha in alphas:
        pm.set_data({"ridge_alpha": alpha}, model=model)
        precise_map()
    return {
        "rebuild_per_alpha": rebuild,
        "compiled_per_alpha": (time.perf_counter() - start) / len(alphas),
    }


def nuts_table(case: Case, config: Config, seeds) -> tuple[pd.DataFrame, dict]:
    """NUTS (nutpie, compiled once per noise setting) at ``config.nuts_alphas`` vs the exact posterior."""
    ds = case.dataset
    rows, posteriors = [], {}
    seeds = iter(seeds)
    likelihood = likelihood_for(ds)
    for noise in ("known", "unknown"):
        kwargs = case.model_kwargs(ds.noise_sigma if noise == "known" else None)
        model = linear_regression(
            ds.X, ds.y, ridge_alpha=config.nuts_alphas[0], likelihood=likelihood, **kwargs
        )
        compiled = compile_nuts(model)
        for alpha in config.nuts_alphas:
            idata = sample_nuts(
                compiled,
                seed=int(next(seeds)),
                draws=config.draws,
                tune=config.tune,
                chains=config.chains,
                ridge_alpha=np.asarray(alpha, dtype=float),
            )
            exact = linear_posterior(ds.X, ds.y, ridge_alpha=alpha, **kwargs)
            draws = posterior_coefficients(idata)
            diagnostics = convergence(idata)._asdict()
            z, ratio = mean_z_scores(draws, exact.mean), sd_ratio(draws, exact.sd)
            for j, feature in enumerate(exact.names):
                rows.append(
                    {"dataset": ds.name, "noise": noise, "alpha": alpha, "feature": feature}
                    | {"exact_mean": exact.mean[j], "nuts_mean": draws[..., j].mean()}
                    | {"exact_sd": exact.sd[j], "nuts_sd": draws[..., j].std(ddof=1)}
                    | {"mean_z": z[j], "sd_ratio": ratio[j]}
                    | diagnostics
                )
            posteriors[noise] = idata
    return pd.DataFrame(rows), posteriors


class Result(NamedTuple):
    path: pd.DataFrame
    nuts: pd.DataFrame
    posteriors: dict
    seconds: dict


def z_bound(k: int, family_rate: float = 0.001) -> float:
    """The bound on the largest of ``k`` independent |z|-scores that a correct sampler exceeds by chance
    with probability at most ``family_rate`` (Bonferroni)."""
    return float(scipy.stats.norm.isf(family_rate / (2 * k)))


def least_squares_exists(ds: Dataset) -> bool:
    """Whether alpha = 0 (a flat prior) has a proper posterior with finite SDs: a centered design of full
    column rank and more rows than coefficients. A constant or collinear column, or p >= n, rules it out."""
    n, p = ds.X.shape
    centered = ds.X - ds.X.mean(axis=0) if ds.fit_intercept else ds.X
    return p < n - ds.fit_intercept and np.linalg.matrix_rank(centered) == p


def run(config: Config, user_data: Dataset | None = None) -> Result:
    """Fit every case along the path, sample NUTS on the first case, time compile-once vs rebuild."""
    cases = make_cases(config, user_data)
    tables, compile_seconds, fit_seconds, n_fits = [], 0.0, 0.0, 0
    start = time.perf_counter()
    for i, case in enumerate(cases, start=1):
        alphas = ((0.0,) if least_squares_exists(case.dataset) else ()) + tuple(
            alpha for alpha in config.alphas if alpha > 0
        )
        for noise in ("known", "unknown"):
            _cli.progress(
                f"path {i}/{len(cases)}: {case.dataset.name} ({case.prior} prior, {noise} noise)"
            )
            table, seconds = path_table(case, noise, alphas, config.default_map_every)
            tables.append(table)
            compile_seconds += seconds["compile"]
            fit_seconds += seconds["fit"]
            n_fits += seconds["n_fits"]
    path_seconds = time.perf_counter() - start

    positive = [alpha for alpha in config.alphas if alpha > 0]
    timing_alphas = positive[:: max(1, len(positive) // config.rebuild_alphas)][
        : config.rebuild_alphas
    ]
    timing = compile_once_timing(cases[0], timing_alphas)

    _cli.progress(
        f"NUTS on {cases[0].dataset.name} at {len(config.nuts_alphas)} alphas, known and unknown noise"
    )
    start = time.perf_counter()
    nuts_seeds = np.random.default_rng(config.seed).spawn(3)[2].integers(2**31, size=64)
    nuts, posteriors = nuts_table(cases[0], config, nuts_seeds)
    seconds = {
        "path": path_seconds,
        "path_compile": compile_seconds,
        "path_fit_per_alpha": fit_seconds / n_fits,
        **timing,
        "nuts": time.perf_counter() - start,
    }
    return Result(pd.concat(tables, ignore_index=True), nuts, posteriors, seconds)


def fit_errors(path: pd.DataFrame) -> pd.DataFrame:
    """Relative errors of each fit (one row per dataset, prior, noise, alpha)."""

    def errors(fit):
        return pd.Series(
            {
                "map_precise_vs_ridge": relative_error(fit.map_precise, fit.ridge),
                "map_precise_vs_exact": relative_error(fit.map_precise, fit.posterior_mean),
                "map_default_vs_ridge": (
                    relative_error(fit.map_default, fit.ridge)
                    if fit.map_default.notna().all()
                    else np.nan
                ),
                "exact_vs_ridge": relative_error(fit.posterior_mean, fit.ridge),
            }
        )

    keys = ["dataset", "prior", "noise", "alpha"]
    return path.groupby(keys, sort=False)[path.columns.drop(keys)].apply(errors).reset_index()


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Headline metrics and pass/fail checks against the issue's targets."""
    errors = fit_errors(result.path)
    nuts = result.nuts
    speedup = result.seconds["rebuild_per_alpha"] / result.seconds["compiled_per_alpha"]
    metrics = {
        "max_rel_err_map_precise": errors.map_precise_vs_ridge.max(),
        "max_rel_err_map_precise_vs_exact": errors.map_precise_vs_exact.max(),
        "max_rel_err_map_default": errors.map_default_vs_ridge.max(),
        "median_rel_err_map_default": errors.map_default_vs_ridge.median(),
        "max_rel_err_exact_mean": errors.exact_vs_ridge.max(),
        "max_nuts_mean_z": nuts.mean_z.max(),
        "max_nuts_sd_ratio_err": (nuts.sd_ratio - 1.0).abs().max(),
        "max_nuts_rhat": nuts.rhat_max.max(),
        "min_nuts_ess_bulk": nuts.ess_bulk_min.min(),
        "nuts_divergences": int(nuts.drop_duplicates(["noise", "alpha"]).divergences.sum()),
        "path_seconds_per_alpha": result.seconds["path_fit_per_alpha"],
        "path_speedup_vs_rebuild": speedup,
        "n_fits": len(errors),
        "n_nuts_fits": len(nuts.drop_duplicates(["noise", "alpha"])),
    }
    checks = diagnostics.checks(
        {
            "precise_map_vs_ridge": (metrics["max_rel_err_map_precise"], "<=", 1e-8),
            "precise_map_vs_exact": (metrics["max_rel_err_map_precise_vs_exact"], "<=", 1e-8),
            "exact_mean_vs_ridge": (metrics["max_rel_err_exact_mean"], "<=", 1e-10),
            # The largest of k |z|-scores (fits x coefficients): Bonferroni at a 0.1% family-wise rate, 4.44
            # MCSE for the published k = 110. A flat 4 failed on 1 seed in 20 (4.20; make seed-study).
            "nuts_mean_within_mcse": (metrics["max_nuts_mean_z"], "<=", z_bound(len(nuts))),
            "nuts_sd_within_10_percent": (metrics["max_nuts_sd_ratio_err"], "<=", 0.10),
            "nuts_rhat": (metrics["max_nuts_rhat"], "<=", 1.01),
            "nuts_ess_bulk": (metrics["min_nuts_ess_bulk"], ">=", 400),
            "nuts_no_divergences": (metrics["nuts_divergences"], "<=", 0),
        }
    )
    return metrics, checks


def plot_path(path: pd.DataFrame, dataset: str):
    """Regularization path: Ridge lines, precise-MAP markers, exact 90% posterior band (known noise)."""
    fits = path[(path.dataset == dataset) & (path.prior == "isotropic") & (path.noise == "known")]
    fits = fits[(fits.feature != "intercept") & (fits.alpha > 0)]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.cm.tab20.colors
    for j, (feature, f) in enumerate(fits.groupby("feature", sort=False)):
        color = colors[j % len(colors)]
        half_width = 1.6448536269514722 * f.posterior_sd
        ax.fill_between(
            f.alpha,
            f.posterior_mean - half_width,
            f.posterior_mean + half_width,
            color=color,
            alpha=0.15,
            linewidth=0,
        )
        ax.plot(f.alpha, f.ridge, color=color, label=feature)
        ax.plot(f.alpha, f.map_precise, "o", color=color, markersize=3)
    ax.set_xscale("log")
    ax.set_xlabel("Ridge alpha (scikit-learn convention)")
    ax.set_ylabel("coefficient")
    ax.set_title(
        f"{dataset}: Ridge path (lines) = precise MAP (dots); band: 90% posterior interval"
    )
    ax.legend(ncol=2, fontsize=8, title="feature", loc="upper right")
    return fig


def plot_errors(path: pd.DataFrame):
    """MAP-vs-Ridge relative error across alpha, per data set; default vs precise MAP."""
    errors = fit_errors(path)
    floor = 1e-17
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, noise in zip(axs, ("known", "unknown"), strict=True):
        for (dataset, prior), e in errors[errors.noise == noise].groupby(
            ["dataset", "prior"], sort=False
        ):
            e = e[e.alpha > 0]
            (line,) = ax.plot(e.alpha, e.map_precise_vs_ridge.clip(lower=floor), "--", linewidth=1)
            d = e.dropna(subset="map_default_vs_ridge")
            ax.plot(
                d.alpha,
                d.map_default_vs_ridge.clip(lower=floor),
                "o-",
                color=line.get_color(),
                markersize=3,
                label=f"{dataset} ({prior})",
            )
        ax.axhline(1e-8, color="black", linewidth=0.8, linestyle=":")
        ax.set(xscale="log", yscale="log", xlabel="Ridge alpha", title=f"{noise} noise sigma")
    axs[0].set_ylabel("relative error vs Ridge\n(dots: find_MAP defaults, dashed: precise MAP)")
    axs[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("MAP vs Ridge: dotted line = the 1e-8 target; errors of 0 drawn at 1e-17")
    return fig


def parse_alphas(text: str) -> tuple[float, ...]:
    try:
        alphas = tuple(float(a) for a in text.split(","))
    except ValueError:
        raise DataError(f"--alphas must be comma-separated numbers, got {text!r}") from None
    if any(not np.isfinite(a) or a < 0 for a in alphas):
        raise DataError(f"--alphas must be finite and >= 0, got {text!r}")
    return alphas


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    return [
        f"Over {metrics['n_fits']} fits (every design, alpha from 1e-4 to 1e4, known and unknown noise, "
        f"diagonal and full prior covariances), the precise MAP matched Ridge to "
        f"{metrics['max_rel_err_map_precise']:.1e} and the exact posterior mean matched Ridge to "
        f"{metrics['max_rel_err_exact_mean']:.1e}: Ridge is the posterior mode, to rounding.",
        f"PyMC's default `find_MAP` stops at its optimizer's default tolerance: its median error is "
        f"{metrics['median_rel_err_map_default']:.1e}, its worst {metrics['max_rel_err_map_default']:.0%} "
        "(on the badly scaled design, columns 1e6 apart, where that stopping rule is met far from the "
        "mode); hence the precise MAP.",
        f"NUTS on diabetes ({metrics['n_nuts_fits']} fits) agrees with the exact posterior: the largest "
        f"|mean - exact| is {metrics['max_nuts_mean_z']:.2f} Monte Carlo standard errors, SDs within "
        f"{metrics['max_nuts_sd_ratio_err']:.1%}, R-hat at most {metrics['max_nuts_rhat']:.3f}, "
        f"{metrics['nuts_divergences']} divergences.",
    ]


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    dataset = result.path.dataset.iloc[0]
    return _cli.Artifacts(
        tables={
            "path.csv": result.path.set_index(["dataset", "prior", "noise", "alpha", "feature"]),
            "nuts.csv": result.nuts.set_index(["dataset", "noise", "alpha", "feature"]),
        },
        figures={
            "path.png": plot_path(result.path, dataset),
            "map_error.png": plot_errors(result.path),
        },
        posteriors={
            f"posterior_{noise}_noise.nc": idata for noise, idata in result.posteriors.items()
        },
    )


USER_DATA = True


def add_options(parser) -> None:
    parser.add_argument(
        "--alphas", default=None, help="comma-separated Ridge alphas (default: the path)"
    )


def read_options(args, config: Config) -> tuple[Config, dict]:
    """``--data``/``--target`` (a user's table) and ``--alphas``."""
    user_data = None
    if args.data is not None or args.target is not None:
        if args.data is None or args.target is None:
            raise DataError("--data and --target go together")
        user_data = datasets.read_csv(args.data, args.target)
    if args.alphas is not None:
        alphas = parse_alphas(args.alphas)
        positive = tuple(a for a in alphas if a > 0)
        if not positive:
            raise DataError("--alphas needs at least one alpha > 0")
        config = replace(
            config, alphas=alphas, nuts_alphas=positive[:: max(1, len(positive) // 5)][:5]
        )
    return config, {"user_data": user_data}


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
