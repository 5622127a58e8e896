"""The pointwise log-likelihood of the linear twin, computed on demand and in chunks from posterior draws.

The sufficient-statistics twin (``linear_regression(..., likelihood="suffstat")``) has no observed variable,
so PyMC cannot give its pointwise log-likelihood, and at a million rows the full ``(chain, draw, obs_id)``
array would not fit anyway (2,000 draws x 1e6 rows is 16 GB). The Gaussian likelihood of row ``i``,
``N(y_i | intercept + x_i beta, sigma**2 / w_i)``, is evaluated here from the draws for ``chunk_size`` rows
at a time. PSIS-LOO is a sum over observations of quantities that each depend on one observation only, so
:func:`loo` computes it chunk by chunk with memory bounded by ``chains x draws x chunk_size``.
"""

from collections.abc import Iterator
from typing import NamedTuple

import arviz_stats as azs
import numpy as np
import xarray as xr

from models.diagnostics import convergence
from models.fit import posterior_coefficients

__all__ = [
    "HALF_LOG_2PI",
    "pointwise_chunks",
    "with_log_likelihood",
    "ChunkedLoo",
    "loo",
]

HALF_LOG_2PI = float(np.log(2.0 * np.pi) / 2.0)


def _noise_variance(idata, noise_sigma):
    if noise_sigma is not None:
        return np.asarray(float(noise_sigma) ** 2)
    posterior = idata["posterior"]
    if "sigma_squared" in posterior:
        return posterior["sigma_squared"].values
    return posterior["sigma"].values ** 2


def pointwise_chunks(
    idata,
    X,
    y,
    *,
    sample_weight=None,
    fit_intercept: bool = True,
    noise_sigma: float | None = None,
    chunk_size: int = 10_000,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, log_lik)`` with ``log_lik`` of shape ``(chain, draw, len(rows))``, chunk by chunk.

    Parameters
    ----------
    idata : DataTree
        A posterior of the linear twin (``intercept`` when fitted, ``beta``, and ``sigma_squared`` unless
        ``noise_sigma`` is given), row-wise or sufficient-statistics: the two have the same variables.
    X, y, sample_weight, fit_intercept, noise_sigma
        As given to :func:`models.linear.linear_regression`.
    chunk_size : int
        Rows per chunk.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    weights = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    coef = posterior_coefficients(idata)
    intercept, beta = (coef[..., 0], coef[..., 1:]) if fit_intercept else (0.0, coef)
    variance = _noise_variance(idata, noise_sigma)[..., None]
    for start in range(0, y.size, chunk_size):
        rows = slice(start, min(start + chunk_size, y.size))
        mu = beta @ X[rows].T
        if fit_intercept:
            mu += intercept[..., None]
        # The standard normal's log density at the standardized residual, less log(scale): the same
        # operations as scipy.stats.norm.logpdf, without its argument checks (several times faster here).
        scale = np.sqrt(variance / weights[rows])
        z = (y[rows] - mu) / scale
        yield rows, -0.5 * z**2 - HALF_LOG_2PI - np.log(scale)


def with_log_likelihood(idata, X, y, **kwargs):
    """A copy of ``idata`` with a ``log_likelihood`` group (variable ``y``, dims chain, draw, obs_id).

    The whole array at once: for data sets whose ``chains x draws x n`` floats fit in memory; otherwise use
    :func:`loo`, which never holds more than one chunk.
    """
    log_lik = np.concatenate(
        [chunk for _, chunk in pointwise_chunks(idata, X, y, **kwargs)], axis=-1
    )
    out = idata.copy()
    out["log_likelihood"] = xr.Dataset({"y": (("chain", "draw", "obs_id"), log_lik)})
    return out


class ChunkedLoo(NamedTuple):
    """PSIS-LOO summed over chunks of observations."""

    elpd: float
    se: float
    p: float
    pareto_k_max: float
    n_k_above_good: int
    good_k: float
    n_data_points: int


def loo(idata, X, y, *, chunk_size: int = 10_000, **kwargs) -> ChunkedLoo:
    """PSIS-LOO of the linear twin, computed chunk by chunk from the posterior draws.

    Each chunk is passed to ``arviz_stats.loo`` with the same relative efficiency ``reff`` (the posterior's
    smallest bulk ESS over the number of draws, fixed once for every chunk), so the sum over chunks equals
    the result on the whole array. ``kwargs`` go to :func:`pointwise_chunks`.
    """
    posterior = idata["posterior"]
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    reff = min(1.0, convergence(idata).ess_bulk_min / n_samples)
    elpd_i, pareto_k, p, good_k = [], [], 0.0, np.nan
    for _, log_lik in pointwise_chunks(idata, X, y, chunk_size=chunk_size, **kwargs):
        chunk = xr.DataTree.from_dict(
            {
                "posterior": posterior.to_dataset(),
                "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs_id"), log_lik)}),
            }
        )
        result = azs.loo(chunk, pointwise=True, reff=reff)
        elpd_i.append(result.elpd_i.values)
        pareto_k.append(result.pareto_k.values)
        p += result.p
        good_k = result.good_k
    elpd_i = np.concatenate(elpd_i)
    pareto_k = np.concatenate(pareto_k)
    return ChunkedLoo(
        elpd=float(elpd_i.sum()),
        se=float(np.sqrt(elpd_i.size * np.var(elpd_i, ddof=1))),
        p=float(p),
        pareto_k_max=float(pareto_k.max()),
        n_k_above_good=int(np.sum(pareto_k > good_k)),
        good_k=float(good_k),
        n_data_points=int(elpd_i.size),
    )
