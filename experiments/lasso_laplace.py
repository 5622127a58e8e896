"""The Lasso is the MAP of a Laplace prior, and what that sparse point estimate hides.

Claim
    ``Lasso(alpha)`` is the posterior mode of ``y ~ N(intercept + X beta, sigma**2)`` (known sigma, flat
    intercept) with ``beta_j ~ Laplace(0, sigma**2 / (n alpha))``, and ``ElasticNet(alpha, l1_ratio)`` the mode
    under a Laplace-times-Normal prior. An active-set Newton method on the PyMC twin's own log posterior
    (:class:`models.sparse.SparseMAP`) reproduces the Lasso's exact zeros at every point of the alpha path
    (diabetes, with sigma the least-squares residual SD, and a simulated sparse truth, with the true sigma) and
    its non-zero coefficients to <= 1e-6 relative; PyMC's default ``find_MAP`` (L-BFGS-B on a non-smooth
    objective) is reported as measured. Under the same prior, the posterior (NUTS) puts no mass at zero: the
    MAP's exact zeros sit inside continuous posterior densities. A regularized horseshoe, which concentrates mass
    near zero, is compared with the Lasso on recovering the simulated support.

Writes ``results/lasso_laplace/``
    ``path.csv``         one row per (dataset, alpha, coefficient): Lasso, sparse MAP, default find_MAP
    ``fits.csv``         one row per (dataset, alpha): zero-pattern agreement, errors, subgradient conditions
    ``elasticnet.csv``   one row per (dataset, alpha, l1_ratio, coefficient): ElasticNet vs sparse MAP
    ``nuts.csv``         one row per (alpha, coefficient): MAP vs posterior mean, median, 90% interval,
                         P(|beta_j| < threshold), NUTS diagnostics (Laplace prior, simulated sparse truth)
    ``support.csv``      one row per method: support recovery of the simulated truth
    ``path.png``         the Lasso paths with sparse-MAP and find_MAP markers
    ``posterior_vs_map.png``  the MAP's exact zeros against the posterior densities at 3 path points
    ``support.png``      truth, Lasso (cross-validated alpha) and the two posteriors' 90% intervals
    ``posterior_laplace.nc``, ``posterior_horseshoe.nc``  posteriors at the cross-validated alpha (git-ignored)
    ``metadata.json``    config, seed, versions, seconds, checks, metrics

Run
    python -m experiments.lasso_laplace            # published settings
    python -m experiments.lasso_laplace --fast     # smoke run
"""

import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
from sklearn.linear_model import Lasso, LassoCV

from experiments import _cli
from experiments._plots import Estimate, estimates_by_feature
from models import data as datasets
from models import diagnostics
from models.calibration import draw_intervals
from models.data import Dataset
from models.diagnostics import convergence
from models.fit import coefficients, compile_nuts, map_default, posterior_coefficients, sample_nuts
from models.registry import elasticnet_reference
from models.sparse import (
    HORSESHOE_TARGET_ACCEPT,
    SparseMAP,
    elasticnet_prior_data,
    elasticnet_regression,
    laplace_regression,
    lasso_alpha_max,
    lasso_prior_data,
    regularized_horseshoe_regression,
    sparse_truth,
    support_recovery,
)

NAME = "lasso_laplace"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant. Alphas are fractions of each data set's
    ``alpha_max`` (the smallest alpha whose Lasso fit is all zeros)."""

    seed: int = 20261126
    n_path: int = 25
    path_decades: float = 3.0
    nuts_fractions: tuple[float, ...] = (0.3, 0.1, 0.03)
    elasticnet_fractions: tuple[float, ...] = (0.3, 0.03)
    l1_ratios: tuple[float, ...] = (0.2, 0.5, 0.8)
    sparse_shape: tuple[int, int, int] = (100, 40, 5)
    horseshoe_expected_nonzero: float = 10.0
    near_zero_se: float = 0.1
    interval: float = 0.9
    cv_folds: int = 5
    lasso_tol: float = 1e-12
    lasso_max_iter: int = 1_000_000
    draws: int = 2000
    tune: int = 1000
    # Four chains of 2,000 (on two cores): the spread of the coefficients near the kink at 0 mixes slowly
    # (folded R-hat); with 2 x 1,000 or 4 x 500 draws the largest R-hat came out at 1.013-1.023, and with
    # 4 x 1,000 at 1.0096, on the 1.01 bound.
    chains: int = 4


FAST = Config(
    n_path=5,
    nuts_fractions=(0.1,),
    elasticnet_fractions=(0.1,),
    draws=300,
    tune=300,
    chains=2,
    l1_ratios=(0.5,),
    sparse_shape=(100, 20, 4),
)


def lasso_reference(ds: Dataset, alpha: float, config: Config) -> tuple[np.ndarray, int]:
    """scikit-learn's Lasso at ``config``'s tight tolerance: coefficients intercept first, and its iterations
    (the ``sklearn_converged`` check)."""
    fit = Lasso(alpha=alpha, tol=config.lasso_tol, max_iter=config.lasso_max_iter).fit(ds.X, ds.y)
    return np.concatenate([[fit.intercept_], fit.coef_]), int(fit.n_iter_)


def path_alphas(ds: Dataset, config: Config, extra=()) -> np.ndarray:
    """The path, largest first: from just above ``alpha_max`` down ``path_decades`` decades, plus ``extra``."""
    fractions = np.logspace(0.05, -config.path_decades, config.n_path)
    return np.array(sorted({*(lasso_alpha_max(ds.X, ds.y) * fractions), *extra}, reverse=True))


def lasso_path(ds: Dataset, alphas, config: Config) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Lasso vs the sparse MAP (one compiled model, warm-started along the path) vs default find_MAP."""
    n = len(ds.y)
    model = laplace_regression(
        ds.X,
        ds.y,
        lasso_alpha=alphas[0],
        noise_sigma=ds.noise_sigma,
        feature_names=ds.feature_names,
    )
    sparse_map = SparseMAP(model)
    names = ("intercept", *ds.feature_names)
    coef_rows, fit_rows, x, seconds = [], [], None, 0.0
    for alpha in alphas:
        pm.set_data(
            lasso_prior_data(lasso_alpha=alpha, noise_sigma=ds.noise_sigma, n_samples=n),
            model=model,
        )
        start = time.perf_counter()
        values = sparse_map(x)
        seconds += time.perf_counter() - start
        x = values["_x"]
        lasso, n_iter = lasso_reference(ds, alpha, config)
        exact, default = coefficients(values), coefficients(map_default(model))
        # The Lasso's own subgradient conditions, in the same units (how optimal scikit-learn's answer is).
        lasso_optimality = sparse_map.optimality(
            sparse_map.ravel({"intercept": lasso[0], "beta": lasso[1:]})
        )
        for name, a, b, c in zip(names, lasso, exact, default, strict=True):
            row = {"dataset": ds.name, "alpha": alpha, "feature": name}
            coef_rows.append(row | {"lasso": a, "map_sparse": b, "map_default": c})
        fit_rows.append(
            fit_summary(ds.name, alpha, lasso, exact, default)
            | {
                "kkt_nonzero": values["_optimality"].nonzero,
                "kkt_zero": values["_optimality"].zero,
                "active_set_iterations": values["_optimality"].iterations,
                "lasso_kkt_nonzero": lasso_optimality.nonzero,
                "lasso_kkt_zero": lasso_optimality.zero,
                "lasso_n_iter": n_iter,
            }
        )
    return pd.DataFrame(coef_rows), pd.DataFrame(fit_rows), seconds / len(alphas)


def fit_summary(dataset, alpha, reference, exact, default) -> dict:
    """Zero-pattern agreement (features only) and errors of the sparse and the default MAP."""
    ref, exact, default = reference[1:], exact[1:], default[1:]
    nonzero = ref != 0.0
    rel = np.abs(exact - ref)[nonzero] / np.abs(ref[nonzero])
    return {
        "dataset": dataset,
        "alpha": alpha,
        "n_nonzero": int(nonzero.sum()),
        "zero_pattern_agreement": float(np.mean((exact == 0.0) == ~nonzero)),
        "max_abs_err": float(np.max(np.abs(exact - ref))),
        "max_rel_err_nonzero": float(rel.max(initial=0.0)),
        "intercept_abs_err": float(abs(reference[0] - exact[0])),
        "default_zero_pattern_agreement": float(np.mean((default == 0.0) == ~nonzero)),
        "default_max_abs_err": float(np.max(np.abs(default - ref))),
        "default_max_abs_at_zeros": float(np.max(np.abs(default[~nonzero]), initial=0.0)),
        "default_max_rel_err_nonzero": float(
            (np.abs(default - ref)[nonzero] / np.abs(ref[nonzero])).max(initial=0.0)
        ),
    }


def elasticnet_table(ds: Dataset, config: Config) -> pd.DataFrame:
    """ElasticNet vs the sparse MAP of its twin at each (alpha, l1_ratio)."""
    n = len(ds.y)
    model = elasticnet_regression(
        ds.X,
        ds.y,
        alpha=1.0,
        l1_ratio=0.5,
        noise_sigma=ds.noise_sigma,
        feature_names=ds.feature_names,
    )
    sparse_map = SparseMAP(model)
    rows = []
    for fraction in config.elasticnet_fractions:
        alpha = fraction * lasso_alpha_max(ds.X, ds.y)
        for l1_ratio in config.l1_ratios:
            data = elasticnet_prior_data(
                alpha=alpha, l1_ratio=l1_ratio, noise_sigma=ds.noise_sigma, n_samples=n
            )
            pm.set_data(data, model=model)
            values = sparse_map()
            reference = elasticnet_reference(ds.X, ds.y, alpha=alpha, l1_ratio=l1_ratio)
            for name, a, b in zip(
                ("intercept", *ds.feature_names), reference, coefficients(values), strict=True
            ):
                rows.append(
                    {
                        "dataset": ds.name,
                        "alpha": alpha,
                        "l1_ratio": l1_ratio,
                        "feature": name,
                        "elasticnet": a,
                        "map_sparse": b,
                        "kkt": max(values["_optimality"].nonzero, values["_optimality"].zero),
                    }
                )
    return pd.DataFrame(rows)


def near_zero_threshold(ds: Dataset, config: Config) -> np.ndarray:
    """``near_zero_se`` standard errors of each coefficient in an orthogonal design: ``sigma / ||x_j - mean||``."""
    norms = np.linalg.norm(ds.X - ds.X.mean(axis=0), axis=0)
    return config.near_zero_se * ds.noise_sigma / norms


def posterior_summary(draws, threshold, config: Config) -> dict:
    """Mean, median, central interval and P(|beta_j| < threshold_j) of draws shaped ``(chain, draw, p)``."""
    flat = draws.reshape(-1, draws.shape[-1])
    (low,), (high,) = draw_intervals(flat, [config.interval])
    return {
        "posterior_mean": flat.mean(axis=0),
        "posterior_median": np.quantile(flat, 0.5, axis=0),
        "interval_low": low,
        "interval_high": high,
        "p_near_zero": np.mean(np.abs(flat) < threshold, axis=0),
    }


def laplace_nuts(ds: Dataset, alphas, path: pd.DataFrame, config: Config, seeds):
    """NUTS under the Laplace prior (one compiled model) at ``alphas`` vs the sparse MAP at the same alpha."""
    n = len(ds.y)
    compiled = compile_nuts(
        laplace_regression(
            ds.X,
            ds.y,
            lasso_alpha=alphas[0],
            noise_sigma=ds.noise_sigma,
            feature_names=ds.feature_names,
        )
    )
    threshold = near_zero_threshold(ds, config)
    rows, posteriors = [], {}
    for alpha, seed in zip(alphas, seeds, strict=True):
        data = lasso_prior_data(lasso_alpha=alpha, noise_sigma=ds.noise_sigma, n_samples=n)
        idata = sample_nuts(
            compiled,
            seed=int(seed),
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            **data,
        )
        posteriors[alpha] = idata
        summary = posterior_summary(
            posterior_coefficients(idata, names=("beta",)), threshold, config
        )
        fit = path[
            (path.dataset == ds.name) & (path.alpha == alpha) & (path.feature != "intercept")
        ]
        prior_near_zero = 1.0 - np.exp(-threshold / data["laplace_b"])
        frame = pd.DataFrame(
            {
                "alpha": alpha,
                "feature": list(ds.feature_names),
                "true_coef": ds.true_coef[1:],
                "map_sparse": fit.map_sparse.to_numpy(),
                "threshold": threshold,
                "prior_p_near_zero": prior_near_zero,
                **summary,
            }
        )
        rows.append(frame.assign(**convergence(idata, var_names=["intercept", "beta"])._asdict()))
    return pd.concat(rows, ignore_index=True), posteriors


def support_table(ds: Dataset, estimates: dict, config: Config) -> pd.DataFrame:
    """Support recovery of the simulated truth, one row per method.

    ``estimates`` maps a method to a point estimate (selected: non-zero) or a posterior ``DataTree``
    (selected: the central ``config.interval`` excludes 0). ``p_near_zero_*``: the mean over true zeros (or
    non-zeros) of P(|beta_j| < threshold), an indicator for a point estimate.
    """
    truth = ds.true_coef[1:] != 0.0
    threshold = near_zero_threshold(ds, config)
    rows = []
    for method, estimate in estimates.items():
        if isinstance(estimate, np.ndarray):
            selected = estimate != 0.0
            near_zero, divergences = (np.abs(estimate) < threshold).astype(float), np.nan
        else:
            draws = posterior_coefficients(estimate, names=("beta",)).reshape(-1, len(truth))
            (low,), (high,) = draw_intervals(draws, [config.interval])
            selected = (low > 0.0) | (high < 0.0)
            near_zero = np.mean(np.abs(draws) < threshold, axis=0)
            divergences = int(estimate["sample_stats"]["diverging"].values.sum())
        recovery = support_recovery(selected, truth)
        rows.append(
            {"method": method}
            | recovery._asdict()
            | {
                "exact_support": recovery.false_positives == 0 and recovery.false_negatives == 0,
                "p_near_zero_true_zeros": float(np.mean(near_zero[~truth])),
                "p_near_zero_true_nonzeros": float(np.mean(near_zero[truth])),
                "divergences": divergences,
            }
        )
    return pd.DataFrame(rows).set_index("method")


class Result(NamedTuple):
    path: pd.DataFrame
    fits: pd.DataFrame
    elasticnet: pd.DataFrame
    nuts: pd.DataFrame
    support: pd.DataFrame
    posteriors: dict
    nuts_posteriors: dict
    true_coef: np.ndarray
    lasso_cv_alpha: float
    horseshoe: dict
    seconds: dict


def run(config: Config) -> Result:
    """The Lasso path on both data sets, ElasticNet points, NUTS on the sparse truth, the horseshoe contrast."""
    data_rng, seed_rng = np.random.default_rng(config.seed).spawn(2)
    n, p, k = config.sparse_shape
    sparse = sparse_truth(rng=data_rng, n_samples=n, n_features=p, n_nonzero=k)
    diabetes = datasets.diabetes()
    seeds = seed_rng.integers(2**31, size=len(config.nuts_fractions) + 2)
    seconds = {}

    start = time.perf_counter()
    cv = LassoCV(cv=config.cv_folds, tol=config.lasso_tol, max_iter=config.lasso_max_iter).fit(
        sparse.X, sparse.y
    )
    nuts_alphas = tuple(lasso_alpha_max(sparse.X, sparse.y) * np.asarray(config.nuts_fractions))
    tables = [
        lasso_path(diabetes, path_alphas(diabetes, config), config),
        lasso_path(sparse, path_alphas(sparse, config, (*nuts_alphas, cv.alpha_)), config),
    ]
    path = pd.concat([coef for coef, _, _ in tables], ignore_index=True)
    fits = pd.concat([fit for _, fit, _ in tables], ignore_index=True)
    # Seconds per alpha of the sparse MAP alone, after compiling (also in metadata.json, not in the tables).
    seconds["sparse_map_per_alpha"] = float(np.mean([per_alpha for _, _, per_alpha in tables]))
    seconds["path"] = time.perf_counter() - start

    start = time.perf_counter()
    elasticnet = pd.concat(
        [elasticnet_table(ds, config) for ds in (diabetes, sparse)], ignore_index=True
    )
    seconds["elasticnet"] = time.perf_counter() - start

    start = time.perf_counter()
    nuts, posteriors = laplace_nuts(sparse, (*nuts_alphas, cv.alpha_), path, config, seeds[:-1])
    seconds["nuts_laplace"] = time.perf_counter() - start

    start = time.perf_counter()
    horseshoe_model = regularized_horseshoe_regression(
        sparse.X,
        sparse.y,
        noise_sigma=sparse.noise_sigma,
        expected_nonzero=config.horseshoe_expected_nonzero,
        feature_names=sparse.feature_names,
    )
    horseshoe = sample_nuts(
        compile_nuts(horseshoe_model),
        seed=int(seeds[-1]),
        target_accept=HORSESHOE_TARGET_ACCEPT,
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
    )
    seconds["nuts_horseshoe"] = time.perf_counter() - start

    lasso_cv = path[
        (path.dataset == sparse.name) & (path.alpha == cv.alpha_) & (path.feature != "intercept")
    ]
    estimates = {
        "lasso_cv_map": lasso_cv.lasso.to_numpy(),
        "laplace_posterior": posteriors[cv.alpha_],
        "horseshoe_posterior": horseshoe,
    }
    support = support_table(sparse, estimates, config)
    horseshoe_diagnostics = convergence(horseshoe, var_names=["intercept", "beta", "tau"])._asdict()
    nuts = nuts.assign(cv_alpha=nuts.alpha == cv.alpha_)
    written = {"laplace": posteriors[cv.alpha_], "horseshoe": horseshoe}
    return Result(
        path,
        fits,
        elasticnet,
        nuts,
        support,
        written,
        posteriors,
        sparse.true_coef,
        float(cv.alpha_),
        horseshoe_diagnostics,
        seconds,
    )


def lasso_path_best_f1(path: pd.DataFrame, true_coef) -> tuple[float, float]:
    """The best support-recovery F1 of the Lasso anywhere on the path (an oracle: it knows the truth)."""
    truth = true_coef[1:] != 0.0
    best = (np.nan, -1.0)
    sparse_path = path[(path.dataset == "sparse_truth") & (path.feature != "intercept")]
    for alpha, fit in sparse_path.groupby("alpha"):
        f1 = support_recovery(fit.lasso.to_numpy() != 0.0, truth).f1
        best = max(best, (float(alpha), float(f1)), key=lambda item: item[1])
    return best


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Headline metrics and pass/fail checks against the issue's targets."""
    fits, nuts, support = result.fits, result.nuts, result.support
    enet = result.elasticnet
    enet_features = enet[enet.feature != "intercept"]
    enet_errors = enet.groupby(["dataset", "alpha", "l1_ratio"]).apply(
        lambda f: diagnostics.relative_error(f.map_sparse, f.elasticnet), include_groups=False
    )
    three = nuts[~nuts.cv_alpha]
    map_zero = three[three.map_sparse == 0.0]
    laplace_diag = nuts.drop_duplicates("alpha")
    hs = result.horseshoe
    metrics = {
        "lasso_zero_pattern_agreement": float(fits.zero_pattern_agreement.mean()),
        "lasso_max_abs_err_map": float(fits.max_abs_err.max()),
        "lasso_max_rel_err_nonzero_map": float(fits.max_rel_err_nonzero.max()),
        "lasso_max_kkt_violation_map": float(np.maximum(fits.kkt_nonzero, fits.kkt_zero).max()),
        "lasso_max_kkt_violation_sklearn": float(
            np.maximum(fits.lasso_kkt_nonzero, fits.lasso_kkt_zero).max()
        ),
        "lasso_max_n_iter_sklearn": int(fits.lasso_n_iter.max()),
        "map_default_zero_pattern_agreement": float(fits.default_zero_pattern_agreement.mean()),
        "map_default_max_abs_err": float(fits.default_max_abs_err.max()),
        "map_default_max_abs_at_lasso_zeros": float(fits.default_max_abs_at_zeros.max()),
        "map_default_median_rel_err_nonzero": float(fits.default_max_rel_err_nonzero.median()),
        "elasticnet_max_rel_err_map": float(enet_errors.max()),
        "elasticnet_zero_pattern_agreement": float(
            np.mean((enet_features.map_sparse == 0.0) == (enet_features.elasticnet == 0.0))
        ),
        "posterior_mass_near_zero": float(map_zero.p_near_zero.mean()),
        "posterior_mass_near_zero_max": float(map_zero.p_near_zero.max()),
        "prior_mass_near_zero": float(map_zero.prior_p_near_zero.mean()),
        "map_zeros_inside_90_interval": float(
            np.mean((map_zero.interval_low < 0.0) & (map_zero.interval_high > 0.0))
        ),
        "max_abs_map_minus_posterior_median_at_map_zeros": float(
            map_zero.posterior_median.abs().max()
        ),
        "laplace_nuts_rhat_max": float(laplace_diag.rhat_max.max()),
        "laplace_nuts_ess_bulk_min": float(laplace_diag.ess_bulk_min.min()),
        "laplace_nuts_divergences": int(laplace_diag.divergences.sum()),
        "horseshoe_rhat_max": hs["rhat_max"],
        "horseshoe_ess_bulk_min": hs["ess_bulk_min"],
        "horseshoe_divergences": hs["divergences"],
        "horseshoe_divergence_fraction": hs["divergences"] / (config.draws * config.chains),
        "lasso_cv_alpha": result.lasso_cv_alpha,
    }
    for method, row in support.iterrows():
        for column in (
            "true_positives",
            "false_positives",
            "false_negatives",
            "f1",
            "p_near_zero_true_zeros",
        ):
            metrics[f"support_{method}_{column}"] = row[column]
    best_alpha, best_f1 = lasso_path_best_f1(result.path, result.true_coef)
    metrics["support_lasso_path_best_f1"] = best_f1
    metrics["support_lasso_path_best_alpha"] = best_alpha
    sparse_fits = fits[fits.dataset == "sparse_truth"]
    metrics["n_path_fits"] = len(fits)
    metrics["n_lasso_coefficients_compared"] = int(
        len(result.path[result.path.feature != "intercept"])
    )
    metrics["n_nonzero_range_sparse"] = (
        f"{sparse_fits.n_nonzero.min()}-{sparse_fits.n_nonzero.max()}"
    )
    targets = {  # check: (metric, comparison, bound)
        "lasso_same_zero_pattern": ("lasso_zero_pattern_agreement", ">=", 1.0),
        "lasso_nonzero_within_1e-6_relative": ("lasso_max_rel_err_nonzero_map", "<=", 1e-6),
        "sparse_map_subgradient_conditions": ("lasso_max_kkt_violation_map", "<=", 1e-8),
        "sklearn_converged": ("lasso_max_n_iter_sklearn", "<=", config.lasso_max_iter - 1),
        "elasticnet_within_1e-6_relative": ("elasticnet_max_rel_err_map", "<=", 1e-6),
        "elasticnet_same_zero_pattern": ("elasticnet_zero_pattern_agreement", ">=", 1.0),
        "laplace_nuts_rhat": ("laplace_nuts_rhat_max", "<=", 1.01),
        "laplace_nuts_ess_bulk": ("laplace_nuts_ess_bulk_min", ">=", 400),
        "laplace_nuts_no_divergences": ("laplace_nuts_divergences", "<=", 0),
        "horseshoe_rhat": ("horseshoe_rhat_max", "<=", 1.01),
        "horseshoe_ess_bulk": ("horseshoe_ess_bulk_min", ">=", 400),
        # The horseshoe's funnel keeps a few divergent transitions even at target_accept 0.99 (0 to 1 per
        # 4 x 1,000 draws in 10 runs): they are reported, and fail the check beyond 1 in 1,000 draws.
        "horseshoe_divergences_rare": ("horseshoe_divergence_fraction", "<=", 1e-3),
    }
    checks = diagnostics.checks(
        {name: (metrics[metric], *bound) for name, (metric, *bound) in targets.items()}
    )
    return metrics, checks


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    m = metrics
    return [
        f"Over {m['n_path_fits']} Lasso fits along two paths (diabetes and a simulated sparse truth), "
        "the twin's sparse MAP reproduced the Lasso's zero pattern on "
        f"{m['lasso_zero_pattern_agreement']:.0%} of the coefficients and its non-zero coefficients to "
        f"{m['lasso_max_rel_err_nonzero_map']:.1e} relative; ElasticNet's to "
        f"{m['elasticnet_max_rel_err_map']:.1e}.",
        "PyMC's default find_MAP (L-BFGS-B on a non-smooth objective) matched that zero pattern on "
        f"{m['map_default_zero_pattern_agreement']:.0%} of the coefficients and left values up to "
        f"{m['map_default_max_abs_at_lasso_zeros']:.3g} where the Lasso has exact zeros (on diabetes, "
        "whose coefficients run to hundreds); its median relative error on the non-zeros was "
        f"{m['map_default_median_rel_err_nonzero']:.0%}.",
        "Under the same Laplace prior the posterior has no point mass at zero: where the MAP is exactly "
        "zero, P(|beta_j| < 0.1 standard error | y) averages "
        f"{m['posterior_mass_near_zero']:.2f}, against "
        f"{m['prior_mass_near_zero']:.2f} under the prior alone, and 0 lies inside the 90% interval for "
        f"{m['map_zeros_inside_90_interval']:.0%} of them.",
        "Recovering the simulated support (F1): the Lasso at the cross-validated alpha "
        f"{m['support_lasso_cv_map_f1']:.2f} ({m['support_lasso_cv_map_false_positives']} false "
        f"positives), the Laplace posterior's 90% intervals {m['support_laplace_posterior_f1']:.2f}, the "
        f"horseshoe's {m['support_horseshoe_posterior_f1']:.2f} (R-hat at most "
        f"{m['horseshoe_rhat_max']:.3f}, {m['horseshoe_divergences']} divergences); the best Lasso "
        f"anywhere on the path, picked knowing the truth, reaches {m['support_lasso_path_best_f1']:.2f}.",
    ]


def plot_path(path: pd.DataFrame):
    """The Lasso path per data set: lines = scikit-learn, dots = sparse MAP, crosses = default find_MAP."""
    datasets_ = list(dict.fromkeys(path.dataset))
    fig, axs = plt.subplots(1, len(datasets_), figsize=(13, 5))
    for ax, name in zip(np.atleast_1d(axs), datasets_, strict=True):
        fits = path[(path.dataset == name) & (path.feature != "intercept")]
        for color, (_, f) in zip(
            plt.cm.tab10.colors * 10, fits.groupby("feature", sort=False), strict=False
        ):
            ax.plot(f.alpha, f.lasso, color=color, linewidth=1)
            ax.plot(f.alpha, f.map_sparse, "o", color=color, markersize=3)
            ax.plot(f.alpha, f.map_default, "x", color="black", markersize=3, alpha=0.4)
        ax.set(
            xscale="log",
            xlabel="Lasso alpha (scikit-learn convention)",
            ylabel="coefficient",
            title=f"{name}: Lasso (lines), sparse MAP (dots),\nfind_MAP defaults (grey x)",
        )
    return fig


def density_features(nuts: pd.DataFrame, n_zero: int = 4, n_nonzero: int = 2) -> list[str]:
    """Features to draw: the truly non-zero ones with the smallest MAP at the middle path point, and the
    first truly zero ones that the MAP sets exactly to zero there."""
    three = nuts[~nuts.cv_alpha]
    middle = three[three.alpha == sorted(set(three.alpha))[len(set(three.alpha)) // 2]]
    nonzero = middle[middle.true_coef != 0.0].sort_values("map_sparse", key=np.abs)
    zero = middle[(middle.true_coef == 0.0) & (middle.map_sparse == 0.0)]
    return list(nonzero.feature[:n_nonzero]) + list(zero.feature[:n_zero])


def plot_posterior_vs_map(nuts: pd.DataFrame, posteriors: dict):
    """Posterior densities (NUTS, Laplace prior) of a few coefficients at the 3 path points, against the MAP:
    a red line where the MAP is exactly zero; the shaded band is |beta| < threshold."""
    three = nuts[~nuts.cv_alpha]
    alphas = sorted(set(three.alpha), reverse=True)
    features = density_features(nuts)
    all_features = list(dict.fromkeys(three.feature))
    fig, axs = plt.subplots(
        len(alphas),
        len(features),
        figsize=(2.6 * len(features), 2.3 * len(alphas)),
        sharex="col",
        squeeze=False,
    )
    for i, alpha in enumerate(alphas):
        f = three[three.alpha == alpha].set_index("feature")
        draws = posterior_coefficients(posteriors[alpha], names=("beta",)).reshape(
            -1, len(all_features)
        )
        for j, feature in enumerate(features):
            ax, row = axs[i, j], f.loc[feature]
            ax.hist(
                draws[:, all_features.index(feature)],
                bins=60,
                density=True,
                histtype="stepfilled",
                color="tab:blue",
                alpha=0.4,
            )
            ax.axvspan(-row.threshold, row.threshold, color="gray", alpha=0.3, linewidth=0)
            zero = row.map_sparse == 0.0
            ax.axvline(row.map_sparse, color="tab:red" if zero else "black", linewidth=2)
            ax.axvline(row.true_coef, color="tab:green", linestyle="--", linewidth=1)
            ax.set_title(
                f"{feature} (truth {row.true_coef:.2g}): MAP {'= 0' if zero else f'{row.map_sparse:.2g}'}"
                f"\nP(|beta| < thr | y) = {row.p_near_zero:.2f}",
                fontsize=8,
            )
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
        axs[i, 0].set_ylabel(f"alpha = {alpha:.3g}\nposterior density", fontsize=8)
    for ax in axs[-1]:
        ax.set_xlabel("coefficient", fontsize=8)
    fig.suptitle(
        "Laplace prior: the MAP (red line: exactly 0; black: non-zero) against the posterior density "
        "(NUTS);\ngrey band: |beta| < 0.1 standard error; dashed green: simulated truth",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_support(nuts: pd.DataFrame, horseshoe, support: pd.DataFrame, config: Config):
    """Truth, the Lasso at the cross-validated alpha, and the Laplace and horseshoe 90% intervals."""
    laplace = nuts[nuts.cv_alpha].reset_index(drop=True)
    draws = posterior_coefficients(horseshoe, names=("beta",)).reshape(-1, len(laplace))
    (low,), (high,) = draw_intervals(draws, [config.interval])
    fig, ax = plt.subplots(figsize=(13, 5))
    estimates = [
        Estimate("Lasso (CV alpha) = Laplace MAP", laplace.map_sparse, "black"),
        Estimate(
            "Laplace posterior median, 90% interval",
            laplace.posterior_median,
            "tab:orange",
            "_",
            laplace.interval_low,
            laplace.interval_high,
        ),
        Estimate(
            "horseshoe posterior median, 90% interval",
            np.quantile(draws, 0.5, axis=0),
            "tab:purple",
            "_",
            low,
            high,
        ),
    ]
    estimates_by_feature(ax, laplace.feature, estimates, truth=laplace.true_coef, spacing=0.2)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.set(xlabel="feature", ylabel="coefficient")
    f1 = support.f1
    ax.set_title(
        f"support recovery (F1): Lasso MAP {f1['lasso_cv_map']:.2f}, Laplace posterior interval "
        f"{f1['laplace_posterior']:.2f}, horseshoe interval {f1['horseshoe_posterior']:.2f}"
    )
    ax.legend(fontsize=8, ncol=2)
    return fig


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={
            "path.csv": result.path.set_index(["dataset", "alpha", "feature"]),
            "fits.csv": result.fits.set_index(["dataset", "alpha"]),
            "elasticnet.csv": result.elasticnet.set_index(
                ["dataset", "alpha", "l1_ratio", "feature"]
            ),
            "nuts.csv": result.nuts.set_index(["alpha", "feature"]),
            "support.csv": result.support,
        },
        figures={
            "path.png": plot_path(result.path),
            "posterior_vs_map.png": plot_posterior_vs_map(result.nuts, result.nuts_posteriors),
            "support.png": plot_support(
                result.nuts, result.posteriors["horseshoe"], result.support, config
            ),
        },
        posteriors={f"posterior_{name}.nc": idata for name, idata in result.posteriors.items()},
        config={"horseshoe_target_accept": HORSESHOE_TARGET_ACCEPT},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
