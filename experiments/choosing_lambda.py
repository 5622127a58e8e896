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
import time
from dataclasses import dataclass
from typing import NamedTuple

import arviz_stats as azs
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import BayesianRidge, RidgeCV

from experiments import _cli
from experiments._plots import Estimate, estimates_by_feature
from models import data as datasets
from models import diagnostics
from models.diagnostics import convergence, relative_error
from models.evidence import Evidence, bayesian_ridge_objective_argmax, exact_loo
from models.fit import compile_nuts, intercept_first, sample_nuts
from models.linear import linear_regression
from models.loglik import with_log_likelihood
from models.registry import ridge_reference

NAME = "choosing_lambda"
METHODS = ("ridgecv", "bayesianridge", "evidence_max", "loo_best")


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant.

    2 x 2,000 draws for every PSIS-LOO fit: with 2 x 1,000 the largest R-hat over the 15 LOO fits sat on the 1.01
    bound (1.0099 on one machine, 1.0107 on another); ``python -m experiments.seed_study choosing_lambda``
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
    """Every closed-form criterion on the fine grid, and RidgeCV's choice."""
    alphas = np.asarray(alphas)
    ridgecv = RidgeCV(alphas=alphas, store_cv_results=True).fit(ds.X, ds.y)
    evidence = Evidence(ds.X, ds.y)
    loo = [exact_loo(ds.X, ds.y, ridge_alpha=a) for a in alphas]
    table = pd.DataFrame(
        {
            "dataset": ds.name,
            "alpha": alphas,
            "ridgecv_loo_mse": ridgecv.cv_results_.mean(axis=0),
            "exact_loo_mse": [np.mean(result.residual**2) for result in loo],
            "exact_loo_elpd": [result.elpd_i.sum() for result in loo],
            "log_evidence_profiled": evidence.profiled_noise(alphas),
            "log_evidence_unknown": evidence.unknown_noise(alphas),
            "log_evidence_known": evidence.known_noise(alphas, ds.noise_sigma),
        }
    )
    return table, float(ridgecv.alpha_)


def bayesian_ridge_table(ds) -> pd.DataFrame:
    """BayesianRidge at defaults and run to convergence, and the evidence maximum, with the gap taken apart:
    its own objective's maximum with and without its Gamma hyperpriors (``sklearn_objective_max*``)."""
    evidence = Evidence(ds.X, ds.y)
    default = BayesianRidge().fit(ds.X, ds.y)
    tight = BayesianRidge(tol=1e-14, max_iter=100_000).fit(ds.X, ds.y)
    alpha = default.lambda_ / default.alpha_
    start = np.log([tight.alpha_, tight.lambda_])
    rows = {
        "bayesianridge": alpha,
        "bayesianridge_converged": tight.lambda_ / tight.alpha_,
        "sklearn_objective_max": bayesian_ridge_objective_argmax(evidence, start, hyperprior=1e-6),
        "sklearn_objective_max_flat": bayesian_ridge_objective_argmax(
            evidence, start, hyperprior=0.0
        ),
        "evidence_max": evidence.maximize("profiled"),
    }
    table = pd.DataFrame({"dataset": ds.name, "quantity": list(rows), "alpha": list(rows.values())})
    table["log10_alpha_minus_evidence_max"] = np.log10(table.alpha / rows["evidence_max"])
    table["coef_rel_err_vs_ridge"] = np.nan
    table.loc[0, "coef_rel_err_vs_ridge"] = relative_error(
        intercept_first(default),
        ridge_reference(ds.X, ds.y, ridge_alpha=alpha),
    )
    table["n_iter"] = [default.n_iter_, tight.n_iter_, np.nan, np.nan, np.nan]
    return table


def loo_table(compiled, ds, config: Config, seeds) -> pd.DataFrame:
    """PSIS-LOO of NUTS fits of the unknown-noise twin across ``config.loo_alphas`` vs the exact LOO."""
    rows = []
    for alpha, seed in zip(config.loo_alphas, seeds, strict=True):
        idata = sample_nuts(
            compiled,
            seed=int(seed),
            draws=config.loo_draws,
            tune=config.loo_tune,
            chains=config.chains,
            X=ds.X,
            y_observed=ds.y,
            sample_weight=np.ones(ds.y.size),
            ridge_alpha=np.asarray(alpha, dtype=float),
        )
        loo = azs.loo(with_log_likelihood(idata, ds.X, ds.y), pointwise=True)
        k = loo.pareto_k.values
        rows.append(
            {"dataset": ds.name, "alpha": alpha, "elpd_psis": loo.elpd, "elpd_se": loo.se}
            | {"p_loo": loo.p, "elpd_exact": exact_loo(ds.X, ds.y, ridge_alpha=alpha).elpd_i.sum()}
            | {"pareto_k_max": k.max(), "n_k_above_good": int(np.sum(k > loo.good_k))}
            | {"good_k": loo.good_k}
            | convergence(idata)._asdict()
        )
    return pd.DataFrame(rows)


def coefficients_table(ds, choices: dict) -> pd.DataFrame:
    """Ridge's coefficients, intercept first, at the alpha each method chooses."""
    names = ("intercept", *ds.feature_names)
    rows = []
    for method in METHODS:
        values = ridge_reference(ds.X, ds.y, ridge_alpha=choices[method])
        rows += [
            {"dataset": ds.name, "method": method, "feature": f, "coef": v}
            for f, v in zip(names, values, strict=True)
        ]
    return pd.DataFrame(rows)


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
"""The tables of :class:`DatasetResult`, each written as ``<name>.csv`` with this index."""


class Result(NamedTuple):
    per_dataset: dict
    seconds: dict


def analyze(ds, config: Config, compiled, seeds, seconds) -> DatasetResult:
    """Every point choice of alpha on one data set, and Ridge's coefficients at each."""
    start = time.perf_counter()
    criteria, ridgecv_alpha = criteria_table(ds, config.alphas)
    bayesian_ridge = bayesian_ridge_table(ds)
    seconds["closed_form"] += time.perf_counter() - start

    start = time.perf_counter()
    loo_seeds = seeds.integers(2**31, size=len(config.loo_alphas))
    loo = loo_table(compiled, ds, config, loo_seeds)
    seconds["psis_loo"] += time.perf_counter() - start

    choices = {
        "ridgecv": ridgecv_alpha,
        "bayesianridge": float(bayesian_ridge.alpha.iloc[0]),
        "evidence_max": float(bayesian_ridge.alpha.iloc[-1]),
        "loo_best": float(loo.alpha.iloc[int(np.argmax(loo.elpd_psis))]),
        "loo_exact_best": float(criteria.alpha.iloc[int(np.argmax(criteria.exact_loo_elpd))]),
    }
    choice_table = pd.DataFrame(
        {"dataset": ds.name, "method": list(choices), "alpha": list(choices.values())}
    )
    return DatasetResult(
        criteria,
        loo,
        choice_table,
        coefficients_table(ds, choices),
        bayesian_ridge,
        ds.true_coef,
    )


def run(config: Config) -> Result:
    """Load the data sets, compile the fixed-alpha twin once (shared across data sets), analyze each.

    The NUTS seeds of each data set are the first ``len(config.loo_alphas)`` of its own stream;
    ``hierarchical_alpha`` draws the ones that follow (:func:`experiments.hierarchical_alpha.nuts_streams`).
    """
    data_rng, nuts_rng = np.random.default_rng(config.seed).spawn(2)
    data = [load(name, data_rng) for name in config.datasets]
    seconds = dict.fromkeys(["compile", "closed_form", "psis_loo"], 0.0)
    start = time.perf_counter()
    compiled = compile_nuts(linear_regression(data[0].X, data[0].y, ridge_alpha=1.0))
    seconds["compile"] = time.perf_counter() - start
    streams = nuts_rng.spawn(len(data))
    per_dataset = {
        ds.name: analyze(ds, config, compiled, rng, seconds)
        for ds, rng in zip(data, streams, strict=True)
    }
    return Result(per_dataset, seconds)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Headline metrics per data set and pass/fail checks against the issue's targets."""
    metrics, targets = {}, {}
    spacing = float(np.log10(config.alphas[1] / config.alphas[0]))
    for name, r in result.per_dataset.items():
        choices = dict(zip(r.choices.method, r.choices.alpha, strict=True))
        br = r.bayesian_ridge.set_index("quantity")
        gap = float(br.log10_alpha_minus_evidence_max["bayesianridge"])
        converged_gap = abs(
            float(np.log10(br.alpha["bayesianridge_converged"] / br.alpha["sklearn_objective_max"]))
        )
        m = {
            "ridgecv_alpha": choices["ridgecv"],
            "bayesianridge_alpha": choices["bayesianridge"],
            "evidence_max_alpha": choices["evidence_max"],
            "loo_best_alpha": choices["loo_best"],
            "loo_exact_best_alpha": choices["loo_exact_best"],
            "bayesianridge_coef_rel_err": float(br.coef_rel_err_vs_ridge["bayesianridge"]),
            "bayesianridge_gap_decades": gap,
            "gap_from_tolerance_decades": float(
                np.log10(br.alpha["bayesianridge"] / br.alpha["bayesianridge_converged"])
            ),
            "gap_from_hyperpriors_decades": float(
                np.log10(br.alpha["sklearn_objective_max"] / br.alpha["sklearn_objective_max_flat"])
            ),
            "gap_from_n_vs_n_minus_1_decades": float(
                br.log10_alpha_minus_evidence_max["sklearn_objective_max_flat"]
            ),
            "loo_best_exact_elpd_loss": float(
                r.criteria.exact_loo_elpd.max()
                - np.interp(
                    np.log(choices["loo_best"]), np.log(r.criteria.alpha), r.criteria.exact_loo_elpd
                )
            ),
            "pareto_k_max": float(r.loo.pareto_k_max.max()),
            "n_pareto_k_above_good": int(r.loo.n_k_above_good.sum()),
            "max_abs_elpd_psis_minus_exact": float(
                (r.loo.elpd_psis - r.loo.elpd_exact).abs().max()
            ),
        }
        metrics |= {f"{name}_{key}": value for key, value in m.items()}
        criteria = r.criteria
        targets |= {
            f"{name}_bayesianridge_coef_vs_ridge": (m["bayesianridge_coef_rel_err"], "<=", 1e-10),
            f"{name}_bayesianridge_within_grid_spacing": (abs(gap), "<=", spacing),
            f"{name}_bayesianridge_converged_is_sklearn_objective_max": (converged_gap, "<=", 1e-6),
            f"{name}_ridgecv_is_exact_loo_mse": (
                relative_error(criteria.ridgecv_loo_mse, criteria.exact_loo_mse),
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
            f"{name}_loo_nuts_rhat": (float(r.loo.rhat_max.max()), "<=", 1.01),
            f"{name}_loo_nuts_ess_bulk": (float(r.loo.ess_bulk_min.min()), ">=", 400),
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

    small = max(
        abs(metrics[f"{name}_gap_from_{cause}_decades"])
        for name in names
        for cause in ("tolerance", "hyperpriors")
    )
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
        ax.plot(
            loo.alpha,
            loo.elpd_psis - c.exact_loo_elpd.max(),
            "o",
            color="tab:red",
            markersize=5,
            label=f"PSIS-LOO elpd (NUTS); its SE across data ~{se:.0f} nats",
        )
        ax.set(xscale="log", ylim=(-60, 5), ylabel="nats below each curve's maximum", title=name)
        ax.legend(fontsize=8, loc="lower left")
        ax = axs[1, j]
        ax.plot(c.alpha, c.ridgecv_loo_mse, color="tab:blue", label="RidgeCV LOO MSE")
        ax.axvline(
            dict(zip(r.choices.method, r.choices.alpha, strict=True))["ridgecv"],
            color="tab:blue",
            linestyle="--",
            label="RidgeCV alpha",
        )
        ax.set(
            xscale="log", xlabel="Ridge alpha", ylabel="LOO mean squared error (units of y squared)"
        )
        ax.legend(fontsize=8)
    fig.suptitle("Choosing alpha: evidence, Bayesian LOO and RidgeCV's LOO error across the grid")
    fig.tight_layout()
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
            "criteria.png": plot_criteria(result),
            "coefficients.png": plot_coefficients(result),
        },
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
