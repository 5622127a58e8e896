"""Where lambda comes from: cross-validation, empirical Bayes and Bayesian leave-one-out side by side.

Claim
    On diabetes and on a simulated data set drawn from the twin's own prior (``sigma = tau = 1``, so the true
    ``alpha`` is 1), three ways of choosing Ridge's ``alpha`` are three readings of one model:
    ``RidgeCV`` minimizes the exact leave-one-out squared error of the point prediction; ``BayesianRidge``
    climbs the evidence (its ``lambda_ / alpha_`` is the evidence maximum, and its ``coef_`` is
    ``Ridge(alpha=lambda_ / alpha_)``); and PSIS-LOO (NUTS on the fixed-alpha twin, across a grid) is the
    Bayesian leave-one-out predictive density, checked against its closed form. Each is a point choice; the
    whole posterior of ``alpha``, with priors on the scales, is ``hierarchical_alpha``.

Writes ``results/choosing_lambda/``
    ``criteria.csv``     one row per (dataset, alpha) of the fine grid: RidgeCV's LOO MSE, exact LOO MSE and
                         elpd, log evidence (profiled, unknown and known noise)
    ``loo.csv``          one row per (dataset, alpha) of the NUTS grid: PSIS-LOO elpd, exact elpd, Pareto k,
                         convergence
    ``choices.csv``      one row per (dataset, method): the alpha it chooses
    ``coefficients.csv`` one row per (dataset, method, feature): Ridge's coefficients at that alpha
    ``bayesian_ridge.csv`` BayesianRidge vs the evidence maximum, the gap taken apart
    ``criteria.png``, ``coefficients.png``; ``metadata.json``

Run
    python -m experiments.choosing_lambda            # published settings
    python -m experiments.choosing_lambda --fast     # smoke run (simulated data only)
"""

import sys
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV

from experiments import _cli
from experiments._plots import Estimate, estimates_by_feature
from models import data as datasets
from models import diagnostics
from models.diagnostics import relative_error
from models.evidence import (
    bayesian_ridge_gap,
    bayesian_ridge_gap_decades,
    criteria_path,
    psis_loo_against_exact,
)
from models.fit import compile_nuts
from models.linear import linear_regression
from models.measure import Stopwatch
from models.registry import ridge_reference

NAME = "choosing_lambda"
METHODS = ("ridgecv", "bayesianridge", "evidence_max", "loo_best")


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant.

    2 x 2,000 draws for every PSIS-LOO fit: with 2 x 1,000 the largest R-hat over the 15 fits sat on the
    1.01 bound (1.0099 on one machine, 1.0107 on another); ``python -m experiments.seed_study choosing_lambda``
    measures the failure rate of every check across seeds."""

    seed: int = 20261126
    datasets: tuple[str, ...] = ("diabetes", "well_conditioned")
    alphas: tuple[float, ...] = tuple(np.logspace(-6, 6, 241))
    loo_alphas: tuple[float, ...] = tuple(np.logspace(-4, 3, 15))
    loo_draws: int = 2000
    loo_tune: int = 1000
    chains: int = 2


FAST = Config(
    datasets=("well_conditioned",),
    alphas=tuple(np.logspace(-6, 6, 121)),
    loo_alphas=(1e-2, 1.0, 1e2),
    loo_draws=300,
    loo_tune=300,
)


def load(name: str, rng) -> datasets.Dataset:
    return datasets.diabetes() if name == "diabetes" else datasets.simulated(name, rng=rng)


def criteria_table(ds, alphas) -> tuple[pd.DataFrame, float]:
    """RidgeCV's leave-one-out MSE beside every closed-form criterion on the fine grid, and its choice."""
    ridgecv = RidgeCV(alphas=np.asarray(alphas), store_cv_results=True).fit(ds.X, ds.y)
    table = criteria_path(ds.X, ds.y, alphas, noise_sigma=ds.noise_sigma)
    table.insert(1, "ridgecv_loo_mse", ridgecv.cv_results_.mean(axis=0))
    return table, float(ridgecv.alpha_)


def coefficients_table(ds, choices: dict) -> pd.DataFrame:
    """Ridge's coefficients, intercept first, at the alpha each method chooses."""
    coef = {method: ridge_reference(ds.X, ds.y, ridge_alpha=choices[method]) for method in METHODS}
    table = pd.DataFrame(coef, index=pd.Index(["intercept", *ds.feature_names], name="feature"))
    return table.melt(var_name="method", value_name="coef", ignore_index=False).reset_index()


class DatasetResult(NamedTuple):
    criteria: pd.DataFrame
    loo: pd.DataFrame
    choices: pd.DataFrame
    coefficients: pd.DataFrame
    bayesian_ridge: pd.DataFrame
    true_coef: np.ndarray | None


TABLES = {
    "criteria": ["dataset", "alpha"],
    "loo": ["dataset", "alpha"],
    "choices": ["dataset", "method"],
    "coefficients": ["dataset", "method", "feature"],
    "bayesian_ridge": ["dataset", "quantity"],
}
"""The tables of :class:`DatasetResult`, each written as ``<name>.csv`` with this index (``dataset`` is
the key of :attr:`Result.per_dataset`)."""


class Result(NamedTuple):
    per_dataset: dict
    seconds: dict


def run(config: Config) -> Result:
    """Load the data sets, compile the fixed-alpha twin once (shared across data sets), and on each data set
    make every point choice of alpha. Each data set's NUTS seeds are the first ``len(config.loo_alphas)`` of
    its own stream; ``hierarchical_alpha`` draws the ones that follow (its ``nuts_streams``)."""
    data_rng, nuts_rng = np.random.default_rng(config.seed).spawn(2)
    data = [load(name, data_rng) for name in config.datasets]
    clock, seconds = Stopwatch(), dict.fromkeys(["compile", "closed_form", "psis_loo"], 0.0)
    compiled = compile_nuts(linear_regression(data[0].X, data[0].y, ridge_alpha=1.0))
    seconds["compile"] = clock.lap()
    per_dataset = {}
    for ds, seeds in zip(data, nuts_rng.spawn(len(data)), strict=True):
        _cli.progress(f"closed-form criteria, BayesianRidge and PSIS-LOO on {ds.name}")
        criteria, ridgecv_alpha = criteria_table(ds, config.alphas)
        bayesian_ridge = bayesian_ridge_gap(ds.X, ds.y)
        seconds["closed_form"] += clock.lap()
        loo_seeds = seeds.integers(2**31, size=len(config.loo_alphas))
        sampling = {"draws": config.loo_draws, "tune": config.loo_tune, "chains": config.chains}
        loo = psis_loo_against_exact(compiled, ds.X, ds.y, config.loo_alphas, loo_seeds, **sampling)
        seconds["psis_loo"] += clock.lap()
        choices = {
            "ridgecv": ridgecv_alpha,
            "bayesianridge": float(bayesian_ridge.alpha.iloc[0]),
            "evidence_max": float(bayesian_ridge.alpha.iloc[-1]),
            "loo_best": float(loo.alpha.iloc[int(np.argmax(loo.elpd_psis))]),
            "loo_exact_best": float(criteria.alpha.iloc[int(np.argmax(criteria.exact_loo_elpd))]),
        }
        choice_table = pd.DataFrame({"method": list(choices), "alpha": list(choices.values())})
        per_dataset[ds.name] = DatasetResult(
            criteria,
            loo,
            choice_table,
            coefficients_table(ds, choices),
            bayesian_ridge,
            ds.true_coef,
        )
    return Result(per_dataset, seconds)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Headline metrics per data set and pass/fail checks against the issue's targets."""
    metrics, targets = {}, {}
    spacing = float(np.log10(config.alphas[1] / config.alphas[0]))
    for name, r in result.per_dataset.items():
        choices = dict(zip(r.choices.method, r.choices.alpha, strict=True))
        br = r.bayesian_ridge.set_index("quantity")
        gaps = bayesian_ridge_gap_decades(br)
        c, loo = r.criteria, r.loo
        m = {
            "ridgecv_alpha": choices["ridgecv"],
            "bayesianridge_alpha": choices["bayesianridge"],
            "evidence_max_alpha": choices["evidence_max"],
            "loo_best_alpha": choices["loo_best"],
            "loo_exact_best_alpha": choices["loo_exact_best"],
            "bayesianridge_coef_rel_err": float(br.coef_rel_err_vs_ridge["bayesianridge"]),
            "bayesianridge_gap_decades": gaps["total"],
            "gap_from_tolerance_decades": gaps["tolerance"],
            "gap_from_hyperpriors_decades": gaps["hyperpriors"],
            "gap_from_n_vs_n_minus_1_decades": gaps["n_vs_n_minus_1"],
            "loo_best_exact_elpd_loss": float(
                c.exact_loo_elpd.max()
                - np.interp(np.log(choices["loo_best"]), np.log(c.alpha), c.exact_loo_elpd)
            ),
            "pareto_k_max": float(loo.pareto_k_max.max()),
            "n_pareto_k_above_good": int(loo.n_k_above_good.sum()),
            "max_abs_elpd_psis_minus_exact": float((loo.elpd_psis - loo.elpd_exact).abs().max()),
        }
        metrics |= {f"{name}_{key}": value for key, value in m.items()}
        targets |= {
            f"{name}_bayesianridge_coef_vs_ridge": (m["bayesianridge_coef_rel_err"], "<=", 1e-10),
            f"{name}_bayesianridge_within_grid_spacing": (abs(gaps["total"]), "<=", spacing),
            f"{name}_bayesianridge_converged_is_sklearn_objective_max": (
                gaps["converged_vs_objective_max"],
                "<=",
                1e-6,
            ),
            f"{name}_ridgecv_is_exact_loo_mse": (
                relative_error(c.ridgecv_loo_mse, c.exact_loo_mse),
                "<=",
                1e-8,
            ),
            # PSIS on 2 x 500 NUTS draws was off the exact elpd by 0.17 nats RMS (30 fits); 1 nat is ~6 RMS.
            f"{name}_psis_loo_vs_exact": (m["max_abs_elpd_psis_minus_exact"], "<=", 1.0),
            # k-hat is PSIS's own warning; exact LOO is known here, so the check on PSIS is the elpd above.
            # The largest k-hat over 15 fits x n points is a noisy extreme (0.53 +- 0.09 over 20 seeds on
            # well_conditioned, one seed above ArviZ's good_k = 0.7), so the bound is 1, past which the
            # importance ratios have no finite mean (Vehtari et al. 2024); the count above good_k is a metric.
            f"{name}_pareto_k": (m["pareto_k_max"], "<=", 1.0),
            f"{name}_loo_nuts_rhat": (float(loo.rhat_max.max()), "<=", 1.01),
            f"{name}_loo_nuts_ess_bulk": (float(loo.ess_bulk_min.min()), ">=", 400),
        }
    return metrics, diagnostics.checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics (one clause per data set)."""
    names = [
        key.removesuffix("_ridgecv_alpha") for key in metrics if key.endswith("_ridgecv_alpha")
    ]

    def clauses(template: str) -> str:
        """``template`` filled in with each data set's metrics (named without the data set's prefix)."""
        return "; ".join(
            template.format(
                name=name, **{k.removeprefix(f"{name}_"): v for k, v in metrics.items()}
            )
            for name in names
        )

    causes = ("tolerance", "hyperpriors")
    small = max(abs(metrics[f"{name}_gap_from_{c}_decades"]) for name in names for c in causes)
    return [
        "Alpha chosen on "
        + clauses(
            "{name}: RidgeCV {ridgecv_alpha:.3g}, BayesianRidge {bayesianridge_alpha:.3g}, evidence "
            "maximum {evidence_max_alpha:.3g}, best PSIS-LOO grid point {loo_best_alpha:.3g}"
        )
        + ".",
        "BayesianRidge's coefficients are Ridge's at its own alpha (relative error "
        + clauses("{bayesianridge_coef_rel_err:.1e} on {name}")
        + "), and its alpha sits "
        + clauses(
            "{bayesianridge_gap_decades:+.4f} decades from the evidence maximum on {name} "
            "({gap_from_n_vs_n_minus_1_decades:+.4f} from counting rows)"
        )
        + ": its objective counts n rows where the twin's evidence has n - 1, while its stopping "
        f"tolerance and Gamma hyperpriors move it by at most {small:.1e} decades.",
        "PSIS-LOO on NUTS draws is within "
        + clauses(
            "{max_abs_elpd_psis_minus_exact:.2f} nats on {name} (largest Pareto k {pareto_k_max:.2f})"
        )
        + " of the exact LOO elpd; the best point of its coarser grid ("
        + clauses("{loo_best_alpha:.3g} on {name}, the exact LOO's {loo_exact_best_alpha:.3g}")
        + ") costs "
        + clauses("{loo_best_exact_elpd_loss:.2f} nats on {name}")
        + " of exact elpd: the elpd is flat near its maximum.",
    ]


MARKERS = {
    "ridgecv": ("RidgeCV", "tab:blue", "o"),
    "bayesianridge": ("BayesianRidge", "tab:orange", "s"),
    "evidence_max": ("evidence max", "tab:green", "D"),
    "loo_best": ("PSIS-LOO best", "tab:red", "^"),
}


def plot_coefficients(result: Result):
    """Ridge's coefficients under each choice of alpha, side by side, and the truth where it is known."""
    items = list(result.per_dataset.items())
    fig, axs = plt.subplots(len(items), 1, figsize=(11, 4.2 * len(items)), squeeze=False)
    for ax, (name, r) in zip(axs[:, 0], items, strict=True):
        coefs = r.coefficients[r.coefficients.feature != "intercept"]
        estimates = []
        for method in METHODS:
            label, color, marker = MARKERS[method]
            estimates.append(Estimate(label, coefs.coef[coefs.method == method], color, marker))
        truth = None if r.true_coef is None else r.true_coef[1:]
        features = list(dict.fromkeys(coefs.feature))
        estimates_by_feature(ax, features, estimates, truth=truth, truth_color="purple")
        ax.set(ylabel="coefficient (per unit of the feature)", title=name)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axs[-1, 0].set_xlabel("feature")
    fig.suptitle("Coefficients under each choice of alpha")
    fig.tight_layout()
    return fig


def plot_criteria(result: Result):
    """The criteria across alpha: log evidence and LOO elpd (exact curve, PSIS points), RidgeCV's MSE."""
    items = list(result.per_dataset.items())
    fig, axs = plt.subplots(
        2, len(items), figsize=(6.5 * len(items), 8), squeeze=False, sharex="col"
    )
    for j, (name, r) in enumerate(items):
        c, loo = r.criteria, r.loo
        ax = axs[0, j]
        for column, label in [
            ("log_evidence_profiled", "log evidence (noise profiled)"),
            ("log_evidence_unknown", "log evidence (noise integrated)"),
            ("exact_loo_elpd", "LOO elpd (exact)"),
        ]:
            ax.plot(c.alpha, c[column] - c[column].max(), label=label)
        se = float(loo.elpd_se.median())
        label = f"PSIS-LOO elpd (NUTS); its SE across data ~{se:.0f} nats"
        psis = loo.elpd_psis - c.exact_loo_elpd.max()
        ax.plot(loo.alpha, psis, "o", color="tab:red", markersize=5, label=label)
        ax.set(xscale="log", ylim=(-60, 5), ylabel="nats below each curve's maximum", title=name)
        ax.legend(fontsize=8, loc="lower left")
        ax = axs[1, j]
        ax.plot(c.alpha, c.ridgecv_loo_mse, color="tab:blue", label="RidgeCV LOO MSE")
        ridgecv = r.choices.alpha[r.choices.method == "ridgecv"].item()
        ax.axvline(ridgecv, color="tab:blue", linestyle="--", label="RidgeCV alpha")
        ax.set(
            xscale="log", xlabel="Ridge alpha", ylabel="LOO mean squared error (y units squared)"
        )
        ax.legend(fontsize=8)
    fig.suptitle("Choosing alpha: evidence, Bayesian LOO and RidgeCV's LOO error across the grid")
    fig.tight_layout()
    return fig


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={
            f"{table}.csv": pd.concat(
                {name: getattr(r, table) for name, r in result.per_dataset.items()},
                names=["dataset"],
            )
            .reset_index("dataset")
            .set_index(index)
            for table, index in TABLES.items()
        },
        figures={
            "criteria.png": plot_criteria(result),
            "coefficients.png": plot_coefficients(result),
        },
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
