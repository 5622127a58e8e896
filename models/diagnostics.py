"""Convergence diagnostics and checks against exact answers, in units that can fail honestly.

* Convergence: largest R-hat, smallest bulk and tail ESS, number of divergent transitions (ArviZ 1.x).
* Equivalence: relative error ``max_j |a_j - b_j| / max_j |b_j|`` of one fit.
* Sampler accuracy: ``|mean - exact| / MCSE`` and ``|quantile - exact| / MCSE``, z-scores, and the ratio of
  sampled to exact SD.
* Posterior shape: where each marginal's mean and median lie from the joint mode, in posterior SDs.
* Dependence: the correlation matrix of a covariance (one function, with the convention for a coefficient
  without spread as an argument), and the correlation of every pair of coefficients, in the draws and exact.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.stats

__all__ = [
    "Convergence",
    "convergence",
    "nuts_health",
    "relative_error",
    "mean_z_scores",
    "quantile_z_scores",
    "sd_ratio",
    "marginal_summary",
    "correlation",
    "correlation_table",
    "checks",
    "z_bound",
]


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


def nuts_health(fits) -> tuple[dict, dict]:
    """The worst convergence over several NUTS fits, and the usual checks on it.

    Parameters
    ----------
    fits : pandas.DataFrame
        One row per fit, with :class:`Convergence`'s columns and ``retried`` (whether
        :func:`models.fit.sample_nuts_retrying` sampled it again).

    Returns
    -------
    (dict, dict)
        Metrics (``max_nuts_rhat``, ``min_nuts_ess_bulk``, ``nuts_divergences``, ``nuts_retried_fits``,
        ``n_nuts_fits``) and targets for :func:`checks`: R-hat <= 1.01, bulk ESS >= 400, no divergences.
    """
    metrics = {
        "max_nuts_rhat": fits.rhat_max.max(),
        "min_nuts_ess_bulk": fits.ess_bulk_min.min(),
        "nuts_divergences": int(fits.divergences.sum()),
        "nuts_retried_fits": int(fits.retried.sum()),
        "n_nuts_fits": len(fits),
    }
    targets = {
        "nuts_rhat": (metrics["max_nuts_rhat"], "<=", 1.01),
        "nuts_ess_bulk": (metrics["min_nuts_ess_bulk"], ">=", 400),
        "nuts_no_divergences": (metrics["nuts_divergences"], "<=", 0),
    }
    return metrics, targets


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


def quantile_z_scores(draws, exact_quantiles, probs) -> np.ndarray:
    """``|sample quantile - exact quantile| / MCSE`` at each of ``probs``, for draws of one scalar.

    ``draws`` has shape ``(chain, draw)``; the MCSE of each quantile is ArviZ's.
    """
    draws = np.asarray(draws, dtype=float)
    import arviz_stats as azs

    mcse = [float(azs.mcse(draws, method="quantile", prob=q)) for q in probs]
    return np.abs(np.quantile(draws, probs) - np.asarray(exact_quantiles)) / np.asarray(mcse)


def sd_ratio(draws, exact_sd) -> np.ndarray:
    """Sampled over exact marginal standard deviation per coefficient."""
    draws = np.asarray(draws, dtype=float)
    return draws.reshape(-1, draws.shape[-1]).std(axis=0, ddof=1) / np.asarray(exact_sd)


def marginal_summary(draws, mode) -> dict:
    """How each coefficient's marginal posterior sits around the joint mode.

    Parameters
    ----------
    draws : array, shape ``(..., k)``
        Posterior draws of ``k`` coefficients (any leading chain and draw axes).
    mode : array, shape ``(k,)``
        The MAP.

    Returns
    -------
    dict
        Arrays of length ``k``: ``map``, ``mean``, ``median``, ``sd`` (ddof = 1), ``skewness``, ``q05``,
        ``q95``, and the distances ``mean_minus_map_sd``, ``median_minus_map_sd`` in posterior SDs.
    """
    flat = np.asarray(draws, dtype=float).reshape(-1, np.shape(draws)[-1])
    mean, median, sd = flat.mean(axis=0), np.median(flat, axis=0), flat.std(axis=0, ddof=1)
    return {
        "map": mode,
        "mean": mean,
        "median": median,
        "sd": sd,
        "skewness": scipy.stats.skew(flat),
        "q05": np.quantile(flat, 0.05, axis=0),
        "q95": np.quantile(flat, 0.95, axis=0),
        "mean_minus_map_sd": (mean - mode) / sd,
        "median_minus_map_sd": (median - mode) / sd,
    }


def correlation(cov, *, zero_variance: str = "nan") -> np.ndarray:
    """The correlation matrix of a covariance matrix.

    A coefficient with zero variance (a point estimate, or a feature ARD pruned) has no correlation defined.
    Two conventions, because the callers need both: ``"nan"`` (default) leaves its row and column NaN (0 / 0),
    so that a table shown to a user says "undefined" (:meth:`models.twin.TwinFit.correlation`);
    ``"uncorrelated"`` sets them to 0 and its diagonal entry to 1, so that a point estimate can be scored
    against a reference correlation matrix with a finite error
    (:func:`models.approximations.correlation_error`: the MAP scores as a Gaussian without dependence).

    Parameters
    ----------
    cov : array_like, shape (k, k)
    zero_variance : {"nan", "uncorrelated"}
    """
    if zero_variance not in ("nan", "uncorrelated"):
        raise ValueError(f"zero_variance must be 'nan' or 'uncorrelated', got {zero_variance!r}")
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    if zero_variance == "nan":
        return corr
    return np.where(np.outer(sd, sd) > 0, corr, 0.0) + np.diag(np.where(sd > 0, 0.0, 1.0))


def correlation_table(draws, exact_cov, names) -> pd.DataFrame:
    """Posterior correlation of every pair of coefficients: in the draws and from the exact covariance.

    Parameters
    ----------
    draws : array_like, shape (..., k)
        Posterior draws of ``k`` coefficients (any leading chain and draw axes, pooled).
    exact_cov : array_like, shape (k, k)
        The exact posterior covariance of the same coefficients.
    names : sequence of str
        The ``k`` coefficients' names.

    Returns
    -------
    pandas.DataFrame
        One row per pair ``j < l`` (index ``feature``, ``other_feature``), columns ``exact`` and ``nuts``.
    """
    names = list(names)
    nuts = np.corrcoef(np.asarray(draws).reshape(-1, len(names)), rowvar=False)
    exact = correlation(exact_cov)
    a, b = np.triu_indices(len(names), k=1)
    index = pd.MultiIndex.from_arrays(
        [np.array(names)[a], np.array(names)[b]], names=["feature", "other_feature"]
    )
    return pd.DataFrame({"exact": exact[a, b], "nuts": nuts[a, b]}, index=index)


def checks(targets: dict) -> dict:
    """Pass/fail records for ``metadata.json`` from ``{name: (value, "<=" or ">=", bound)}``.

    A NaN value fails every check.
    """
    records = {}
    for name, (value, op, bound) in targets.items():
        passed = value <= bound if op == "<=" else value >= bound
        records[name] = {"value": value, "target": f"{op} {bound:g}", "passed": bool(passed)}
    return records


def z_bound(k: int, family_rate: float = 0.001) -> float:
    """The bound on the largest of ``k`` independent |z|-scores that a correct sampler exceeds by chance
    with probability at most ``family_rate`` (Bonferroni): 4.44 for ``k = 110`` at 0.1%."""
    import scipy.stats

    return float(scipy.stats.norm.isf(family_rate / (2 * k)))
