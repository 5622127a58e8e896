"""Scaling in n and p: the twin's MAP against Ridge, and NUTS on sufficient statistics, up to n = 1e6.

Claim
    With sufficient statistics (``X^T W X``, ``X^T W y``, ``y^T W y``) the linear twin's cost after one pass
    over the data no longer grows with n: at n = 1e6, p = 100, NUTS (2 chains x 2,000 draws) takes under
    60 s and under 4 GiB beyond the data, and the MAP equals Ridge to 1e-8 at every cell of the grid
    n in {1e3..1e6} x p in {10, 100, 1000}; the log-log slopes of seconds against n say how each cost grows.
    Wide designs too: the MAP (a Newton step from the closed-form precision, one Cholesky factorization)
    costs at most twice Ridge's time at every cell, and NUTS at p = 1000 samples in under 60 s.

Sampler
    NUTS (nutpie, diagonal adaptation) runs on the whitened twin (``linear_regression(..., whiten=True)``:
    the same posterior, coefficients ``mean + sigma * L^-T z`` with ``L L^T = X^T X + alpha D``): a dense mass
    matrix from the closed form, so at p = 1000 this measures NUTS with a known preconditioner, not nutpie's
    learned one (Config says why); its Cholesky factorization counts as sampling time. Row-wise fits: unwhitened.

Measures
    MAP seconds include computing the statistics (one pass) and the Newton step on them, compilation
    excluded (the gradient, compiled once per p on a tiny design); Ridge seconds are scikit-learn's fit.
    Both are the shortest of up to 5 runs, repeated while they total under 1 s, in wall-clock seconds and
    in CPU seconds of the process (their ratio is checked in CPU seconds: on a shared machine the wall-clock
    ratio is mostly the load). ESS/s is the smallest bulk ESS over the parameters (:data:`PARAMETERS`) per
    second of sampling, tuning included. Peak memory is the process's peak resident memory (Linux ``VmHWM``,
    reset per cell) minus its resident memory when the cell began. Row-wise NUTS runs only where its gradient
    cost n * p is affordable; skipped cells say why. Absolute seconds depend on the machine and its load
    (metadata records both).

Writes ``results/scaling/``
    ``scaling.csv``     the headline n = 1e6, p = 100 run and one row per grid cell: MAP, Ridge and NUTS
                        seconds, ESS/s, peak memory, or the reason a cell (or its row-wise fit) was skipped
    ``scaling_map.png`` MAP and Ridge seconds against n, log-log, one line per p
    ``scaling_nuts.png`` NUTS ESS per second against n, sufficient statistics vs row-wise
    ``metadata.json``   config, seed, versions, checks, metrics, the machine

Run (``make bench``; not part of ``make reproduce``)
    python -m experiments.scaling            # about 10 minutes on 2 cores
    python -m experiments.scaling --fast     # smoke run
"""

import sys
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from experiments import _cli
from models import diagnostics
from models.data import standard_regression
from models.diagnostics import convergence, mean_z_scores
from models.fit import intercept_first, posterior_coefficients
from models.linear import SuffstatFits, linear_regression, sufficient_statistics
from models.measure import machine, nutpie_fit, peak_memory, reset_peak_memory

NAME = "scaling"
PARAMETERS = ["intercept", "beta", "sigma_squared"]
"""R-hat and ESS are taken over these (a whitened fit's ``coef_whitened`` is their linear map given sigma)."""


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261126
    ridge_alpha: float = 1.0
    chains: int = 2
    draws: int = 2000
    tune: int = 1000
    big_n: int = 1_000_000
    big_p: int = 100
    grid_n: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    grid_p: tuple[int, ...] = (10, 100, 1000)
    # 2 x 2,000 draws for R-hat's noise over 1,002 parameters. Whitened at p = 1000, 2 x (500 + 500) gave a max
    # R-hat of 1.023-1.028 (tail ESS 330-360 of 1,000 draws: NUTS on a near-isotropic 1,000-d Gaussian stops near
    # half a period, so |z| mixes slowly), 2 x (500 + 2,000) 1.0058-1.0099 in six fits (n = 1e3-1e5; 28-56 s,
    # 50-64 CPU s, load 2.2-4.0); iid draws of that shape: 1.002-1.004. Headline: 2 x 2,000 gave 1.0056 in 0.6 s.
    grid_draws: int = 2000
    grid_tune: int = 500
    # Row-wise fits compare ESS/s only (no R-hat check): 2 x 2,000 would take ~400 s at n = 1e3, p = 1000.
    rows_draws: int = 500
    # Skip rules (the reason is written to scaling.csv): design size and row-wise gradient cost.
    max_design_bytes: float = 1.0e9
    max_rows_work: float = 1.0e6
    # NUTS, whitened (module docstring), diag adaptation, at every p. 2 x (500 + 500) at p = 1000, n = 1e3
    # (X^T X near singular), load average 2.1-4.7: unwhitened diag 457 s (405 leapfrog steps per draw, bulk
    # ESS 422), low-rank 267 s (423 steps, ESS 363), whitened 47 s (25 CPU s, 15 steps, ESS 1,325); n = 1e4:
    # diag 14 s (9 CPU s), whitened 27 s (23 CPU s; both 15 steps: whitening costs 2.5x per step). At p = 100,
    # n = 1e3 / 1e5 whitened took 0.11 / 0.09 s, low-rank 0.45 / 0.22 s (7 steps each). Exact draws
    # (models.streaming.ridge_posterior: 2.3 s at n = 1e3, p = 1000) would be cheaper still, but measure no
    # sampler; they are its oracle here (the MCSE check).
    max_nuts_p: int = 1000
    whiten_nuts: bool = True
    nuts_adaptation: str = "diag"
    # The targets for the headline cell.
    target_nuts_seconds: float = 60.0
    target_memory_gib: float = 4.0
    # And for the wide cells: MAP against Ridge at every cell, NUTS at the largest p.
    target_map_over_ridge: float = 2.0
    target_wide_nuts_seconds: float = 60.0


# Compilation dominates a smoke run: one p (compiled once), no row-wise cells; 1,000 draws (200 read R-hat 1.04).
FAST = Config(
    draws=1000,
    tune=200,
    big_n=20_000,
    big_p=10,
    grid_n=(1_000, 10_000),
    grid_p=(10,),
    grid_draws=1000,
    grid_tune=200,
    max_rows_work=0.0,
)


def best_seconds(fit, *, budget: float = 1.0, repeats: int = 5):
    """``fit()``'s result and its shortest wall-clock and CPU (this process) seconds, run again (at most
    ``repeats`` times) while the runs total under ``budget`` seconds: one run of a millisecond fit on a shared
    machine is mostly noise (a single statistics pass at n = 1e4, p = 10 read 21 ms where the median of 7 was
    0.5 ms)."""
    wall, cpu = [], []
    while len(wall) < repeats and sum(wall) < budget:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = fit()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return result, min(wall), min(cpu)


def grid_cell(n, p, config, fits, rng, *, draws, tune) -> dict:
    """MAP vs Ridge, NUTS ESS/s (sufficient statistics; row-wise where affordable) and peak memory."""
    row = {"n": n, "p": p}
    if 8.0 * n * p > config.max_design_bytes:
        reason = f"the design alone is {8 * n * p / 2**30:.1f} GiB (float64)"
        return row | {"skipped": reason}
    data_rng, seed_rng = rng.spawn(2)
    baseline = reset_peak_memory()
    X, y = standard_regression(n, p, data_rng)
    stats, statistics_seconds, statistics_cpu = best_seconds(lambda: sufficient_statistics(X, y))
    _, map_compile = fits.map(p, stats)  # compiled once per p, on a tiny design
    (coef, _), newton_seconds, newton_cpu = best_seconds(lambda: fits.map(p, stats))
    map_seconds = statistics_seconds + newton_seconds
    seed_suffstat, seed_rows = (int(s) for s in seed_rng.integers(2**31, size=2))
    sampling = {"draws": draws, "tune": tune, "chains": config.chains}
    sample = p <= config.max_nuts_p
    if sample:
        idata, compile_s, sampling_s = fits.nuts(
            p, stats, seed=seed_suffstat, adaptation=config.nuts_adaptation, **sampling
        )
    row["peak_memory_bytes"] = peak_memory() - baseline
    row["data_bytes"] = X.nbytes + y.nbytes
    baseline = reset_peak_memory()
    ridge, ridge_seconds, ridge_cpu = best_seconds(
        lambda: Ridge(alpha=config.ridge_alpha).fit(X, y)
    )
    row["ridge_peak_memory_bytes"] = peak_memory() - baseline
    ridge_coef = intercept_first(ridge)
    row |= {"statistics_seconds": statistics_seconds, "map_seconds": map_seconds}
    row |= {"map_compile_seconds": map_compile, "ridge_seconds": ridge_seconds}
    row |= {"map_cpu_seconds": statistics_cpu + newton_cpu, "ridge_cpu_seconds": ridge_cpu}
    row |= {"map_rel_err_vs_ridge": diagnostics.relative_error(coef, ridge_coef)}
    if not sample:
        reason = f"NUTS at p > {config.max_nuts_p} not run: too slow for the make-bench budget"
        return row | {"nuts_skipped": reason, "rows_skipped": reason}
    # The marginal posterior of the coefficients is a Student-t centred at the Ridge solution.
    fit = convergence(idata, var_names=PARAMETERS)
    z = mean_z_scores(posterior_coefficients(idata), ridge_coef).max()
    row |= {"suffstat_compile_seconds": compile_s, "suffstat_sampling_seconds": sampling_s}
    row |= {"suffstat_ess_per_second": fit.ess_bulk_min / sampling_s, "suffstat_rhat": fit.rhat_max}
    row |= {"suffstat_max_mean_z": z, "draws": draws, "tune": tune}
    row["suffstat_steps_per_draw"] = float(idata["sample_stats"]["n_steps"].mean())
    if n * p > config.max_rows_work:
        row["rows_skipped"] = (
            f"row-wise gradient costs n*p = {n * p:.0e} > {config.max_rows_work:.0e}"
        )
        return row
    model = linear_regression(X, y, ridge_alpha=config.ridge_alpha)
    rows_sampling = sampling | {"draws": config.rows_draws}
    idata, compile_s, sampling_s, _ = nutpie_fit(model, seed=seed_rows, **rows_sampling)
    fit = convergence(idata, var_names=PARAMETERS)
    row |= {"rows_compile_seconds": compile_s, "rows_sampling_seconds": sampling_s}
    row |= {"rows_ess_per_second": fit.ess_bulk_min / sampling_s, "rows_rhat": fit.rhat_max}
    row |= {"rows_max_mean_z": mean_z_scores(posterior_coefficients(idata), ridge_coef).max()}
    return row


def run(config: Config) -> pd.DataFrame:
    """The big cell (full draws) first, then every grid cell; compiled functions shared per ``p``."""
    fits = SuffstatFits(config.ridge_alpha, whiten=config.whiten_nuts)
    big_rng, *cell_rngs = np.random.default_rng(config.seed).spawn(
        1 + len(config.grid_n) * len(config.grid_p)
    )
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


def summarize(scaling: pd.DataFrame, config: Config) -> tuple[dict, dict]:
    """The headline cell's seconds and memory, MAP vs Ridge over the grid, slopes; checks on correctness
    and the issue's targets for the headline cell."""
    big = scaling.xs("headline", level="cell").iloc[0]
    grid = scaling.xs("grid", level="cell")
    metrics = {
        "nuts_seconds_n1e6_p100": big.suffstat_sampling_seconds,
        "nuts_compile_seconds_n1e6_p100": big.suffstat_compile_seconds,
        "nuts_memory_gib_beyond_data_n1e6_p100": (big.peak_memory_bytes - big.data_bytes) / 2**30,
        "map_seconds_n1e6_p100": big.map_seconds,
        "ridge_seconds_n1e6_p100": big.ridge_seconds,
        "max_map_rel_err_vs_ridge": float(grid.map_rel_err_vs_ridge.max()),
        "grid_cells_skipped": int(grid.skipped.notna().sum()) if "skipped" in grid else 0,
        "max_map_seconds_over_ridge": float((grid.map_seconds / grid.ridge_seconds).max()),
        "max_map_cpu_seconds_over_ridge": float(
            (grid.map_cpu_seconds / grid.ridge_cpu_seconds).max()
        ),
        "widest_p": max(config.grid_p),
        "max_nuts_seconds_widest_p": float(
            grid.xs(max(config.grid_p), level="p").suffstat_sampling_seconds.max()
        ),
    }
    for column in ("map_seconds", "ridge_seconds", "suffstat_sampling_seconds"):
        for p, slope in slopes(scaling, column).items():
            metrics[f"slope_{column}_p{p}"] = slope
    z_columns = [c for c in ("suffstat_max_mean_z", "rows_max_mean_z") if c in scaling]
    targets = {
        "nuts_seconds_big": (metrics["nuts_seconds_n1e6_p100"], "<=", config.target_nuts_seconds),
        "nuts_memory_beyond_data": (
            metrics["nuts_memory_gib_beyond_data_n1e6_p100"],
            "<=",
            config.target_memory_gib,
        ),
        # Normal equations vs scikit-learn's solver on well-conditioned designs.
        "map_vs_ridge": (metrics["max_map_rel_err_vs_ridge"], "<=", 1e-8),
        # 5 MCSE over up to 1,001 coefficients per fit: a chance failure about once in 1,700 fits.
        "nuts_mean_within_5_mcse": (float(scaling[z_columns].max().max()), "<=", 5.0),
        # The largest of up to 1,002 R-hats: above 1.01 by noise alone at p = 1000 (Config.grid_draws), so 1.015;
        # it fails where the draws are too few for the parameter count (1.023-1.028 from 2 x 500) or chains differ.
        "nuts_rhat": (float(scaling.suffstat_rhat.max()), "<=", 1.015),
        # In CPU seconds of this process: on a shared machine the wall-clock ratio is mostly the load (at
        # n = 1e4, p = 1000 the same Ridge fit read 0.8-1.4 s of wall time for 0.27-0.47 s of CPU).
        "map_cpu_seconds_over_ridge": (
            metrics["max_map_cpu_seconds_over_ridge"],
            "<=",
            config.target_map_over_ridge,
        ),
        "nuts_seconds_widest_p": (
            metrics["max_nuts_seconds_widest_p"],
            "<=",
            config.target_wide_nuts_seconds,
        ),
    }
    return metrics, diagnostics.checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    return [
        f"At n = 1e6, p = 100, NUTS on the sufficient statistics sampled 2 chains in "
        f"{metrics['nuts_seconds_n1e6_p100']:.1f} s (after {metrics['nuts_compile_seconds_n1e6_p100']:.1f} "
        f"s of compilation) using {metrics['nuts_memory_gib_beyond_data_n1e6_p100']:.2f} GiB beyond the "
        f"data; the MAP took {metrics['map_seconds_n1e6_p100']:.2f} s against Ridge's "
        f"{metrics['ridge_seconds_n1e6_p100']:.2f} s.",
        f"Across the grid the MAP equals Ridge to {metrics['max_map_rel_err_vs_ridge']:.1e}; "
        f"{metrics['grid_cells_skipped']} cell(s) were skipped for the size of their design alone.",
        f"The MAP took at most {metrics['max_map_cpu_seconds_over_ridge']:.2f}x Ridge's CPU time "
        f"({metrics['max_map_seconds_over_ridge']:.2f}x its wall time) at any cell; at "
        f"p = {metrics['widest_p']} NUTS sampled in at most {metrics['max_nuts_seconds_widest_p']:.1f} s.",
    ]


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


def plot_loglog(scaling: pd.DataFrame, lines: dict, ylabel: str, title: str):
    """``lines``: column -> (label, style), each drawn against n per p, log-log, with its slope."""
    grid = scaling.xs("grid", level="cell").reset_index()
    fig, ax = plt.subplots(figsize=(8, 5))
    for column, (label, style) in lines.items():
        _loglog(ax, grid, column, label, style, slopes(scaling, column))
    ax.set(xscale="log", yscale="log", xlabel="rows n", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def artifacts(scaling: pd.DataFrame, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={"scaling.csv": scaling},
        figures={
            "scaling_map.png": plot_loglog(
                scaling,
                {"map_seconds": ("MAP", "o-"), "ridge_seconds": ("Ridge", "s--")},
                "seconds (compilation excluded)",
                "MAP of the sufficient-statistics twin vs scikit-learn Ridge",
            ),
            "scaling_nuts.png": plot_loglog(
                scaling,
                {
                    "suffstat_ess_per_second": ("suffstat", "o-"),
                    "rows_ess_per_second": ("row-wise", "s--"),
                },
                "min bulk ESS per second",
                "NUTS (nutpie): sufficient statistics vs row-wise likelihood",
            ),
        },
        metadata={"machine": machine()},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
