"""Performance: sufficient statistics vs the row-wise likelihood, one compiled model for a path, a process pool.

Claim
    The linear twin written with sufficient statistics (``X^T W X``, ``X^T W y``, ``y^T W y``) samples the same
    posterior as the row-wise twin at >= 100x the ESS per second (n = 1e5, p = 50, measured side by side); a
    path of 50 MAPs costs under 5x one MAP including compilation (one compiled function, ``pm.set_data``);
    replicated fits through ``models.executor`` give the same numbers in a process pool as in one process.
    Scaling in n and p is ``python -m experiments.scaling``; samplers side by side ``python -m
    experiments.samplers``.

Measures
    ESS/s is the smallest bulk ESS over every parameter divided by the sampling wall time, tuning included and
    compilation excluded. Sufficient-statistics fits are compiled once per ``p`` on a tiny design and refit
    with the statistics of each data set (``pm.set_data``, nutpie's ``with_data``), the statistics summed over
    blocks of rows. Every ratio is measured in one run on one machine; absolute seconds depend on the machine
    and its load (metadata records both).

Writes ``results/performance/``
    ``suffstat.csv``    row-wise vs sufficient-statistics NUTS on the same data, n = 1e5, p = 50
    ``path.csv``        one MAP vs a 50-alpha path, each with model building and compilation
    ``replicates.csv``  replicated fits through models.executor: in-process vs a local process pool
    ``suffstat.png``    ESS per second and seconds, row-wise vs sufficient statistics
    ``metadata.json``   config, seed, versions, checks, metrics, the machine

Run (``make bench``; not part of ``make reproduce``)
    python -m experiments.performance            # published settings (a few minutes on 2 cores)
    python -m experiments.performance --fast     # smoke run
"""

import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
from sklearn.linear_model import Ridge

from experiments import _cli
from models import diagnostics
from models.data import standard_regression
from models.diagnostics import mean_z_scores
from models.exact import linear_posterior
from models.executor import map_tasks
from models.fit import PreciseMAP, coefficients, intercept_first, posterior_coefficients
from models.linear import SuffstatFits, linear_regression, sufficient_statistics
from models.measure import Stopwatch, benchmark_metadata, nutpie_fit, sampler_row

NAME = "performance"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261126
    ridge_alpha: float = 1.0
    chains: int = 2
    draws: int = 1000
    tune: int = 1000
    compare_n: int = 100_000
    compare_p: int = 50
    # ESS per second is the fair measure should the row-wise draws be cut (they cost ~100 s here).
    rows_draws: int = 1000
    rows_tune: int = 1000
    path_alphas: int = 50
    replications: int = 4
    # The targets; the smoke run's sizes are too small for the speed-up to reach 100x.
    target_speedup: float = 100.0
    target_path_ratio: float = 5.0


FAST = Config(
    draws=200,
    tune=200,
    compare_n=5_000,
    compare_p=10,
    rows_draws=200,
    rows_tune=200,
    path_alphas=10,
    replications=0,
    target_speedup=2.0,
)


_REPLICATE_FITS = {}


def ridge_replicate(task: dict, rng: np.random.Generator) -> dict:
    """One replicated fit (an executor task): simulate, MAP of the known-noise twin, Ridge, exact draws.

    The compiled MAP is cached per worker process and per ``p`` (compile once per structure).
    """
    n, p, alpha = task["n"], task["p"], task["ridge_alpha"]
    X, y = standard_regression(n, p, rng)
    fits = _REPLICATE_FITS.setdefault("known_noise", SuffstatFits(1.0, noise_sigma=1.0))
    map_coef, _ = fits.map(p, sufficient_statistics(X, y), ridge_alpha=alpha)
    ridge = Ridge(alpha=alpha).fit(X, y)
    exact = linear_posterior(X, y, ridge_alpha=alpha, noise_sigma=1.0)
    return {
        "map": map_coef,
        "ridge": intercept_first(ridge),
        "draws": exact.draws(rng, 4),
    }


def suffstat_table(config: Config, rng: np.random.Generator) -> pd.DataFrame:
    """Row-wise vs sufficient-statistics NUTS on the same data (unknown noise), against the exact posterior.

    ``build_seconds``: computing the statistics (sufficient statistics) or building the model (row-wise).
    """
    data_rng, seed_rng = rng.spawn(2)
    n, p = config.compare_n, config.compare_p
    X, y = standard_regression(n, p, data_rng)
    exact = linear_posterior(X, y, ridge_alpha=config.ridge_alpha)
    rows = []
    settings = (
        ("suffstat", config.draws, config.tune),
        ("rows", config.rows_draws, config.rows_tune),
    )
    fits = SuffstatFits(config.ridge_alpha)
    seeds = (int(s) for s in seed_rng.integers(2**31, size=2))
    for (likelihood, draws, tune), seed in zip(settings, seeds, strict=True):
        _cli.progress(f"NUTS {likelihood} at n={n}, p={p}: {config.chains} x {draws} draws")
        start = time.perf_counter()
        if likelihood == "suffstat":
            stats = sufficient_statistics(X, y)
            build = time.perf_counter() - start
            idata, compile_s, sampling_s = fits.nuts(
                p, stats, seed=seed, draws=draws, tune=tune, chains=config.chains
            )
        else:
            model = linear_regression(X, y, ridge_alpha=config.ridge_alpha)
            build = time.perf_counter() - start
            idata, compile_s, sampling_s, _ = nutpie_fit(
                model, seed=seed, draws=draws, tune=tune, chains=config.chains
            )
        z = mean_z_scores(posterior_coefficients(idata), exact.mean)
        rows.append(
            sampler_row(idata, compile_s, sampling_s, likelihood=likelihood)
            | {"n": config.compare_n, "p": config.compare_p, "draws": draws, "tune": tune}
            | {"build_seconds": build, "max_mean_z": float(z.max())}
        )
    return pd.DataFrame(rows).set_index("likelihood")


def path_table(config: Config, rng: np.random.Generator) -> pd.DataFrame:
    """A path of ``path_alphas`` MAPs vs one MAP, each including model building and compilation.

    The path is timed first, so the single MAP's compilation may reuse PyTensor's on-disk cache: the ratio
    is, if anything, overstated.
    """
    X, y = standard_regression(config.compare_n, config.compare_p, rng)
    alphas = np.logspace(-2, 4, config.path_alphas)
    rows = []
    for name, path in (("path", alphas), ("one", alphas[-1:])):
        start = time.perf_counter()
        model = linear_regression(X, y, ridge_alpha=path[0], likelihood="suffstat")
        precise_map = PreciseMAP(model)
        compiled = time.perf_counter() - start
        for alpha in path:
            pm.set_data({"ridge_alpha": alpha}, model=model)
            coef = coefficients(precise_map())
        total = time.perf_counter() - start
        ridge = Ridge(alpha=path[-1]).fit(X, y)
        error = diagnostics.relative_error(coef, intercept_first(ridge))
        rows.append(
            {"fits": name, "n_alphas": len(path), "build_compile_seconds": compiled}
            | {
                "fit_seconds": total - compiled,
                "total_seconds": total,
                "last_rel_err_vs_ridge": error,
            }
        )
    return pd.DataFrame(rows).set_index("fits")


def replicate_table(config: Config, seed: int, k: int) -> pd.DataFrame:
    """``k`` replicated fits through the executor: in-process vs a local pool of 2 processes."""
    tasks = [{"n": 2000, "p": 20, "ridge_alpha": config.ridge_alpha}] * k
    rows, results = [], {}
    for backend, workers in (("serial", 0), ("process_pool", 2)):
        start = time.perf_counter()
        results[backend] = map_tasks(ridge_replicate, tasks, seed=seed, max_workers=workers)
        rows.append({"backend": backend, "tasks": k, "seconds": time.perf_counter() - start})
    identical = all(
        np.array_equal(a["draws"], b["draws"]) and np.allclose(a["map"], b["map"], rtol=1e-12)
        for a, b in zip(results["serial"], results["process_pool"], strict=True)
    )
    return pd.DataFrame(rows).set_index("backend").assign(identical=identical)


class Result(NamedTuple):
    suffstat: pd.DataFrame
    path: pd.DataFrame
    replicates: pd.DataFrame | None
    seconds: dict


def run(config: Config) -> Result:
    """Every measurement in one run, so that the ratios compare measurements taken side by side."""
    suffstat_rng, path_rng, replicate_rng = np.random.default_rng(config.seed).spawn(3)
    clock, seconds = Stopwatch(), {}
    suffstat = suffstat_table(config, suffstat_rng)
    seconds["suffstat"] = clock.lap()
    path = path_table(config, path_rng)
    seconds["path"] = clock.lap()
    replicates = None
    if config.replications:
        _cli.progress(f"{config.replications} replicated fits: serial vs a process pool")
        replicates = replicate_table(
            config, int(replicate_rng.integers(2**31)), config.replications
        )
        seconds["replicates"] = clock.lap()
    return Result(suffstat, path, replicates, seconds)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Headline ratios, and checks: the same posterior both ways, the issue's targets, the pool's numbers."""
    suffstat, path = result.suffstat, result.path
    metrics = {
        "suffstat_speedup_n1e5_p50": suffstat.ess_per_second["suffstat"]
        / suffstat.ess_per_second["rows"],
        "map_path_ratio": path.total_seconds["path"] / path.total_seconds["one"],
        "max_suffstat_rows_mean_z": float(suffstat.max_mean_z.max()),
        "max_rhat": float(suffstat.rhat_max.max()),
    }
    targets = {
        "suffstat_speedup": (metrics["suffstat_speedup_n1e5_p50"], ">=", config.target_speedup),
        "map_path_ratio": (metrics["map_path_ratio"], "<=", config.target_path_ratio),
        # 5 MCSE over up to ~50 coefficients per fit: a chance failure about once in 40,000 runs.
        "suffstat_and_rows_same_posterior": (metrics["max_suffstat_rows_mean_z"], "<=", 5.0),
        # R-hats from 2 chains of 1,000 draws: the statistic's own noise reaches ~1.015 there.
        "nuts_rhat": (metrics["max_rhat"], "<=", 1.02),
    }
    if result.replicates is not None:
        targets["executor_pool_equals_serial"] = (
            float(result.replicates.identical.all()),
            ">=",
            1.0,
        )
    return metrics, diagnostics.checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    return [
        f"Sufficient statistics made NUTS {metrics['suffstat_speedup_n1e5_p50']:.0f}x faster in ESS per "
        "second than the row-wise likelihood on the same data, for the same posterior (every mean within "
        f"{metrics['max_suffstat_rows_mean_z']:.1f} MCSE of the exact one).",
        f"One compiled model refit along a path of alphas: the whole path cost "
        f"{metrics['map_path_ratio']:.1f}x one MAP, compilation included.",
    ]


def plot_suffstat(suffstat: pd.DataFrame):
    """ESS per second and the seconds of each step, row-wise vs sufficient statistics."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.barh(suffstat.index, suffstat.ess_per_second, color="tab:blue")
    left.set(xscale="log", xlabel="min bulk ESS per second of sampling", title="effective draws")
    steps = suffstat[["build_seconds", "compile_seconds", "sampling_seconds"]]
    steps.plot.barh(stacked=True, ax=right)
    right.set(xlabel="seconds", ylabel="", title="where the time goes")
    fig.suptitle(f"NUTS, row-wise vs sufficient statistics (n = {suffstat.n.iloc[0]:,})")
    fig.tight_layout()
    return fig


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    tables = {"suffstat.csv": result.suffstat, "path.csv": result.path}
    if result.replicates is not None:
        tables["replicates.csv"] = result.replicates
    return _cli.Artifacts(
        tables=tables,
        figures={"suffstat.png": plot_suffstat(result.suffstat)},
        metadata=benchmark_metadata(),
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
