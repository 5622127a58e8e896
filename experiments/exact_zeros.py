"""The Lasso's exact zeros against the Laplace posterior, which has no mass at zero.

Claim
    ``Lasso(alpha)`` is the mode of the Laplace twin (``lasso_laplace``); its exact zeros are a property of the
    mode, not of the posterior. On a simulated sparse truth (known noise), at three points of the Lasso path and
    at LassoCV's alpha, NUTS on the twin (R-hat <= 1.01, bulk ESS >= 400, no divergences) gives continuous
    posterior densities with no point mass at zero: where the MAP is exactly zero, 0 lies inside the central
    90% interval and the posterior probability of ``|beta_j| < 0.1`` standard error is reported against the
    prior's. The support these posteriors and the Lasso select is ``sparse_support``.

Writes ``results/exact_zeros/``
    ``nuts.csv``         one row per (alpha, coefficient): MAP vs posterior mean, median, 90% interval,
                         P(|beta_j| < threshold) under the posterior and the prior, NUTS diagnostics
                         (``cv_alpha``: the row is at LassoCV's alpha, not one of the three path points)
    ``posterior_vs_map.png``  the MAP's exact zeros against the posterior densities at 3 path points
    ``metadata.json``    config, seed, versions, seconds, checks, metrics

Run
    python -m experiments.exact_zeros            # published settings
    python -m experiments.exact_zeros --fast     # smoke run
"""

import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LassoCV

from experiments import _cli
from models import diagnostics
from models.calibration import draw_intervals
from models.data import Dataset
from models.diagnostics import convergence
from models.fit import coefficients, posterior_coefficients
from models.sparse import (
    SparseMAP,
    laplace_posteriors,
    laplace_twin,
    lasso_alpha_max,
    lasso_path_alphas,
    lasso_path_data,
    near_zero_threshold,
    sparse_truth,
    warm_started_path,
)

NAME = "exact_zeros"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant. Alphas are fractions of ``alpha_max`` (the
    smallest alpha whose Lasso fit is all zeros); the path is ``lasso_laplace``'s on the simulated data."""

    seed: int = 20261126
    n_path: int = 25
    path_decades: float = 3.0
    nuts_fractions: tuple[float, ...] = (0.3, 0.1, 0.03)
    sparse_shape: tuple[int, int, int] = (100, 40, 5)
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
    draws=300,
    tune=300,
    chains=2,
    sparse_shape=(100, 20, 4),
)


def sparse_maps(ds: Dataset, path_alphas, alphas) -> dict:
    """The sparse MAP's coefficients at ``alphas``, found on the path ``lasso_laplace`` walks (warm-started
    through ``path_alphas``), so that they are its MAPs to the last digit."""
    sparse_map = SparseMAP(laplace_twin(ds, path_alphas[0]))
    path = warm_started_path(sparse_map, lasso_path_data(ds, path_alphas))
    maps = {
        alpha: coefficients(values)[1:] for alpha, values in zip(path_alphas, path, strict=True)
    }
    return {alpha: maps[alpha] for alpha in alphas}


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


def nuts_table(ds: Dataset, maps: dict, posteriors: dict, config: Config) -> pd.DataFrame:
    """One row per (alpha, coefficient): the MAP, the posterior's summary, the prior's mass near zero
    (``P(|beta| < t) = 1 - exp(-t / b)`` under ``Laplace(0, b)``) and the fit's convergence diagnostics."""
    threshold = near_zero_threshold(ds.X, ds.noise_sigma, config.near_zero_se)
    rows = []
    for (alpha, idata), data in zip(
        posteriors.items(), lasso_path_data(ds, posteriors), strict=True
    ):
        summary = posterior_summary(
            posterior_coefficients(idata, names=("beta",)), threshold, config
        )
        frame = pd.DataFrame(
            {
                "alpha": alpha,
                "feature": list(ds.feature_names),
                "true_coef": ds.true_coef[1:],
                "map_sparse": maps[alpha],
                "threshold": threshold,
                "prior_p_near_zero": 1.0 - np.exp(-threshold / data["laplace_b"]),
                **summary,
            }
        )
        rows.append(frame.assign(**convergence(idata, var_names=["intercept", "beta"])._asdict()))
    return pd.concat(rows, ignore_index=True)


class Result(NamedTuple):
    nuts: pd.DataFrame
    posteriors: dict
    seconds: dict


def run(config: Config) -> Result:
    """The sparse MAP and NUTS under the Laplace prior at the path points and at LassoCV's alpha."""
    data_rng, seed_rng = np.random.default_rng(config.seed).spawn(2)
    n, p, k = config.sparse_shape
    sparse = sparse_truth(rng=data_rng, n_samples=n, n_features=p, n_nonzero=k)
    # One seed per alpha; the last of the stream is sparse_support's horseshoe's.
    seeds = seed_rng.integers(2**31, size=len(config.nuts_fractions) + 2)[:-1]
    seconds = {}

    start = time.perf_counter()
    cv = LassoCV(cv=config.cv_folds, tol=config.lasso_tol, max_iter=config.lasso_max_iter).fit(
        sparse.X, sparse.y
    )
    nuts_alphas = tuple(lasso_alpha_max(sparse.X, sparse.y) * np.asarray(config.nuts_fractions))
    alphas = (*nuts_alphas, cv.alpha_)
    path_alphas = lasso_path_alphas(
        sparse.X, sparse.y, n_path=config.n_path, decades=config.path_decades, extra=alphas
    )
    maps = sparse_maps(sparse, path_alphas, alphas)
    seconds["sparse_map"] = time.perf_counter() - start

    _cli.progress(f"NUTS under the Laplace prior at {len(alphas)} alphas")
    start = time.perf_counter()
    sampling = {"draws": config.draws, "tune": config.tune, "chains": config.chains}
    posteriors = laplace_posteriors(sparse, alphas, seeds, **sampling)
    seconds["nuts_laplace"] = time.perf_counter() - start
    nuts = nuts_table(sparse, maps, posteriors, config)
    return Result(nuts.assign(cv_alpha=nuts.alpha == cv.alpha_), posteriors, seconds)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """The posterior where the MAP is exactly zero (the path points), and NUTS diagnostics at every alpha."""
    nuts = result.nuts
    three = nuts[~nuts.cv_alpha]
    map_zero = three[three.map_sparse == 0.0]
    laplace_diag = nuts.drop_duplicates("alpha")
    metrics = {
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
    }
    checks = diagnostics.checks(
        {
            "laplace_nuts_rhat": (metrics["laplace_nuts_rhat_max"], "<=", 1.01),
            "laplace_nuts_ess_bulk": (metrics["laplace_nuts_ess_bulk_min"], ">=", 400),
            "laplace_nuts_no_divergences": (metrics["laplace_nuts_divergences"], "<=", 0),
        }
    )
    return metrics, checks


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    m = metrics
    return [
        "Under the Laplace prior whose mode is the Lasso, the posterior has no point mass at zero: where "
        "the MAP is exactly zero, P(|beta_j| < 0.1 standard error | y) averages "
        f"{m['posterior_mass_near_zero']:.2f} (at most {m['posterior_mass_near_zero_max']:.2f}), and 0 "
        f"lies inside the 90% interval for {m['map_zeros_inside_90_interval']:.0%} of them.",
        f"Under the prior alone that probability averages {m['prior_mass_near_zero']:.2f}: on average "
        "the data move these coefficients neither toward zero nor away from it, and their posterior "
        f"medians sit within {m['max_abs_map_minus_posterior_median_at_map_zeros']:.2g} of the MAP's 0.",
        f"NUTS at every alpha: R-hat at most {m['laplace_nuts_rhat_max']:.3f}, bulk ESS at "
        f"least {m['laplace_nuts_ess_bulk_min']:.0f}, {m['laplace_nuts_divergences']} divergences.",
    ]


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


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={"nuts.csv": result.nuts.set_index(["alpha", "feature"])},
        figures={"posterior_vs_map.png": plot_posterior_vs_map(result.nuts, result.posteriors)},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
