"""NUTS samples the Ridge twin's exact posterior: sampled vs closed-form means and SDs in Monte Carlo units.

Claim
    On diabetes, at five Ridge alphas from 1e-3 to 10, NUTS (nutpie, 2 chains x 2,000 draws after 1,000
    tuning steps) on the Ridge twin, with the noise known and unknown (Jeffreys' ``p(sigma**2) ∝ 1 /
    sigma**2``), gives every coefficient's posterior mean within a Bonferroni bound of the exact one in Monte
    Carlo standard errors (4.44 MCSE for 110 means at a 0.1% family-wise rate) and its SD within 10%, with
    R-hat <= 1.01, bulk ESS >= 400 and no divergences. One compiled model per noise setting serves every
    alpha (``ridge_alpha`` is ``pm.Data``). That the twin's mode is Ridge is ``ridge_equivalence``.

Writes ``results/ridge_sampling/``
    ``nuts.csv``      one row per NUTS fit and coefficient: exact vs sampled mean and SD, z-score, diagnostics
    ``nuts.png``      each coefficient's |mean - exact| in MCSE and its SD ratio, against alpha
    ``posterior_known_noise.nc``, ``posterior_unknown_noise.nc``  the last alpha's posterior (git-ignored)
    ``metadata.json`` config, seed, versions, seconds, checks, metrics

Run
    python -m experiments.ridge_sampling            # published settings
    python -m experiments.ridge_sampling --fast     # smoke run
"""

import sys
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments import _cli
from models import data as datasets
from models import diagnostics
from models.diagnostics import convergence, mean_z_scores, sd_ratio, z_bound
from models.exact import linear_posterior
from models.fit import compile_nuts, posterior_coefficients, sample_nuts
from models.linear import linear_regression
from models.measure import Stopwatch

NAME = "ridge_sampling"


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261126
    alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    draws: int = 2000
    tune: int = 1000
    chains: int = 2


FAST = Config(alphas=(1.0,), draws=300, tune=300)


class Result(NamedTuple):
    nuts: pd.DataFrame
    posteriors: dict
    seconds: dict


def nuts_seeds(seed: int) -> np.ndarray:
    """The seeds of the NUTS fits: the third of three streams spawned from the config seed, as when this
    experiment was part of ``ridge_equivalence`` (whose first two streams drew its simulated designs and
    prior covariances), so the published draws are the ones committed before the split."""
    return np.random.default_rng(seed).spawn(3)[2].integers(2**31, size=64)


def run(config: Config) -> Result:
    """NUTS at every alpha and noise setting, one compiled model per noise setting, vs the exact posterior."""
    ds = datasets.diabetes()
    seeds, clock = iter(nuts_seeds(config.seed)), Stopwatch()
    rows, posteriors, seconds = [], {}, {}
    for noise in ("known", "unknown"):
        _cli.progress(f"NUTS on {ds.name} at {len(config.alphas)} alphas, {noise} noise")
        noise_sigma = ds.noise_sigma if noise == "known" else None
        kwargs = {"noise_sigma": noise_sigma, "feature_names": ds.feature_names}
        model = linear_regression(ds.X, ds.y, ridge_alpha=config.alphas[0], **kwargs)
        compiled = compile_nuts(model)
        seconds[f"{noise}_compile"] = clock.lap()
        for alpha in config.alphas:
            idata = sample_nuts(
                compiled,
                seed=int(next(seeds)),
                draws=config.draws,
                tune=config.tune,
                chains=config.chains,
                ridge_alpha=np.asarray(alpha, dtype=float),
            )
            exact = linear_posterior(ds.X, ds.y, ridge_alpha=alpha, **kwargs)
            draws = posterior_coefficients(idata)
            fit = convergence(idata)._asdict()
            z, ratio = mean_z_scores(draws, exact.mean), sd_ratio(draws, exact.sd)
            for j, feature in enumerate(exact.names):
                rows.append(
                    {"dataset": ds.name, "noise": noise, "alpha": alpha, "feature": feature}
                    | {"exact_mean": exact.mean[j], "nuts_mean": draws[..., j].mean()}
                    | {"exact_sd": exact.sd[j], "nuts_sd": draws[..., j].std(ddof=1)}
                    | {"mean_z": z[j], "sd_ratio": ratio[j]}
                    | fit
                )
            posteriors[noise] = idata
        seconds[f"{noise}_sampling"] = clock.lap()
    return Result(pd.DataFrame(rows), posteriors, seconds)


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """The worst mean (in MCSE), SD ratio and convergence diagnostics over every fit and coefficient."""
    nuts = result.nuts
    fits = nuts.drop_duplicates(["noise", "alpha"])
    metrics = {
        "max_nuts_mean_z": nuts.mean_z.max(),
        "max_nuts_sd_ratio_err": (nuts.sd_ratio - 1.0).abs().max(),
        "max_nuts_rhat": nuts.rhat_max.max(),
        "min_nuts_ess_bulk": nuts.ess_bulk_min.min(),
        "nuts_divergences": int(fits.divergences.sum()),
        "n_nuts_fits": len(fits),
        "n_means_compared": len(nuts),
    }
    checks = diagnostics.checks(
        {
            # The largest of k |z|-scores (fits x coefficients): Bonferroni at a 0.1% family-wise rate, 4.44
            # MCSE for the published k = 110. A flat 4 failed on 1 seed in 20 (4.20; make seed-study).
            "nuts_mean_within_mcse": (metrics["max_nuts_mean_z"], "<=", z_bound(len(nuts))),
            # A sampled SD is uncertain by about 1 / sqrt(2 ESS): 1.6% at an ESS of 2,000; 10% is 6 of those.
            "nuts_sd_within_10_percent": (metrics["max_nuts_sd_ratio_err"], "<=", 0.10),
            "nuts_rhat": (metrics["max_nuts_rhat"], "<=", 1.01),
            "nuts_ess_bulk": (metrics["min_nuts_ess_bulk"], ">=", 400),
            "nuts_no_divergences": (metrics["nuts_divergences"], "<=", 0),
        }
    )
    return metrics, checks


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    return [
        f"Over {metrics['n_nuts_fits']} NUTS fits ({metrics['n_means_compared']} coefficient means), the "
        f"largest |mean - exact| was {metrics['max_nuts_mean_z']:.2f} Monte Carlo standard errors and every "
        f"SD was within {metrics['max_nuts_sd_ratio_err']:.1%} of the exact one.",
        f"The sampler converged everywhere: R-hat at most {metrics['max_nuts_rhat']:.3f}, bulk ESS at least "
        f"{metrics['min_nuts_ess_bulk']:.0f}, {metrics['nuts_divergences']} divergences.",
    ]


def plot_nuts(nuts: pd.DataFrame):
    """Each coefficient's |mean - exact| in MCSE and its SD ratio against alpha, known and unknown noise."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    bound = z_bound(len(nuts))
    for noise, marker in (("known", "o"), ("unknown", "s")):
        table = nuts[nuts.noise == noise]
        left.plot(table.alpha, table.mean_z, marker, alpha=0.6, label=f"{noise} noise")
        right.plot(table.alpha, table.sd_ratio, marker, alpha=0.6, label=f"{noise} noise")
    left.axhline(bound, color="black", linestyle=":", label=f"bound {bound:.2f}")
    right.axhspan(0.9, 1.1, color="tab:green", alpha=0.1, label="within 10%")
    left.set(xscale="log", xlabel="Ridge alpha", ylabel="|NUTS mean - exact mean| / MCSE")
    right.set(xscale="log", xlabel="Ridge alpha", ylabel="NUTS SD / exact SD")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.suptitle(
        "NUTS on the Ridge twin of diabetes against its exact posterior, every coefficient"
    )
    fig.tight_layout()
    return fig


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={"nuts.csv": result.nuts.set_index(["dataset", "noise", "alpha", "feature"])},
        figures={"nuts.png": plot_nuts(result.nuts)},
        posteriors={
            f"posterior_{noise}_noise.nc": idata for noise, idata in result.posteriors.items()
        },
        config={"data": "diabetes"},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
