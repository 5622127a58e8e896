"""The JAX samplers on a GPU: NUTS on the logistic twin at n = 1e6, p = 100, against the PSIS posterior.

Claim
    On one GPU, PyMC's JAX samplers (numpyro and blackjax, through ``pm.sample(nuts_sampler=...)``) run full
    NUTS on :mod:`experiments.glm_scale`'s logistic table itself, n = 1e6 rows and p = 100, where row-wise NUTS
    on 2 CPU cores would take hours. That gives the CPU path (Newton MAP, Laplace, Pareto-smoothed importance
    sampling) a NUTS reference at the big size, not only at glm_scale's 1e4-row stand-in: the importance-
    corrected SDs within 10% of each sampler's and the means within 5 combined Monte Carlo standard errors,
    with R-hat <= 1.01, bulk ESS >= 400 and no divergences.

Measures
    The table is glm_scale's big logistic table (same seed, same streams; its SHA-256 is recorded, so a run
    elsewhere can be matched with glm_scale's), the PSIS posterior is glm_scale's with the same importance-draw
    seed. Per JAX sampler: PyMC's sampling seconds (they include JAX's compilation of the sampling loop), the
    rest of the wall time (PyMC's conversion of the model to JAX), bulk ESS per second, R-hat, divergences, and
    the comparison with PSIS (SD ratios, mean z-scores with both MCSEs, 2-Wasserstein in NUTS SDs:
    :func:`experiments.glm_scale.compare_with_nuts`). Each sampler's seed is derived from its name, so one
    switched off leaves the other's draws as they were. Chains are vectorized on the one device
    (``chain_method="vectorized"``). The JAX device (GPU model, or CPU) is recorded; the published run needs a
    GPU (``--fast`` runs on the CPU). Seconds depend on the machine (metadata records it).

Writes ``results/jax_samplers/``
    ``jax_samplers.csv``    one row per sampler: seconds, ESS, ESS/s, R-hat, divergences, and PSIS against it
    ``jax_samplers_sd.png`` PSIS and Laplace posterior SDs against each JAX sampler's, at n = 1e6
    ``metadata.json``       config, seed, versions, checks, metrics, the JAX device and the machine

Run (``make bench`` where JAX is installed, ``pip install -e ".[jax]"``; the published run needs a GPU)
    python -m experiments.jax_samplers            # minutes on one GPU
    python -m experiments.jax_samplers --fast     # smoke run, on the CPU
"""

import hashlib
import importlib.util
import sys
import zlib
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments import _cli, glm_scale
from models import diagnostics, glm
from models.data import DataError
from models.fit import posterior_coefficients
from models.measure import machine, pymc_fit

NAME = "jax_samplers"
SAMPLERS = ("numpyro", "blackjax")
FAMILY = "logistic"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant. The table and PSIS settings are
    glm_scale's (:class:`experiments.glm_scale.Config`), so both benchmarks see the same data."""

    seed: int = glm_scale.Config.seed
    big_n: int = glm_scale.Config.big_n
    p: int = glm_scale.Config.p
    logistic_C: float = glm_scale.Config.logistic_C
    n_draws: int = glm_scale.Config.n_draws
    workers: int = glm_scale.Config.workers
    block_rows: int = glm_scale.Config.block_rows
    samplers: tuple[str, ...] = SAMPLERS
    chains: int = 2
    draws: int = 2000
    tune: int = 1000
    require_gpu: bool = True
    target_sd_ratio_deviation: float = glm_scale.Config.target_sd_ratio_deviation


FAST = Config(big_n=20_000, p=10, n_draws=1000, draws=300, tune=300, require_gpu=False)


def jax_device() -> str:
    """The JAX device the samplers run on, e.g. ``gpu: NVIDIA H200`` or ``cpu: cpu``."""
    import jax

    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def check_available(config: Config) -> str:
    """The JAX device, after checking that JAX and the samplers are installed (and a GPU, where required)."""
    missing = [m for m in ("jax", *config.samplers) if importlib.util.find_spec(m) is None]
    if missing:
        raise DataError(
            f"{', '.join(missing)} not installed: pip install -e '.[jax]' to run the JAX samplers"
        )
    device = jax_device()
    if config.require_gpu and not device.startswith("gpu"):
        raise DataError(
            f"the published run needs a GPU; JAX sees only {device} (--fast runs on it)"
        )
    return device


def sampler_seed(seed: int, sampler: str) -> int:
    """A sampler's seed, from the run's seed and the sampler's name (independent of which others run)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(sampler.encode())])
    return int(sequence.generate_state(1)[0] % 2**31)


def table_sha256(X: np.ndarray, y: np.ndarray) -> str:
    """A fingerprint of the table's bytes: the same on any machine that draws the same numbers."""
    digest = hashlib.sha256(np.ascontiguousarray(X).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def run(config: Config) -> dict:
    """glm_scale's big logistic table; its PSIS posterior; NUTS by every JAX sampler on the PyMC twin."""
    device = check_available(config)
    scale = glm_scale.Config(
        seed=config.seed,
        big_n=config.big_n,
        p=config.p,
        logistic_C=config.logistic_C,
        n_draws=config.n_draws,
        workers=config.workers,
        block_rows=config.block_rows,
    )
    big_rng, _, seeds = glm_scale.streams(config.seed, FAMILY)
    _cli.progress(f"n={config.big_n}, p={config.p}: Newton MAP, Laplace, PSIS (glm_scale's)")
    X, y = glm_scale.simulate(FAMILY, config.big_n, config.p, big_rng)
    psis_row, approx, corrected = glm_scale.fit_approximations(FAMILY, X, y, scale, seeds[0])
    rows, sds = [], {"laplace": approx.sd, "psis": corrected.sd}
    settings = {"draws": config.draws, "tune": config.tune, "chains": config.chains}
    for sampler in config.samplers:
        _cli.progress(
            f"{sampler}: NUTS {config.chains} x ({config.tune} + {config.draws}) on {device}"
        )
        model = glm.logistic_regression(X, y, logistic_C=config.logistic_C)
        idata, convert_s, sampling_s = pymc_fit(
            model,
            sampler,
            seed=sampler_seed(config.seed, sampler),
            nuts={"chain_method": "vectorized"},
            **settings,
        )
        draws = posterior_coefficients(idata)
        fit = diagnostics.convergence(idata)
        sds[sampler] = draws.reshape(-1, draws.shape[-1]).std(axis=0, ddof=1)
        rows.append(
            {
                "sampler": sampler,
                "convert_seconds": convert_s,
                "sampling_seconds": sampling_s,
                "ess_bulk_min": fit.ess_bulk_min,
                "ess_per_second": fit.ess_bulk_min / sampling_s,
                "rhat_max": fit.rhat_max,
                "divergences": fit.divergences,
            }
            | glm_scale.compare_with_nuts(approx, corrected, draws)
        )
    return {
        "table": pd.DataFrame(rows).set_index("sampler"),
        "sds": pd.DataFrame(sds),
        "psis": psis_row,
        "device": device,
        "table_sha256": table_sha256(X, y),
    }


def summarize(result: dict, config: Config) -> tuple[dict, dict]:
    """Per sampler: seconds, ESS/s, convergence and PSIS's agreement with it; checks."""
    table, psis = result["table"], result["psis"]
    metrics = {
        "device": result["device"],
        "table_sha256": result["table_sha256"],
        "psis_posterior_seconds": float(psis["posterior_seconds"]),
        "pareto_k": float(psis["pareto_k"]),
        "map_rel_err_vs_sklearn": float(psis["map_rel_err_vs_sklearn"]),
    }
    targets = {
        "pareto_k": (metrics["pareto_k"], "<=", 0.7),
        "map_vs_sklearn": (metrics["map_rel_err_vs_sklearn"], "<=", 1e-6),
    }
    for sampler, row in table.iterrows():
        deviation = max(1.0 - row.psis_sd_ratio_min, row.psis_sd_ratio_max - 1.0)
        metrics |= {
            f"{sampler}_sampling_seconds": float(row.sampling_seconds),
            f"{sampler}_ess_per_second": float(row.ess_per_second),
            f"{sampler}_rhat": float(row.rhat_max),
            f"{sampler}_ess_bulk_min": float(row.ess_bulk_min),
            f"{sampler}_divergences": int(row.divergences),
            f"psis_sd_ratio_deviation_vs_{sampler}": float(deviation),
            f"psis_max_mean_z_vs_{sampler}": float(row.psis_max_mean_z),
            f"psis_w2_in_sd_vs_{sampler}": float(row.psis_w2_in_sd),
        }
        targets |= {
            f"{sampler}_rhat": (metrics[f"{sampler}_rhat"], "<=", 1.01),
            f"{sampler}_ess_bulk": (metrics[f"{sampler}_ess_bulk_min"], ">=", 400),
            f"{sampler}_divergences": (metrics[f"{sampler}_divergences"], "<=", 0),
            # The largest of ~100 SD ratios; its Monte Carlo noise is ~4% at these draw counts (glm_scale).
            f"psis_sd_ratio_vs_{sampler}": (deviation, "<=", config.target_sd_ratio_deviation),
            # 5 combined MCSE over ~100 coefficients: a chance failure about once in 20,000 runs.
            f"psis_mean_z_vs_{sampler}": (metrics[f"psis_max_mean_z_vs_{sampler}"], "<=", 5.0),
        }
    return metrics, diagnostics.checks(targets)


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    samplers = [s for s in SAMPLERS if f"{s}_sampling_seconds" in metrics]
    timing = "; ".join(
        f"{s} {metrics[f'{s}_sampling_seconds']:.1f} s (ESS/s {metrics[f'{s}_ess_per_second']:.0f}, R-hat "
        f"{metrics[f'{s}_rhat']:.3f}, {metrics[f'{s}_divergences']} divergences)"
        for s in samplers
    )
    agreement = "; ".join(
        f"{100 * metrics[f'psis_sd_ratio_deviation_vs_{s}']:.1f}% and "
        f"{metrics[f'psis_max_mean_z_vs_{s}']:.1f} MCSE against {s}"
        for s in samplers
    )
    return [
        f"On {metrics['device']}, full NUTS on the logistic twin of the big table took: {timing}.",
        f"The CPU path's importance-corrected posterior (Pareto k {metrics['pareto_k']:.2f}, "
        f"{metrics['psis_posterior_seconds']:.1f} s) has SDs and means within {agreement}: the correction "
        "holds at the size NUTS could not reach on the CPU.",
    ]


def plot_sds(sds: pd.DataFrame):
    """PSIS and Laplace posterior SDs against each JAX sampler's, on the identity line."""
    samplers = [s for s in SAMPLERS if s in sds]
    fig, axes = plt.subplots(1, len(samplers), figsize=(5 * len(samplers), 4.5), squeeze=False)
    for ax, sampler in zip(axes[0], samplers, strict=True):
        ax.plot(sds[sampler], sds.psis, "o", ms=3, label="PSIS")
        ax.plot(sds[sampler], sds.laplace, "x", ms=3, label="Laplace")
        line = [sds[sampler].min(), sds[sampler].max()]
        ax.plot(line, line, "k-", lw=0.8)
        ax.set(xlabel=f"{sampler} NUTS posterior SD", ylabel="approximation's SD")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def artifacts(result: dict, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={"jax_samplers.csv": result["table"]},
        figures={"jax_samplers_sd.png": plot_sds(result["sds"])},
        metadata={"machine": machine(), "jax_device": result["device"]},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
