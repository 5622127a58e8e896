"""Every supported estimator has a twin: its MAP is the estimator on real and ill-conditioned tables.

Claim
    For each estimator :func:`models.twin.fit_twin` supports, fitted on a bundled data set, on simulated designs
    built to break solvers (columns 1e6 apart in scale, near-collinear columns) and on a raw table (a year, an
    income and an age, as a user's CSV has them), the twin's MAP equals the estimator refitted to tight
    tolerance (relative error <= 1e-8 for Ridge-type models, <= 1e-6 otherwise), or, for the l1 logistic
    regression, which only saga fits, satisfies scikit-learn's subgradient conditions to 1e-6; every NUTS
    posterior passes its convergence checks (R-hat <= 1.01, bulk ESS >= 400, no divergences).

Two side-by-side measurements explain two design choices of :mod:`models.twin`:

* NUTS on the raw table's columns (a year ~2010, an income ~2e4) against NUTS in standardized coordinates, the
  same posterior (``sampling.csv``): the raw coordinates defeat it.
* saga at several tolerances against the l1 logistic MAP (``saga.csv``): saga's error shrinks about as fast as
  its tolerance, slowly, which is why it cannot serve as the reference.

Writes ``results/twin_panel/``
    ``cases.csv``     per case: MAP vs estimator and vs reference (or KKT), posterior kind, R-hat, ESS, seconds
    ``sampling.csv``  raw vs standardized coordinates: R-hat, ESS, divergences, seconds, per seed
    ``saga.csv``      saga's tolerance, iterations, seconds and distance from the l1 MAP (30 features, C = 1)
    ``map_error.png`` the MAP's distance from each estimator against its tolerance
    ``metadata.json`` config, seed, versions, seconds, checks, metrics

Run
    python -m experiments.twin_panel [--fast] [--seed N] [--out DIR]
"""

import sys
import time
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.special
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    Lasso,
    LassoCV,
    LogisticRegression,
    PoissonRegressor,
    QuantileRegressor,
    Ridge,
    RidgeClassifier,
    RidgeCV,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments import _cli
from models import data as datasets
from models import glm
from models.diagnostics import checks as make_checks
from models.diagnostics import convergence, relative_error
from models.fit import coefficients, compile_nuts, sample_nuts
from models.registry import KINDS
from models.sparse import SparseMAP
from models.twin import fit_twin

NAME = "twin_panel"


@dataclass(frozen=True)
class Config:
    """Settings; :data:`FAST` is the smoke-run variant (four cases, shorter warm-up, one seed).

    2,000 draws per chain: the l1 logistic posterior (Laplace kinks at zero) gave a bulk ESS of 325 from 2 x
    1,000 draws on breast_cancer, under the 400 checked."""

    seed: int = 20261126
    draws: int = 2000
    tune: int = 1000
    chains: int = 2
    sampling_seeds: tuple[int, ...] = (1, 2, 3)
    saga_tols: tuple[float, ...] = (1e-4, 1e-6, 1e-8)
    fast: bool = False


FAST = Config(draws=300, tune=300, sampling_seeds=(1,), saga_tols=(1e-4, 1e-6), fast=True)


def raw_table(rng: np.random.Generator, n: int = 200):
    """A table as users have them: a year (2000-2020), an income (log-normal, ~2e4) and an age (20-70).

    Returns the features, a binary outcome and a count outcome, both driven by the centered features.
    """
    year = rng.integers(2000, 2021, n).astype(float)
    income = rng.lognormal(10.0, 0.5, n)
    age = rng.uniform(20.0, 70.0, n)
    X = pd.DataFrame({"year": year, "income": income, "age": age})
    eta = 0.1 * (year - 2010) + 2e-5 * (income - 22_000) - 0.02 * (age - 45)
    clicked = (rng.random(n) < scipy.special.expit(eta)).astype(float)
    visits = rng.poisson(np.exp(0.5 + 0.5 * eta)).astype(float)
    return X, clicked, visits


def tables(rng: np.random.Generator) -> dict:
    """Name -> (features, response) for every case's data."""
    diabetes = datasets.diabetes()
    cancer = load_breast_cancer(as_frame=True)
    raw, clicked, visits = raw_table(rng)
    out = {
        "diabetes": (pd.DataFrame(diabetes.X, columns=diabetes.feature_names), diabetes.y),
        "breast_cancer_10": (cancer.data.iloc[:, :10], cancer.target.to_numpy(dtype=float)),
        "raw_table_clicked": (raw, clicked),
        "raw_table_visits": (raw, visits),
    }
    for design in ("badly_scaled", "collinear"):
        table = datasets.simulated(design, rng=rng)
        out[design] = (pd.DataFrame(table.X, columns=table.feature_names), table.y)
    return out


def cases(config: Config) -> list[tuple[str, str, object]]:
    """``(table, label, estimator)`` for every case; the fast run keeps one per family. saga is seeded (it
    visits the rows in a random order): same seed, same numbers."""
    tight = dict(tol=1e-12, max_iter=1_000_000)
    newton = dict(solver="newton-cholesky", tol=1e-12, max_iter=10_000)
    panel = [
        ("diabetes", "Ridge", Ridge(alpha=1.0)),
        ("badly_scaled", "Ridge", Ridge(alpha=0.1)),
        ("collinear", "Ridge", Ridge(alpha=1e-3)),
        ("diabetes", "RidgeCV", RidgeCV(alphas=np.logspace(-4, 2, 25))),
        ("diabetes", "BayesianRidge", BayesianRidge(tol=1e-10)),
        ("diabetes", "ARDRegression", ARDRegression()),
        ("diabetes", "Lasso", Lasso(alpha=0.5, **tight)),
        ("diabetes", "LassoCV", LassoCV(cv=5, **tight)),
        ("badly_scaled", "ElasticNet", ElasticNet(alpha=0.05, l1_ratio=0.5, **tight)),
        ("breast_cancer_10", "LogisticRegression l2", LogisticRegression(C=1.0, **newton)),
        ("breast_cancer_10", "RidgeClassifier", RidgeClassifier(alpha=1.0)),
        (
            "breast_cancer_10",
            "scaled LogisticRegression l1",
            make_pipeline(
                StandardScaler(),
                LogisticRegression(
                    C=0.1, l1_ratio=1.0, solver="saga", random_state=config.seed, **tight
                ),
            ),
        ),
        (
            "breast_cancer_10",
            "scaled LogisticRegression elastic net",
            make_pipeline(
                StandardScaler(),
                LogisticRegression(
                    C=0.1, l1_ratio=0.5, solver="saga", random_state=config.seed, **tight
                ),
            ),
        ),
        ("raw_table_clicked", "LogisticRegression l2", LogisticRegression(C=1.0, **newton)),
        ("raw_table_clicked", "LogisticRegression C=inf", LogisticRegression(C=np.inf, **newton)),
        ("raw_table_visits", "PoissonRegressor", PoissonRegressor(alpha=1e-4, **newton)),
        ("diabetes", "QuantileRegressor q=0.9", QuantileRegressor(quantile=0.9, alpha=1e-3)),
    ]
    if config.fast:
        keep = {
            ("diabetes", "Ridge"),
            ("diabetes", "Lasso"),
            ("breast_cancer_10", "scaled LogisticRegression l1"),
            ("raw_table_visits", "PoissonRegressor"),
        }
        panel = [case for case in panel if case[:2] in keep]
    return panel


def run_cases(config: Config, data: dict) -> pd.DataFrame:
    rows = []
    for table, label, estimator in cases(config):
        _cli.progress(f"{label} on {table}")
        X, y = data[table]
        start = time.perf_counter()
        fit = fit_twin(
            estimator,
            X,
            y,
            seed=config.seed,
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
        )
        diagnostics = fit.convergence
        rows.append(
            {
                "table": table,
                "estimator": label,
                "twin": fit.label,
                "map_vs_estimator": fit.map_rel_error,
                "map_vs_reference": fit.reference_rel_error,
                "map_kkt_violation": fit.checks.get("map_kkt_violation", {}).get("value"),
                "tolerance": 1e-6 if fit.reference_rel_error is None else KINDS[fit.kind].tolerance,
                "n_zero": int(np.sum(fit.map_coef[1:] == 0.0)),
                "posterior": "exact" if fit.exact is not None else "NUTS",
                "rhat_max": None if diagnostics is None else diagnostics.rhat_max,
                "ess_bulk_min": None if diagnostics is None else diagnostics.ess_bulk_min,
                "divergences": None if diagnostics is None else diagnostics.divergences,
                "checks_passed": all(check["passed"] for check in fit.checks.values()),
                "seconds": time.perf_counter() - start,
            }
        )
    return pd.DataFrame(rows)


def compare_coordinates(config: Config, data: dict) -> pd.DataFrame:
    """NUTS on the raw table's logistic twin in its raw and in standardized coordinates, side by side."""
    X, y = data["raw_table_clicked"]
    X = X.to_numpy()
    center, scale = X.mean(axis=0), X.std(axis=0)
    models = {
        "raw": glm.logistic_regression(X, y, logistic_C=1.0),
        "standardized": glm.logistic_regression(
            (X - center) / scale, y, logistic_C=1.0, feature_scale=scale
        ),
    }
    rows = []
    for name, model in models.items():
        compiled = compile_nuts(model)
        for seed in config.sampling_seeds:
            _cli.progress(f"NUTS in {name} coordinates, seed {seed}")
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                idata = sample_nuts(
                    compiled, seed=seed, draws=config.draws, tune=config.tune, chains=config.chains
                )
            rows.append(
                {"coordinates": name, "seed": seed, **convergence(idata)._asdict()}
                | {"seconds": time.perf_counter() - start}
            )
    return pd.DataFrame(rows)


def saga_tolerances(config: Config) -> pd.DataFrame:
    """saga's distance from the l1 logistic MAP (all 30 standardized breast_cancer features, C = 1) at several
    tolerances: its error falls about as its tolerance, after ever more iterations."""
    X, y = load_breast_cancer(return_X_y=True)
    Z = StandardScaler().fit_transform(X)
    model = glm.logistic_regression(Z, y, logistic_C=1.0, l1_ratio=1.0)
    solution = SparseMAP(model)()
    map_coef = coefficients(solution)
    rows = []
    for tol in config.saga_tols:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # saga's convergence warning: its distance is the point
            fit = LogisticRegression(
                C=1.0,
                l1_ratio=1.0,
                solver="saga",
                tol=tol,
                max_iter=1_000_000,
                random_state=config.seed,  # saga visits the rows in a random order
            ).fit(Z, y)
        seconds = time.perf_counter() - start
        saga = np.concatenate([fit.intercept_, fit.coef_.ravel()])
        rows.append(
            {
                "tol": tol,
                "n_iter": int(fit.n_iter_[0]),
                "seconds": seconds,
                "rel_error_vs_map": relative_error(saga, map_coef),
                "same_zeros": bool(np.array_equal(saga == 0.0, map_coef == 0.0)),
            }
        )
    rows.append(
        {
            "tol": 0.0,
            "n_iter": solution["_optimality"].iterations,
            "seconds": np.nan,
            "rel_error_vs_map": 0.0,
            "same_zeros": True,
        }
    )
    return pd.DataFrame(rows).assign(
        map_kkt_violation=max(solution["_optimality"].nonzero, solution["_optimality"].zero),
        method=["saga"] * len(config.saga_tols) + ["active-set MAP"],
    )


def plot_map_error(panel: pd.DataFrame):
    """Each case's MAP distance from its reference (or KKT violation) against the tolerance checked."""
    error = panel.map_vs_reference.fillna(panel.map_kkt_violation).clip(lower=1e-17)
    names = [f"{e} | {t}" for e, t in zip(panel.estimator, panel.table, strict=True)]
    y = np.arange(len(panel))[::-1]
    fig, ax = plt.subplots(figsize=(9, 1.8 + 0.35 * len(panel)))
    ax.plot(error, y, "o", color="tab:blue", label="MAP vs reference (l1 logistic: KKT violation)")
    ax.plot(
        panel.map_vs_estimator.clip(lower=1e-17),
        y,
        "x",
        color="black",
        label="MAP vs the estimator as given",
    )
    ax.plot(panel.tolerance, y, "|", color="tab:red", markersize=14, label="tolerance checked")
    ax.set_xscale("log")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("relative error (values below 1e-17 drawn at 1e-17)")
    ax.set_title("The twin's MAP is the estimator")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.tight_layout()
    return fig


class Result(NamedTuple):
    panel: pd.DataFrame
    sampling: pd.DataFrame
    saga: pd.DataFrame


def run(config: Config) -> Result:
    """Every case, the raw-vs-standardized sampling comparison and saga's tolerances."""
    data = tables(np.random.default_rng(config.seed))
    return Result(
        run_cases(config, data), compare_coordinates(config, data), saga_tolerances(config)
    )


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    panel, sampling, saga = result
    raw = sampling[sampling.coordinates == "raw"]
    standardized = sampling[sampling.coordinates == "standardized"]
    nuts = panel[panel.posterior == "NUTS"]
    ridge = panel[panel.estimator.isin(["Ridge", "RidgeCV", "BayesianRidge"])]
    metrics = {
        "n_cases": len(panel),
        "max_rel_err_map_ridge_type": float(ridge.map_vs_reference.max()),
        "max_rel_err_map_other": float(panel.drop(ridge.index).map_vs_reference.max()),
        "max_kkt_violation_l1_logistic": float(panel.map_kkt_violation.max()),
        "nuts_rhat_max": float(nuts.rhat_max.max()),
        "nuts_ess_bulk_min": float(nuts.ess_bulk_min.min()),
        "raw_coordinates_rhat_max": float(raw.rhat_max.max()),
        "raw_coordinates_divergences_max": int(raw.divergences.max()),
        "standardized_rhat_max": float(standardized.rhat_max.max()),
        "standardized_divergences_max": int(standardized.divergences.max()),
        "saga_rel_error_at_tightest_tol": float(saga.rel_error_vs_map.iloc[-2]),
    }
    targets = {
        "every_case_passes_its_checks": (float(panel.checks_passed.all()), ">=", 1.0),
        "ridge_type_map_rel_error": (metrics["max_rel_err_map_ridge_type"], "<=", 1e-8),
        "other_map_rel_error": (metrics["max_rel_err_map_other"], "<=", 1e-6),
        "l1_logistic_kkt_violation": (metrics["max_kkt_violation_l1_logistic"], "<=", 1e-6),
        "standardized_rhat_max": (metrics["standardized_rhat_max"], "<=", 1.01),
        "standardized_divergences": (float(metrics["standardized_divergences_max"]), "<=", 0.0),
        "saga_zero_pattern_at_tightest_tol": (float(saga.same_zeros.iloc[-2]), ">=", 1.0),
    }
    return metrics, make_checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    return [
        f"In all {metrics['n_cases']} cases the twin's MAP is the estimator: Ridge-type twins to "
        f"{metrics['max_rel_err_map_ridge_type']:.1e}, the GLM and sparse twins to "
        f"{metrics['max_rel_err_map_other']:.1e}, the l1 logistic's subgradient conditions to "
        f"{metrics['max_kkt_violation_l1_logistic']:.1e} (only saga fits it, and saga at its tightest "
        f"tolerance stops {metrics['saga_rel_error_at_tightest_tol']:.1e} away).",
        f"Every NUTS posterior converged (R-hat at most {metrics['nuts_rhat_max']:.3f}, bulk ESS at "
        f"least {metrics['nuts_ess_bulk_min']:.0f}).",
        f"Sampled in the raw table's coordinates (a year ~2010, an income ~2e4), NUTS fails: R-hat "
        f"{metrics['raw_coordinates_rhat_max']:.2f} and up to {metrics['raw_coordinates_divergences_max']:,} "
        f"divergences; in standardized coordinates, the same posterior gives R-hat "
        f"{metrics['standardized_rhat_max']:.3f} and {metrics['standardized_divergences_max']} divergences. "
        "This is why the twin samples standardized coefficients and maps them back.",
    ]


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={
            "cases.csv": result.panel.set_index(["table", "estimator"]),
            "sampling.csv": result.sampling.set_index(["coordinates", "seed"]),
            "saga.csv": result.saga.set_index("method"),
        },
        figures={"map_error.png": plot_map_error(result.panel)},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
