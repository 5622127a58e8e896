"""Convergence diagnostics and checks against exact answers, in units that can fail honestly.

* Convergence: largest R-hat, smallest bulk and tail ESS, number of divergent transitions (ArviZ 1.x).
* Equivalence: relative error ``max_j |a_j - b_j| / max_j |b_j|`` of one fit.
* Sampler accuracy: ``|mean - exact| / MCSE``, a z-score, and the ratio of sampled to exact SD.
"""

from typing import NamedTuple

import numpy as np


class Convergence(NamedTuple):
    """Worst-case convergence diagnostics of one sampled fit."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int

    def failures(self, *, rhat_max: float = 1.01, ess_bulk_min: float = 400.0) -> list[str]:
        """The checks this fit fails, as readable strings (empty when it passes)."""
        problems = []
        if not self.rhat_max <= rhat_max:
            problems.append(f"R-hat {self.rhat_max:.3f} > {rhat_max}")
        if not self.ess_bulk_min >= ess_bulk_min:
            problems.append(f"bulk ESS {self.ess_bulk_min:.0f} < {ess_bulk_min:.0f}")
        if self.divergences > 0:
            problems.append(f"{self.divergences} divergent transitions")
        return problems


def convergence(idata, var_names=None) -> Convergence:
    """R-hat, bulk and tail ESS over every scalar of ``var_names`` (all posterior variables by default)."""

    def worst(dataset, reduce):
        return float(reduce([reduce(dataset[name].values) for name in dataset.data_vars]))

    import arviz_stats as azs  # imported where it is used: an exact posterior needs none of it

    rhat = azs.rhat(idata, var_names=var_names)
    ess_bulk = azs.ess(idata, var_names=var_names, method="bulk")
    ess_tail = azs.ess(idata, var_names=var_names, method="tail")
    divergences = int(idata["sample_stats"]["diverging"].values.sum())
    return Convergence(
        rhat_max=worst(rhat, np.max),
        ess_bulk_min=worst(ess_bulk, np.min),
        ess_tail_min=worst(ess_tail, np.min),
        divergences=divergences,
    )


def relative_error(estimate, reference) -> float:
    """``max_j |a_j - b_j| / max_j |b_j|``: the error of one fit relative to its largest coefficient."""
    estimate = np.asarray(estimate, dtype=float)
    reference = np.asarray(reference, dtype=float)
    return float(np.max(np.abs(estimate - reference)) / np.max(np.abs(reference)))


def mean_z_scores(draws, exact_mean) -> np.ndarray:
    """``|sample mean - exact mean| / MCSE`` per coefficient; ``draws`` has shape ``(chain, draw, k)``."""
    draws = np.asarray(draws, dtype=float)
    import arviz_stats as azs

    mcse = azs.mcse(draws, method="mean", chain_axis=0, draw_axis=1)
    return np.abs(draws.mean(axis=(0, 1)) - exact_mean) / np.asarray(mcse)


def sd_ratio(draws, exact_sd) -> np.ndarray:
    """Sampled over exact marginal standard deviation per coefficient."""
    draws = np.asarray(draws, dtype=float)
    return draws.reshape(-1, draws.shape[-1]).std(axis=0, ddof=1) / np.asarray(exact_sd)


def checks(targets: dict) -> dict:
    """Pass/fail records for ``metadata.json`` from ``{name: (value, "<=" or ">=", bound)}``.

    A NaN value fails every check.
    """
    records = {}
    for name, (value, op, bound) in targets.items():
        passed = value <= bound if op == "<=" else value >= bound
        records[name] = {"value": value, "target": f"{op} {bound:g}", "passed": bool(passed)}
    return records
