"""Performance and scale: sufficient statistics, compile once, samplers side by side, scaling in n and p.

Claim
    The linear twin written with sufficient statistics (``X^T W X``, ``X^T W y``, ``y^T W y``) samples the same
    posterior as the row-wise twin at >= 100x the ESS per second (n = 1e5, p = 50, measured side by side); at
    n = 1e6, p = 100 NUTS (2 chains x 1,000 draws) takes under 60 s and under 4 GiB beyond the data; a path of
    50 MAPs costs under 5x one MAP including compilation (one compiled function, ``pm.set_data``). Also
    measured: the samplers available (PyMC's NUTS, nutpie, numpyro and blackjax when installed, exact
    independent draws) on the linear and logistic twins, and MAP vs Ridge time, NUTS ESS/s and peak memory on
    the grid n in {1e3..1e6} x p in {10, 100, 1000}, with log-log slopes. Every ratio is measured in one run on
    one machine; absolute seconds depend on the machine and its load (metadata records both).

Measures
    ESS/s is the smallest bulk ESS over every parameter divided by the sampling wall time, tuning included and
    compilation excluded (for numpyro and blackjax PyMC's ``sampling_time`` also holds the JAX compilation of
    the sampling loop). Peak memory is the process's peak resident memory (Linux ``VmHWM``, reset per cell)
    minus its resident memory when the cell began: data, statistics, compilation and sampling included.
    Sufficient-statistics fits are compiled once per ``p`` on a tiny design and refit with the statistics of
    each data set (``pm.set_data``, nutpie's ``with_data``), the statistics summed over blocks of rows.

Writes ``results/performance/``
    ``samplers.csv``    one row per (model, sampler): compile and sampling seconds, min bulk ESS, ESS/s, ratio
    ``suffstat.csv``    row-wise vs sufficient-statistics NUTS on the same data, n = 1e5, p = 50
    ``path.csv``        one MAP vs a 50-alpha path, each with model building and compilation
    ``scaling.csv``     the headline n = 1e6, p = 100 run and one row per grid cell: MAP, Ridge and NUTS
                        seconds, ESS/s, peak memory, or the reason a cell (or its row-wise fit) was skipped
    ``replicates.csv``  replicated fits through models.executor: in-process vs a local process pool
    ``samplers.png``, ``scaling_map.png``, ``scaling_nuts.png``   figures; ``metadata.json`` last

Run (``make bench``; not part of ``make reproduce``)
    python -m experiments.performance            # published settings (about 10-15 minutes on 2 cores)
    python -m experiments.performance --fast     # smoke run
"""

import importlib.util
import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from sklearn.linear_model import Ridge

from experiments import _cli
from models import diagnostics
from models.diagnostics import convergence, mean_z_scores
from models.exact import linear_posterior
from models.executor import map_tasks
from models.fit import PreciseMAP, coefficients, compile_nuts, posterior_coefficients, sample_nuts
from models.glm import logistic_regression
from models.linear import linear_regression, sufficient_statistics
from models.results import result_set, write_csv, write_figure, write_metadata

NAME = "performance"
JAX_SAMPLERS = ("numpyro", "blackjax")


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261126
    ridge_alpha: float = 1.0
    chains: int = 2
    draws: int = 1000
    tune: int = 1000
    samplers: tuple[str, ...] = ("pymc", "nutpie", *JAX_SAMPLERS)
    sampler_n: int = 1000
    sampler_p: int = 10
    compare_n: int = 100_000
    compare_p: int = 50
    # ESS per second is the fair measure should the row-wise draws be cut (they cost ~100 s here).
    rows_draws: int = 1000
    rows_tune: int = 1000
    big_n: int = 1_000_000
    big_p: int = 100
    path_alphas: int = 50
    grid_n: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    grid_p: tuple[int, ...] = (10, 100, 1000)
    grid_draws: int = 500
    grid_tune: int = 500
    # Skip rules (the reason is written to scaling.csv): design size and row-wise gradient cost.
    max_design_bytes: float = 1.0e9
    max_rows_work: float = 1.0e6
    # In a trial run on the loaded 2-core machine (load average 6-8) the first p = 1000 NUTS cell had not
    # finished after several minutes; it was not profiled further.
    max_nuts_p: int = 100
    replications: int = 4
    # The targets; the smoke run's sizes are too small for the speed-up to reach 100x.
    target_speedup: float = 100.0
    target_nuts_seconds: float = 60.0
    target_memory_gib: float = 4.0
    target_path_ratio: float = 5.0


# Compilation dominates a smoke run (a nutpie compile took 10-35 s on the loaded 2-core machine): one p for
# every sufficient-statistics fit (compiled once), PyMC's sampler only, no row-wise grid cells.
FAST = Config(
    draws=200,
    tune=200,
    samplers=("pymc",),
    sampler_n=200,
    sampler_p=5,
    compare_n=5_000,
    compare_p=10,
    rows_draws=200,
    rows_tune=200,
    big_n=20_000,
    big_p=10,
    path_alphas=10,
    grid_n=(1_000, 10_000),
    grid_p=(10,),
    grid_draws=200,
    grid_tune=200,
    max_rows_work=0.0,
    replications=0,
    target_speedup=2.0,
)


def simulate(n: int, p: int, rng: np.random.Generator):
    """Standard normal features, coefficients ~ N(0, 1), intercept 1, unit noise."""
    X = rng.standard_normal((n, p))
    y = 1.0 + X @ rng.standard_normal(p) + rng.standard_normal(n)
    return X, y


def seeds(rng: np.random.Generator, k: int) -> list[int]:
    return [int(s) for s in rng.integers(2**31, size=k)]


def _ess_row(idata, seconds_compile, seconds_sampling, **labels):
    fit = convergence(idata)
    return labels | {
        "compile_seconds": seconds_compile,
        "sampling_seconds": seconds_sampling,
        "ess_bulk_min": fit.ess_bulk_min,
        "ess_per_second": fit.ess_bulk_min / seconds_sampling,
        "rhat_max": fit.rhat_max,
        "divergences": fit.divergences,
    }


def nutpie_fit(model, config, seed, *, draws=None, tune=None, compiled=None, **data):
    """Compile (unless given) and sample with nutpie; returns ``(idata, compile_s, sampling_s, compiled)``."""
    start = time.perf_counter()
    compiled = compile_nuts(model) if compiled is None else compiled
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    idata = sample_nuts(
        compiled,
        seed=seed,
        draws=draws or config.draws,
        tune=tune or config.tune,
        chains=config.chains,
        **data,
    )
    return idata, compile_seconds, time.perf_counter() - start, compiled


def pymc_fit(model, config, seed, sampler):
    """``pm.sample`` with PyMC's own NUTS or a JAX sampler; compile = wall time minus sampling time."""
    start = time.perf_counter()
    with model:
        idata = pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=config.chains,
            nuts_sampler=sampler,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
    total = time.perf_counter() - start
    sampling = float(idata["posterior"].attrs.get("sampling_time", total))
    return idata, total - sampling, sampling


def sampler_table(config: Config, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    """Every available sampler on the linear (unknown noise) and logistic twins; exact draws for linear."""
    data_rng, seed_rng, exact_rng = rng.spawn(3)
    X, y = simulate(config.sampler_n, config.sampler_p, data_rng)
    labels = (X @ np.linspace(-1, 1, config.sampler_p) + data_rng.logistic(size=y.size) > 0) * 1.0
    missing = [s for s in JAX_SAMPLERS if importlib.util.find_spec(s) is None]
    available = [s for s in config.samplers if s not in missing]
    skipped = [f"{s}: not installed" for s in config.samplers if s in missing]
    builders = {
        "linear": lambda: linear_regression(X, y, ridge_alpha=config.ridge_alpha),
        "logistic": lambda: logistic_regression(X, labels, logistic_C=1.0),
    }
    rows = []
    for model_name, build in builders.items():
        for sampler in available:
            _cli.progress(f"samplers: {model_name} twin with {sampler}")
            seed = seeds(seed_rng, 1)[0]
            if sampler == "nutpie":
                idata, compile_s, sampling_s, _ = nutpie_fit(build(), config, seed)
            elif sampler == "pymc":
                idata, compile_s, sampling_s = pymc_fit(build(), config, seed, sampler)
            else:
                # An optional JAX sampler whose installed version PyMC cannot drive is reported, not fatal.
                try:
                    idata, compile_s, sampling_s = pymc_fit(build(), config, seed, sampler)
                except Exception as error:  # noqa: BLE001
                    message = str(error).splitlines()[0] if str(error) else ""
                    skipped.append(f"{sampler} ({model_name}): {type(error).__name__}: {message}")
                    continue
            rows.append(_ess_row(idata, compile_s, sampling_s, model=model_name, sampler=sampler))
    start = time.perf_counter()
    exact = linear_posterior(X, y, ridge_alpha=config.ridge_alpha)
    draws = exact.draws(exact_rng, config.chains * config.draws)
    seconds = time.perf_counter() - start
    coords = {"chain": range(config.chains), "draw": range(config.draws)}
    posterior = {"coef": (("chain", "draw", "k"), draws.reshape(config.chains, config.draws, -1))}
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(posterior, coords=coords),
            "sample_stats": xr.Dataset(
                {"diverging": (("chain", "draw"), np.zeros((config.chains, config.draws), bool))},
                coords=coords,
            ),
        }
    )
    rows.append(_ess_row(tree, 0.0, seconds, model="linear", sampler="exact"))
    table = pd.DataFrame(rows)
    best = table.groupby("model").ess_per_second.transform("max")
    table["ratio_to_best"] = table.ess_per_second / best
    return table, skipped


def _memory_kib(field: str) -> float:
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return float("nan")


def reset_peak_memory() -> float:
    """Reset the process's peak resident memory (Linux ``clear_refs``); returns the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    return 1024.0 * _memory_kib("VmRSS")


def peak_memory() -> float:
    """Peak resident memory in bytes since the last :func:`reset_peak_memory`."""
    return 1024.0 * _memory_kib("VmHWM")


class SuffstatFits:
    """The sufficient-statistics twin compiled once per ``p`` (MAP and nutpie), refit with new statistics.

    The compiled functions depend on the number of features only: they are built from a tiny design and
    then given the statistics of any data set (``pm.set_data`` / nutpie's ``with_data``).
    """

    def __init__(self, ridge_alpha: float, noise_sigma: float | None = None):
        self.ridge_alpha, self.noise_sigma = ridge_alpha, noise_sigma
        self._maps, self._nuts = {}, {}

    def _model(self, p):
        X, y = simulate(p + 2, p, np.random.default_rng(0))
        return linear_regression(
            X, y, ridge_alpha=self.ridge_alpha, noise_sigma=self.noise_sigma, likelihood="suffstat"
        )

    def map(self, p, stats, ridge_alpha=None) -> tuple[np.ndarray, float]:
        """The MAP coefficients for ``stats``, and the seconds spent compiling (0 when cached)."""
        compile_seconds = 0.0
        if p not in self._maps:
            start = time.perf_counter()
            model = self._model(p)
            self._maps[p] = (model, PreciseMAP(model))
            # A first call on the tiny data: one-off costs land in the compile time, not in the fit.
            self._maps[p][1]()
            compile_seconds = time.perf_counter() - start
        model, precise_map = self._maps[p]
        alpha = self.ridge_alpha if ridge_alpha is None else ridge_alpha
        pm.set_data(stats | {"ridge_alpha": alpha}, model=model)
        return coefficients(precise_map()), compile_seconds

    def nuts(self, p, stats, config, seed, *, draws, tune):
        """NUTS (nutpie) for ``stats``: ``(idata, compile seconds (0 when cached), sampling seconds)``."""
        compiled = self._nuts.get(p)
        idata, compile_s, sampling_s, compiled = nutpie_fit(
            self._model(p) if compiled is None else None,
            config,
            seed,
            draws=draws,
            tune=tune,
            compiled=compiled,
            **{k: np.asarray(v, dtype=float) for k, v in stats.items()},
        )
        self._nuts[p] = compiled
        return idata, compile_s, sampling_s


_REPLICATE_FITS = {}


def ridge_replicate(task: dict, rng: np.random.Generator) -> dict:
    """One replicated fit (an executor task): simulate, MAP of the known-noise twin, Ridge, exact draws.

    The compiled MAP is cached per worker process and per ``p`` (compile once per structure).
    """
    n, p, alpha = task["n"], task["p"], task["ridge_alpha"]
    X, y = simulate(n, p, rng)
    fits = _REPLICATE_FITS.setdefault("known_noise", SuffstatFits(1.0, noise_sigma=1.0))
    map_coef, _ = fits.map(p, sufficient_statistics(X, y), ridge_alpha=alpha)
    ridge = Ridge(alpha=alpha).fit(X, y)
    exact = linear_posterior(X, y, ridge_alpha=alpha, noise_sigma=1.0)
    return {
        "map": map_coef,
        "ridge": np.concatenate([[ridge.intercept_], ridge.coef_]),
        "draws": exact.draws(rng, 4),
    }


def suffstat_table(config: Config, rng: np.random.Generator, fits: "SuffstatFits") -> pd.DataFrame:
    """Row-wise vs sufficient-statistics NUTS on the same data (unknown noise), against the exact posterior.

    ``build_seconds``: computing the statistics (sufficient statistics) or building the model (row-wise).
    """
    data_rng, seed_rng = rng.spawn(2)
    n, p = config.compare_n, config.compare_p
    X, y = simulate(n, p, data_rng)
    exact = linear_posterior(X, y, ridge_alpha=config.ridge_alpha)
    rows = []
    settings = (
        ("suffstat", config.draws, config.tune),
        ("rows", config.rows_draws, config.rows_tune),
    )
    for (likelihood, draws, tune), seed in zip(settings, seeds(seed_rng, 2), strict=True):
        _cli.progress(f"NUTS {likelihood} at n={n}, p={p}: {config.chains} x {draws} draws")
        start = time.perf_counter()
        if likelihood == "suffstat":
            stats = sufficient_statistics(X, y)
            build = time.perf_counter() - start
            idata, compile_s, sampling_s = fits.nuts(p, stats, config, seed, draws=draws, tune=tune)
        else:
            model = linear_regression(X, y, ridge_alpha=config.ridge_alpha)
            build = time.perf_counter() - start
            idata, compile_s, sampling_s, _ = nutpie_fit(
                model, config, seed, draws=draws, tune=tune
            )
        z = mean_z_scores(posterior_coefficients(idata), exact.mean)
        rows.append(
            _ess_row(idata, compile_s, sampling_s, likelihood=likelihood)
            | {"n": config.compare_n, "p": config.compare_p, "draws": draws, "tune": tune}
            | {"build_seconds": build, "max_mean_z": float(z.max())}
        )
    return pd.DataFrame(rows).set_index("likelihood")


def path_table(config: Config, rng: np.random.Generator) -> pd.DataFrame:
    """A path of ``path_alphas`` MAPs vs one MAP, each including model building and compilation.

    The path is timed first, so the single MAP's compilation may reuse PyTensor's on-disk cache: the ratio
    is, if anything, overstated.
    """
    X, y = simulate(config.compare_n, config.compare_p, rng)
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
        error = diagnostics.relative_error(coef, np.r_[ridge.intercept_, ridge.coef_])
        rows.append(
            {"fits": name, "n_alphas": len(path), "build_compile_seconds": compiled}
            | {
                "fit_seconds": total - compiled,
                "total_seconds": total,
                "last_rel_err_vs_ridge": error,
            }
        )
    return pd.DataFrame(rows).set_index("fits")


def grid_cell(n, p, config, fits, rng, *, draws, tune) -> dict:
    """MAP vs Ridge, NUTS ESS/s (sufficient statistics; row-wise where affordable) and peak memory."""
    row = {"n": n, "p": p}
    if 8.0 * n * p > config.max_design_bytes:
        reason = f"the design alone is {8 * n * p / 2**30:.1f} GiB (float64)"
        return row | {"skipped": reason}
    data_rng, seed_rng = rng.spawn(2)
    baseline = reset_peak_memory()
    X, y = simulate(n, p, data_rng)
    start = time.perf_counter()
    stats = sufficient_statistics(X, y)
    statistics_seconds = time.perf_counter() - start
    coef, map_compile = fits.map(p, stats)
    map_seconds = time.perf_counter() - start - map_compile
    seed_suffstat, seed_rows = seeds(seed_rng, 2)
    sample = p <= config.max_nuts_p
    if sample:
        idata, compile_s, sampling_s = fits.nuts(
            p, stats, config, seed_suffstat, draws=draws, tune=tune
        )
    row["peak_memory_bytes"] = peak_memory() - baseline
    row["data_bytes"] = X.nbytes + y.nbytes
    baseline = reset_peak_memory()
    start = time.perf_counter()
    ridge = Ridge(alpha=config.ridge_alpha).fit(X, y)
    ridge_seconds = time.perf_counter() - start
    row["ridge_peak_memory_bytes"] = peak_memory() - baseline
    ridge_coef = np.r_[ridge.intercept_, ridge.coef_]
    row |= {"statistics_seconds": statistics_seconds, "map_seconds": map_seconds}
    row |= {"map_compile_seconds": map_compile, "ridge_seconds": ridge_seconds}
    row |= {"map_rel_err_vs_ridge": diagnostics.relative_error(coef, ridge_coef)}
    if not sample:
        reason = f"NUTS at p > {config.max_nuts_p} not run: too slow for the make-bench budget"
        return row | {"nuts_skipped": reason, "rows_skipped": reason}
    # The marginal posterior of the coefficients is a Student-t centred at the Ridge solution.
    fit = convergence(idata)
    z = mean_z_scores(posterior_coefficients(idata), ridge_coef).max()
    row |= {"suffstat_compile_seconds": compile_s, "suffstat_sampling_seconds": sampling_s}
    row |= {"suffstat_ess_per_second": fit.ess_bulk_min / sampling_s, "suffstat_rhat": fit.rhat_max}
    row |= {"suffstat_max_mean_z": z, "draws": draws, "tune": tune}
    if n * p > config.max_rows_work:
        row["rows_skipped"] = (
            f"row-wise gradient costs n*p = {n * p:.0e} > {config.max_rows_work:.0e}"
        )
        return row
    model = linear_regression(X, y, ridge_alpha=config.ridge_alpha)
    idata, compile_s, sampling_s, _ = nutpie_fit(model, config, seed_rows, draws=draws, tune=tune)
    fit = convergence(idata)
    row |= {"rows_compile_seconds": compile_s, "rows_sampling_seconds": sampling_s}
    row |= {"rows_ess_per_second": fit.ess_bulk_min / sampling_s, "rows_rhat": fit.rhat_max}
    row |= {"rows_max_mean_z": mean_z_scores(posterior_coefficients(idata), ridge_coef).max()}
    return row


def scaling_table(config: Config, rng: np.random.Generator, fits: "SuffstatFits") -> pd.DataFrame:
    """The big cell (full draws) first, then every grid cell; compiled functions shared per ``p``."""
    big_rng, *cell_rngs = rng.spawn(1 + len(config.grid_n) * len(config.grid_p))
    _cli.progress(f"n={config.big_n}, p={config.big_p}: NUTS {config.chains} x {config.draws}")
    big = grid_cell(
        config.big_n, config.big_p, config, fits, big_rng, draws=config.draws, tune=config.tune
    )
    rows = [big | {"cell": "headline"}]
    cells = [(n, p) for p in config.grid_p for n in config.grid_n]
    for (n, p), cell_rng in zip(cells, cell_rngs, strict=True):
        if (n, p) == (config.big_n, config.big_p):
            rows.append(big | {"cell": "grid"})
            continue
        _cli.progress(f"grid n={n}, p={p}")
        cell = grid_cell(
            n, p, config, fits, cell_rng, draws=config.grid_draws, tune=config.grid_tune
        )
        rows.append(cell | {"cell": "grid"})
    return pd.DataFrame(rows).set_index(["cell", "n", "p"])


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
    samplers: pd.DataFrame
    skipped_samplers: list
    suffstat: pd.DataFrame
    path: pd.DataFrame
    scaling: pd.DataFrame
    replicates: pd.DataFrame | None
    seconds: dict


def run(config: Config) -> Result:
    """Every benchmark in one run, so that the ratios compare measurements taken side by side."""
    rngs = np.random.default_rng(config.seed).spawn(5)
    seconds = {}
    start = time.perf_counter()
    samplers, skipped = sampler_table(config, rngs[0])
    seconds["samplers"] = time.perf_counter() - start
    start = time.perf_counter()
    fits = SuffstatFits(config.ridge_alpha)
    suffstat = suffstat_table(config, rngs[1], fits)
    seconds["suffstat"] = time.perf_counter() - start
    start = time.perf_counter()
    path = path_table(config, rngs[2])
    seconds["path"] = time.perf_counter() - start
    start = time.perf_counter()
    scaling = scaling_table(config, rngs[3], fits)
    seconds["scaling"] = time.perf_counter() - start
    replicates = None
    if config.replications:
        _cli.progress(f"{config.replications} replicated fits: serial vs a process pool")
        start = time.perf_counter()
        replicates = replicate_table(config, int(rngs[4].integers(2**31)), config.replications)
        seconds["replicates"] = time.perf_counter() - start
    return Result(samplers, skipped, suffstat, path, scaling, replicates, seconds)


def slopes(scaling: pd.DataFrame, column: str) -> dict[int, float]:
    """Per ``p``: the least-squares slope of ``log10(column)`` on ``log10(n)`` over the grid cells measured."""
    grid = scaling.xs("grid", level="cell").reset_index()
    found = {}
    if column not in grid:
        return found
    for p, cells in grid.groupby("p"):
        cells = cells.dropna(subset=[column])
        if len(cells) >= 2:
            found[int(p)] = float(np.polyfit(np.log10(cells.n), np.log10(cells[column]), 1)[0])
    return found


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Headline metrics and pass/fail checks against the issue's targets."""
    samplers, suffstat, path = result.samplers, result.suffstat, result.path
    big = result.scaling.xs("headline", level="cell").iloc[0]
    mcmc = samplers[samplers.sampler != "exact"]
    best = mcmc.loc[mcmc.groupby("model").ess_per_second.idxmax()].set_index("model").sampler
    grid = result.scaling.xs("grid", level="cell")
    metrics = {
        "suffstat_speedup_n1e5_p50": suffstat.ess_per_second["suffstat"]
        / suffstat.ess_per_second["rows"],
        "nuts_seconds_n1e6_p100": big.suffstat_sampling_seconds,
        "nuts_compile_seconds_n1e6_p100": big.suffstat_compile_seconds,
        "nuts_memory_gib_beyond_data_n1e6_p100": (big.peak_memory_bytes - big.data_bytes) / 2**30,
        "map_seconds_n1e6_p100": big.map_seconds,
        "ridge_seconds_n1e6_p100": big.ridge_seconds,
        "map_path_ratio": path.total_seconds["path"] / path.total_seconds["one"],
        "best_sampler_linear": best.get("linear", "none measured"),
        "best_sampler_logistic": best.get("logistic", "none measured"),
        "exact_over_best_linear_ess_per_second": float(
            samplers.query("sampler == 'exact'").ess_per_second.iloc[0]
            / mcmc[mcmc.model == "linear"].ess_per_second.max()
        ),
        "max_map_rel_err_vs_ridge": float(grid.map_rel_err_vs_ridge.max()),
        "grid_cells_skipped": int(grid.skipped.notna().sum()) if "skipped" in grid else 0,
    }
    for column in ("map_seconds", "ridge_seconds", "suffstat_sampling_seconds"):
        for p, slope in slopes(result.scaling, column).items():
            metrics[f"slope_{column}_p{p}"] = slope
    z_max = max(suffstat.max_mean_z.max(), big.suffstat_max_mean_z)
    targets = {
        "suffstat_speedup": (metrics["suffstat_speedup_n1e5_p50"], ">=", config.target_speedup),
        "nuts_seconds_big": (metrics["nuts_seconds_n1e6_p100"], "<=", config.target_nuts_seconds),
        "nuts_memory_beyond_data": (
            metrics["nuts_memory_gib_beyond_data_n1e6_p100"],
            "<=",
            config.target_memory_gib,
        ),
        "map_path_ratio": (metrics["map_path_ratio"], "<=", config.target_path_ratio),
        # Normal equations vs scikit-learn's solver on well-conditioned designs.
        "map_vs_ridge": (metrics["max_map_rel_err_vs_ridge"], "<=", 1e-8),
        # 5 MCSE over up to ~100 coefficients: a chance failure about once in 20,000 runs.
        "suffstat_and_rows_same_posterior": (z_max, "<=", 5.0),
        # Largest of up to 103 R-hats from 2 chains of 1,000 draws: the statistic's own noise reaches ~1.015.
        "headline_rhat": (max(suffstat.rhat_max.max(), big.suffstat_rhat), "<=", 1.02),
    }
    if result.replicates is not None:
        targets["executor_pool_equals_serial"] = (
            float(result.replicates.identical.all()),
            ">=",
            1.0,
        )
    return metrics, diagnostics.checks(targets)


def plot_samplers(samplers: pd.DataFrame):
    """Min bulk ESS per second of each sampler, linear and logistic twins (log scale)."""
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    for ax, (model, table) in zip(axs, samplers.groupby("model", sort=False), strict=True):
        table = table.sort_values("ess_per_second")
        ax.barh(table.sampler, table.ess_per_second, color="tab:blue")
        for y, (value, ratio) in enumerate(
            zip(table.ess_per_second, table.ratio_to_best, strict=True)
        ):
            ax.text(value, y, f" {value:.3g}/s ({ratio:.2f}x best)", va="center", fontsize=8)
        ax.set(xscale="log", title=f"{model} twin", xlabel="min bulk ESS per second of sampling")
    fig.suptitle("Samplers side by side (compile time excluded, tuning included)")
    fig.tight_layout()
    return fig


def _loglog(ax, grid, column, label, style, slope_of):
    if column not in grid:
        return
    for j, (p, cells) in enumerate(grid.groupby("p")):
        cells = cells.dropna(subset=[column])
        if cells.empty:
            continue
        slope = slope_of.get(int(p))
        text = f"{label}, p={p}" + (f" (slope {slope:.2f})" if slope is not None else "")
        ax.plot(cells.n, cells[column], style, color=f"C{j}", label=text)


def plot_scaling_map(scaling: pd.DataFrame):
    """MAP (sufficient statistics + Newton) and Ridge seconds against n, log-log, one line per p."""
    grid = scaling.xs("grid", level="cell").reset_index()
    fig, ax = plt.subplots(figsize=(8, 5))
    _loglog(ax, grid, "map_seconds", "MAP", "o-", slopes(scaling, "map_seconds"))
    _loglog(ax, grid, "ridge_seconds", "Ridge", "s--", slopes(scaling, "ridge_seconds"))
    ax.set(xscale="log", yscale="log", xlabel="rows n", ylabel="seconds (compilation excluded)")
    ax.set_title("MAP of the sufficient-statistics twin vs scikit-learn Ridge")
    ax.legend(fontsize=8)
    return fig


def plot_scaling_nuts(scaling: pd.DataFrame):
    """NUTS min bulk ESS per second against n, sufficient statistics vs row-wise, log-log."""
    grid = scaling.xs("grid", level="cell").reset_index()
    fig, ax = plt.subplots(figsize=(8, 5))
    _loglog(
        ax,
        grid,
        "suffstat_ess_per_second",
        "suffstat",
        "o-",
        slopes(scaling, "suffstat_ess_per_second"),
    )
    _loglog(
        ax, grid, "rows_ess_per_second", "row-wise", "s--", slopes(scaling, "rows_ess_per_second")
    )
    ax.set(xscale="log", yscale="log", xlabel="rows n", ylabel="min bulk ESS per second")
    ax.set_title("NUTS (nutpie): sufficient statistics vs row-wise likelihood")
    ax.legend(fontsize=8)
    return fig


def main(argv=None) -> int:
    parser = _cli.parser(NAME, __doc__.splitlines()[0], data=False)
    args = parser.parse_args(argv)
    config = _cli.configure(args, Config(), FAST)
    out = _cli.output_dir(NAME, args)

    start = time.perf_counter()
    result = run(config)
    metrics, checks = summarize(result, config)
    with result_set(out) as folder:
        write_csv(result.samplers.set_index(["model", "sampler"]), folder / "samplers.csv")
        write_csv(result.suffstat, folder / "suffstat.csv")
        write_csv(result.path, folder / "path.csv")
        write_csv(result.scaling, folder / "scaling.csv")
        if result.replicates is not None:
            write_csv(result.replicates, folder / "replicates.csv")
        write_figure(plot_samplers(result.samplers), folder / "samplers.png")
        write_figure(plot_scaling_map(result.scaling), folder / "scaling_map.png")
        write_figure(plot_scaling_nuts(result.scaling), folder / "scaling_nuts.png")
        write_metadata(
            folder / "metadata.json",
            module=f"experiments.{NAME}",
            config=asdict(config),
            seed=config.seed,
            seconds=result.seconds | {"total": time.perf_counter() - start},
            checks=checks,
            metrics=metrics,
            skipped_samplers=result.skipped_samplers,
            threads="one BLAS thread per process (experiments/__init__.py); nutpie runs one thread per chain",
            machine=machine(),
        )
    return _cli.report(out, metrics, checks)


def machine() -> dict:
    """CPU count, model and load: absolute seconds mean little without them."""
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    return {"cpus": os.cpu_count(), "cpu": model, "load_average_at_end": os.getloadavg()}


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
