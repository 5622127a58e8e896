"""Calibration: do credible intervals cover the truth as often as they claim?

Simulation-based calibration in its simplest form: draw the truth from the model's own prior,
simulate data from the likelihood, fit, and count how often the ``level`` interval contains the
truth. When the model is the one that generated the data, that frequency is ``level`` exactly (up to
Monte Carlo error), whatever the design; a prior that does not match the data-generating process
breaks it.

* :func:`linear_prior_datasets`: data sets from the prior of the unknown-noise linear twin.
* :func:`exact_intervals`, :func:`draw_intervals`: equal-tailed intervals, closed form or draws.
* :func:`coverage`: the coverage of a batch of intervals with its Monte Carlo standard error.
* :func:`exact_predictive_interval`: the linear twin's closed-form posterior predictive interval.
"""

from typing import NamedTuple

import numpy as np
import scipy.special

from models.exact import LinearPosterior, linear_posterior


class Coverage(NamedTuple):
    """Empirical coverage of intervals that claim probability ``level``.

    ``mcse`` is the Monte Carlo standard error of ``coverage`` (see :func:`coverage`); ``z`` is
    ``(coverage - level) / mcse``.
    """

    level: float
    coverage: float
    mcse: float
    n_replications: int
    n_intervals: int

    @property
    def z(self) -> float:
        return (self.coverage - self.level) / self.mcse


def coverage(hits, *, level: float) -> Coverage:
    """Coverage of intervals of probability ``level`` from hit indicators, with its MC error.

    Parameters
    ----------
    hits : array_like of bool, shape (n_replications,) or (n_replications, n_coef)
        Whether each interval contained the truth. Intervals of one replication share its data (and
        its noise scale), so they are not independent: the standard error is that of the mean of the
        per-replication fractions across replications (replications are independent).
    level : float
        The probability the intervals claim.

    Returns
    -------
    Coverage
        ``mcse`` is the between-replication standard error, floored at the binomial error
        ``sqrt(level (1 - level) / n_intervals)`` that independent calibrated intervals would have:
        a sample in which every interval covered does not have zero error.
    """
    hits = np.asarray(hits, dtype=float)
    if hits.ndim == 1:
        hits = hits[:, None]
    if hits.ndim != 2 or hits.shape[0] < 2:
        raise ValueError(
            "hits must have shape (n_replications >= 2,) or (n_replications >= 2, n_coef)"
        )
    per_replication = hits.mean(axis=1)
    n_replications, n_coef = hits.shape
    between = per_replication.std(ddof=1) / np.sqrt(n_replications)
    binomial = np.sqrt(level * (1.0 - level) / hits.size)
    return Coverage(
        level=float(level),
        coverage=float(per_replication.mean()),
        mcse=float(max(between, binomial)),
        n_replications=int(n_replications),
        n_intervals=int(hits.size),
    )


def covers(lower, upper, truth) -> np.ndarray:
    """``lower <= truth <= upper``, elementwise (broadcasting)."""
    truth = np.asarray(truth)
    return (np.asarray(lower) <= truth) & (truth <= np.asarray(upper))


def equal_tailed(level: float) -> tuple[float, float]:
    """Quantile probabilities ``((1 - level) / 2, (1 + level) / 2)`` of an equal-tailed interval."""
    return (1.0 - level) / 2.0, (1.0 + level) / 2.0


def draw_intervals(draws, levels) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed intervals from posterior draws.

    Parameters
    ----------
    draws : array_like, shape (chain, draw, n_coef) or (n_draws, n_coef)
    levels : sequence of float

    Returns
    -------
    lower, upper : ndarray, shape (len(levels), n_coef)
    """
    draws = np.asarray(draws, dtype=float)
    flat = draws.reshape(-1, draws.shape[-1])
    probs = np.array([equal_tailed(level) for level in levels])
    bounds = np.quantile(flat, probs.ravel(), axis=0).reshape(len(levels), 2, -1)
    return bounds[:, 0], bounds[:, 1]


def exact_intervals(posterior: LinearPosterior, levels) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed intervals of the closed-form marginals, shape ``(len(levels), n_coef)`` each."""
    probs = np.array([equal_tailed(level) for level in levels])
    bounds = posterior.quantile(probs.ravel()).reshape(len(levels), 2, -1)
    return bounds[:, 0], bounds[:, 1]


class PriorDatasets(NamedTuple):
    """Data sets simulated from the linear twin's prior on one fixed design.

    ``truth`` has shape ``(n_replications, 1 + p)`` (intercept first, as in
    :class:`models.exact.LinearPosterior`), ``y`` ``(n_replications, n)``, ``sigma``
    ``(n_replications,)``.
    """

    truth: np.ndarray
    y: np.ndarray
    sigma: np.ndarray


def linear_prior_datasets(
    X,
    *,
    ridge_alpha: float,
    size: int,
    rng: np.random.Generator,
    noise_prior: tuple[float, float],
    intercept: float = 0.0,
) -> PriorDatasets:
    """Draw ``size`` data sets from the prior of the unknown-noise twin (:mod:`models.linear`).

    ``sigma**2 ~ InverseGamma(*noise_prior)``, ``beta | sigma ~ N(0, sigma**2 / ridge_alpha)``,
    ``y = intercept + X beta + sigma * eps``. The twin's intercept has a flat prior, which cannot be
    drawn from; the interval of the intercept shifts with ``y`` (location equivariance), so its
    coverage does not depend on the value, fixed at ``intercept``.

    Parameters
    ----------
    X : array_like, shape (n, p)
        The fixed design.
    ridge_alpha : float
        Ridge's alpha of the generating prior (> 0).
    size : int
        Number of data sets.
    rng : numpy.random.Generator
    noise_prior : (float, float)
        Inverse-gamma shape and rate of ``sigma**2``, both > 0: the twin's default, Jeffreys' prior, is
        improper and cannot be drawn from. Analyse the draws with the same prior.
    intercept : float
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    shape, rate = noise_prior
    if not (shape > 0 and rate > 0):
        raise ValueError(
            f"data sets need a proper noise prior (shape, rate > 0), got {noise_prior}"
        )
    sigma = np.sqrt(rate / rng.gamma(shape, 1.0, size=size))
    beta = rng.standard_normal((size, p)) * (sigma / np.sqrt(ridge_alpha))[:, None]
    y = intercept + beta @ X.T + sigma[:, None] * rng.standard_normal((size, n))
    truth = np.column_stack([np.full(size, intercept), beta])
    return PriorDatasets(truth, y, sigma)


def exact_coverage_hits(
    X, Y, truth, *, ridge_alpha: float, levels, **posterior_kwargs
) -> np.ndarray:
    """Hit indicators of the exact posterior's equal-tailed intervals on each simulated data set.

    Parameters
    ----------
    X : array_like, shape (n, p)
    Y : array_like, shape (n_replications, n)
    truth : array_like, shape (n_replications, n_coef)
    ridge_alpha : float
        The alpha the *analysis* assumes (it may differ from the one that generated ``Y``).
    levels : sequence of float
    **posterior_kwargs
        Passed to :func:`models.exact.linear_posterior` (``noise_sigma=None`` by default).

    Returns
    -------
    ndarray of bool, shape (len(levels), n_replications, n_coef)
    """
    posterior_kwargs.setdefault("noise_sigma", None)
    hits = []
    for y, true_coef in zip(np.asarray(Y), np.asarray(truth), strict=True):
        posterior = linear_posterior(X, y, ridge_alpha=ridge_alpha, **posterior_kwargs)
        lower, upper = exact_intervals(posterior, levels)
        hits.append(covers(lower, upper, true_coef))
    return np.stack(hits, axis=1)


def exact_predictive_interval(posterior: LinearPosterior, X_new, level: float):
    """Equal-tailed posterior predictive interval of new ``y = intercept + x beta + noise``.

    With unknown noise (inverse-gamma posterior of ``sigma**2`` with shape ``a`` and rate ``b``) the
    predictive distribution is Student-t with ``2 a`` degrees of freedom, location ``x_1 m`` and
    squared scale ``b / a + ||x_1 S||**2``, where ``x_1 = (1, x)`` and ``S`` is the posterior's
    ``scale_factor``. Only this unknown-noise case is implemented: with known noise the predictive
    variance is ``noise_sigma**2 + ||x_1 S||**2``, and the known-noise posterior does not carry its
    ``noise_sigma``.

    Returns
    -------
    lower, upper : ndarray, shape (n_new,)
    """
    if posterior.noise_shape is None:
        raise ValueError(
            "exact_predictive_interval needs the unknown-noise posterior (noise_sigma=None)"
        )
    X_new = np.asarray(X_new, dtype=float)
    if posterior.names[0] == "intercept":
        X_new = np.column_stack([np.ones(len(X_new)), X_new])
    location = X_new @ posterior.mean
    scale = np.sqrt(
        posterior.noise_rate / posterior.noise_shape
        + np.sum((X_new @ posterior.scale_factor) ** 2, 1)
    )
    t = scipy.special.stdtrit(posterior.df, equal_tailed(level)[1])
    return location - t * scale, location + t * scale
