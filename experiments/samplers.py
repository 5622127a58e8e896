"""Samplers side by side: PyMC's NUTS, nutpie, numpyro and blackjax, and exact draws, on the same twins.

Claim
    On the linear twin (unknown noise) and the logistic twin of the same simulated table (n = 1,000,
    p = 10), the samplers a user can pick differ in effective draws per second more than in anything else;
    where the posterior is known in closed form (the linear twin), exact independent draws beat every MCMC
    sampler, which is why the twin draws exactly whenever it can. Each sampler's R-hat is checked, so a fast
    but wrong sampler cannot win.

Measures
    ESS/s is the smallest bulk ESS over every parameter divided by the sampling wall time, tuning included and
    compilation excluded (for numpyro and blackjax PyMC's ``sampling_time`` also holds the JAX compilation of
    the sampling loop). The JAX samplers run when installed (``pip install -e ".[jax]"``); otherwise
    ``metadata.json`` (``skipped_samplers``) says so. Every ratio is measured in one run on one machine;
    absolute seconds depend on the machine and its load (metadata records both).

Writes ``results/samplers/``
    ``samplers.csv``  one row per (model, sampler): compile and sampling seconds, min bulk ESS, ESS/s, ratio
                      to the best sampler of that model, R-hat, divergences
    ``samplers.png``  ESS per second per sampler, linear and logistic twins
    ``metadata.json`` config, seed, versions, checks, metrics, the samplers skipped and the machine

Run (``make bench``; not part of ``make reproduce``)
    python -m experiments.samplers            # a few minutes on 2 cores
    python -m experiments.samplers --fast     # smoke run: PyMC's sampler only
"""

import importlib.util
import sys
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from experiments import _cli
from models import diagnostics
from models.data import standard_regression
from models.exact import linear_posterior
from models.glm import logistic_regression
from models.linear import linear_regression
from models.measure import Stopwatch, benchmark_metadata, nutpie_fit, pymc_fit, sampler_row

NAME = "samplers"
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
    n: int = 1000
    p: int = 10


FAST = Config(draws=200, tune=200, samplers=("pymc",), n=200, p=5)


class Result(NamedTuple):
    samplers: pd.DataFrame
    skipped: list


def exact_tree(draws: np.ndarray, chains: int):
    """Independent exact draws as a posterior ``DataTree`` (no divergences), for the same diagnostics."""
    per_chain = draws.shape[0] // chains
    coords = {"chain": range(chains), "draw": range(per_chain)}
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {"coef": (("chain", "draw", "k"), draws.reshape(chains, per_chain, -1))},
                coords=coords,
            ),
            "sample_stats": xr.Dataset(
                {"diverging": (("chain", "draw"), np.zeros((chains, per_chain), bool))},
                coords=coords,
            ),
        }
    )


def run(config: Config) -> Result:
    """Every available sampler on the linear and logistic twins; exact draws for the linear one."""
    data_rng, seed_rng, exact_rng = np.random.default_rng(config.seed).spawn(3)
    X, y = standard_regression(config.n, config.p, data_rng)
    labels = (X @ np.linspace(-1, 1, config.p) + data_rng.logistic(size=y.size) > 0) * 1.0
    missing = [s for s in JAX_SAMPLERS if importlib.util.find_spec(s) is None]
    skipped = [f"{s}: not installed" for s in config.samplers if s in missing]
    builders = {
        "linear": lambda: linear_regression(X, y, ridge_alpha=config.ridge_alpha),
        "logistic": lambda: logistic_regression(X, labels, logistic_C=1.0),
    }
    settings = {"draws": config.draws, "tune": config.tune, "chains": config.chains}
    rows = []
    for model_name, build in builders.items():
        for sampler in [s for s in config.samplers if s not in missing]:
            _cli.progress(f"samplers: {model_name} twin with {sampler}")
            seed = int(seed_rng.integers(2**31))
            try:
                if sampler == "nutpie":
                    idata, compile_s, sampling_s, _ = nutpie_fit(build(), seed=seed, **settings)
                else:
                    idata, compile_s, sampling_s = pymc_fit(build(), sampler, seed=seed, **settings)
            except Exception as error:  # noqa: BLE001
                if sampler not in JAX_SAMPLERS:
                    raise
                # An optional JAX sampler whose installed version PyMC cannot drive is reported, not fatal.
                message = str(error).splitlines()[0] if str(error) else ""
                skipped.append(f"{sampler} ({model_name}): {type(error).__name__}: {message}")
                continue
            rows.append(
                sampler_row(idata, compile_s, sampling_s, model=model_name, sampler=sampler)
            )
    clock = Stopwatch()
    exact = linear_posterior(X, y, ridge_alpha=config.ridge_alpha)
    draws = exact.draws(exact_rng, config.chains * config.draws)
    tree = exact_tree(draws, config.chains)
    rows.append(sampler_row(tree, 0.0, clock.lap(), model="linear", sampler="exact"))
    table = pd.DataFrame(rows)
    table["ratio_to_best"] = table.ess_per_second / table.groupby("model").ess_per_second.transform(
        "max"
    )
    return Result(table.set_index(["model", "sampler"]), skipped)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """The best MCMC sampler per model, exact draws against it, and each fit's convergence (a check)."""
    table = result.samplers.reset_index()
    mcmc = table[table.sampler != "exact"]
    best = mcmc.loc[mcmc.groupby("model").ess_per_second.idxmax()].set_index("model").sampler
    exact = table.query("sampler == 'exact'").ess_per_second.iloc[0]
    metrics = {
        "best_sampler_linear": best.get("linear", "none measured"),
        "best_sampler_logistic": best.get("logistic", "none measured"),
        "exact_over_best_linear_ess_per_second": float(
            exact / mcmc[mcmc.model == "linear"].ess_per_second.max()
        ),
        "samplers_measured": len(mcmc),
        "max_rhat": float(mcmc.rhat_max.max()),
    }
    targets = {
        # The largest of up to 8 fits' largest R-hat (2 chains x 1,000 draws; the statistic's own noise
        # reaches ~1.015 there): a sampler that did not converge has its ESS/s measured for nothing.
        "every_sampler_converged": (metrics["max_rhat"], "<=", 1.02),
        "no_divergences": (int(mcmc.divergences.sum()), "<=", 0),
    }
    return metrics, diagnostics.checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    return [
        f"Of the {metrics['samplers_measured']} MCMC fits, the most effective draws per second came from "
        f"{metrics['best_sampler_linear']} on the linear twin and {metrics['best_sampler_logistic']} on the "
        "logistic twin.",
        f"Exact independent draws of the linear twin gave "
        f"{metrics['exact_over_best_linear_ess_per_second']:.0f}x the ESS per second of the best MCMC "
        "sampler: the twin samples only where no closed form exists.",
    ]


def plot_samplers(samplers: pd.DataFrame):
    """Min bulk ESS per second of each sampler, linear and logistic twins (log scale)."""
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    samplers = samplers.reset_index()
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


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={"samplers.csv": result.samplers},
        figures={"samplers.png": plot_samplers(result.samplers)},
        metadata={"skipped_samplers": result.skipped, **benchmark_metadata()},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
