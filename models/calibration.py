"""Calibration: do credible intervals cover the truth as often as they claim?

Simulation-based calibration in its simplest form: draw the truth from the model's own prior,
simulate data from the likelihood, fit, and count how often the ``level`` interval contains the
truth. When the model is the one that generated the data, that frequency is ``level`` exactly (up to
Monte Carlo error), whatever the design; a prior that does not match the data-generating process
breaks it.

* :func:`linear_prior_datasets`: data sets from the prior of the unknown-noise linear twin.
* :func:`exact_intervals`, :func:`draw_intervals`: equal-tailed intervals, closed form or draws.
* :func:`coverage`, :func:`coverage_rows`: the coverage of a batch of intervals with its Monte Carlo
  standard error.
* :func:`exact_coverage_hits`, :func:`nuts_coverage_hits`: which intervals of the exact posterior or of
  NUTS contain the truth, on each simulated data set; :func:`prior_calibration`: the whole study, with
  misspecified priors beside the right one.
* :func:`interval_table`: per coefficient, NUTS's and the exact posterior's intervals side by side.
* :func:`exact_predictive_interval`: the linear twin's closed-form posterior predictive interval;
  :func:`predictive_table`: it and NUTS's beside observed new values.
"""

import time
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.special

from models.diagnostics import convergence, mean_z_scores
from models.exact import LinearPosterior, linear_posterior
from models.fit import posterior_coefficients, sample_nuts

__all__ = [
    "Coverage",
    "coverage",
    "coverage_rows",
    "covers",
    "equal_tailed",
    "draw_intervals",
    "exact_intervals",
    "interval_table",
    "PriorDatasets",
    "linear_prior_datasets",
    "exact_coverage_hits",
    "nuts_coverage_hits",
    "prior_calibration",
    "exact_predictive_interval",
    "predictive_table",
]


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


def coverage_rows(hits, levels) -> list[dict]:
    """One record per level: :class:`Coverage`'s fields and its ``z``.

    Parameters
    ----------
    hits : array_like of bool, shape (len(levels), n_replications, n_coef)
        As :func:`exact_coverage_hits` and :func:`nuts_coverage_hits` return them.
    levels : sequence of float
    """
    rows = []
    for level, level_hits in zip(levels, hits, strict=True):
        c = coverage(level_hits, level=level)
        rows.append(c._asdict() | {"z": c.z})
    return rows


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


def interval_table(draws, exact: LinearPosterior, level: float) -> pd.DataFrame:
    """Per coefficient, the NUTS draws' and the exact posterior's mean, SD and ``level`` interval.

    Parameters
    ----------
    draws : array_like, shape (chain, draw, n_coef)
        NUTS draws of the coefficients in the order of ``exact.names`` (intercept first, as
        :func:`models.fit.posterior_coefficients` gives them).
    exact : LinearPosterior
    level : float
        Probability of the equal-tailed intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``feature`` (``exact.names``): ``exact_`` and ``nuts_`` ``mean``, ``sd``, ``lower`` and
        ``upper`` (the SD of the draws with ddof = 1), ``mean_z`` (``|NUTS mean - exact mean| / MCSE``),
        and whether each interval contains 0: ``contains_zero`` (NUTS) and ``exact_contains_zero``.
    """
    draws = np.asarray(draws, dtype=float)
    nuts_lower, nuts_upper = draw_intervals(draws, [level])
    exact_lower, exact_upper = exact_intervals(exact, [level])
    table = pd.DataFrame(
        {
            "exact_mean": exact.mean,
            "exact_sd": exact.sd,
            "exact_lower": exact_lower[0],
            "exact_upper": exact_upper[0],
            "nuts_mean": draws.mean(axis=(0, 1)),
            "nuts_sd": draws.reshape(-1, draws.shape[-1]).std(axis=0, ddof=1),
            "nuts_lower": nuts_lower[0],
            "nuts_upper": nuts_upper[0],
            "mean_z": mean_z_scores(draws, exact.mean),
        },
        index=pd.Index(exact.names, name="feature"),
    )
    table["contains_zero"] = (table.nuts_lower <= 0) & (table.nuts_upper >= 0)
    table["exact_contains_zero"] = (table.exact_lower <= 0) & (table.exact_upper >= 0)
    return table


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


def nuts_coverage_hits(
    compiled, Y, truth, *, levels, seeds, **sample_kwargs
) -> tuple[np.ndarray, list[dict]]:
    """Hit indicators of NUTS's equal-tailed intervals on each simulated data set, and each fit's health.

    The sampled counterpart of :func:`exact_coverage_hits`: the compiled twin is refitted to each data
    set through its ``pm.Data`` ``y_observed``, without compiling again.

    Parameters
    ----------
    compiled
        The twin compiled once by :func:`models.fit.compile_nuts` (its coefficients ``intercept`` and
        ``beta`` in the order of ``truth``).
    Y : array_like, shape (n_replications, n)
    truth : array_like, shape (n_replications, n_coef)
    levels : sequence of float
    seeds : sequence of int
        One NUTS seed per replication.
    **sample_kwargs
        Passed to :func:`models.fit.sample_nuts`: ``draws``, ``tune``, ``chains``, and other ``pm.Data``
        values that stay the same for every data set (such as ``noise_shape`` and ``noise_rate``).

    Returns
    -------
    hits : ndarray of bool, shape (len(levels), n_replications, n_coef)
    fits : list of dict
        One per fit: :class:`models.diagnostics.Convergence`'s fields and ``seconds`` (sampling and
        diagnostics).
    """
    hits, fits = [], []
    for y, true_coef, seed in zip(np.asarray(Y), np.asarray(truth), seeds, strict=True):
        start = time.perf_counter()
        idata = sample_nuts(compiled, seed=int(seed), y_observed=y, **sample_kwargs)
        lower, upper = draw_intervals(posterior_coefficients(idata), levels)
        hits.append(covers(lower, upper, true_coef))
        fits.append(convergence(idata)._asdict() | {"seconds": time.perf_counter() - start})
    return np.stack(hits, axis=1), fits


def prior_calibration(
    X,
    compiled,
    *,
    ridge_alpha: float,
    levels,
    n_exact: int,
    rng: np.random.Generator,
    seeds,
    noise_prior: tuple[float, float],
    scale_factors=(),
    **sample_kwargs,
) -> tuple[pd.DataFrame, list[dict]]:
    """Coverage of the linear twin's intervals on data sets drawn from its own prior on the design ``X``.

    Draws ``n_exact`` data sets (:func:`linear_prior_datasets`) and counts how often the equal-tailed
    intervals contain the true coefficients: those of the exact posterior under the generating prior and
    under priors whose SD is each of ``scale_factors`` times the generating one (Ridge's alpha divided by
    the factor squared), and those of NUTS under the generating prior, on the first ``len(seeds)`` data
    sets.

    Parameters
    ----------
    X : array_like, shape (n, p)
    compiled
        The unknown-noise twin of ``X`` compiled by :func:`models.fit.compile_nuts`.
    ridge_alpha : float
        Ridge's alpha of the generating prior.
    levels : sequence of float
    n_exact : int
        Data sets analysed exactly (under each prior).
    rng : numpy.random.Generator
        Draws the data sets.
    seeds : sequence of int
        One NUTS seed per data set analysed by NUTS: the first ``len(seeds) <= n_exact`` ones.
    noise_prior : (float, float)
        The proper inverse-gamma prior of ``sigma**2`` that simulates and analyses (see
        :func:`linear_prior_datasets`).
    scale_factors : sequence of float
        Misspecified analysis priors, as multiples of the generating prior's SD.
    **sample_kwargs
        NUTS settings for :func:`models.fit.sample_nuts` (``draws``, ``tune``, ``chains``).

    Returns
    -------
    coverage : pandas.DataFrame
        One row per method (``"exact"``, ``"nuts"``), ``prior_scale_factor`` (1 first) and level, with
        :func:`coverage_rows`' columns.
    fits : list of dict
        One per NUTS fit: ``fit`` (``calibration_<i>``), ``true_sigma`` and :func:`nuts_coverage_hits`'
        record.
    """
    sim = linear_prior_datasets(
        X, ridge_alpha=ridge_alpha, size=n_exact, rng=rng, noise_prior=noise_prior
    )
    rows = []
    for factor in (1.0, *scale_factors):
        hits = exact_coverage_hits(
            X,
            sim.y,
            sim.truth,
            ridge_alpha=ridge_alpha / factor**2,
            levels=levels,
            noise_prior=noise_prior,
        )
        rows += [
            {"method": "exact", "prior_scale_factor": factor} | row
            for row in coverage_rows(hits, levels)
        ]
    nuts_hits, nuts_fits = nuts_coverage_hits(
        compiled,
        sim.y[: len(seeds)],
        sim.truth[: len(seeds)],
        levels=levels,
        seeds=seeds,
        noise_shape=noise_prior[0],
        noise_rate=noise_prior[1],
        **sample_kwargs,
    )
    rows += [
        {"method": "nuts", "prior_scale_factor": 1.0} | row
        for row in coverage_rows(nuts_hits, levels)
    ]
    fits = [
        {"fit": f"calibration_{i}", "true_sigma": sim.sigma[i]} | fit
        for i, fit in enumerate(nuts_fits)
    ]
    return pd.DataFrame(rows), fits


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


def predictive_table(
    idata, exact: LinearPosterior, X_new, y_new, *, level: float, rng, index=None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Posterior predictive ``level`` intervals of new observations, from NUTS draws and exact.

    The NUTS intervals are equal-tailed intervals of draws ``intercept + x beta + sigma * eps`` (one
    standard normal ``eps`` per posterior draw and new row) of the unknown-noise linear twin; the exact
    ones are :func:`exact_predictive_interval`.

    Parameters
    ----------
    idata : xarray.DataTree
        NUTS draws with ``intercept``, ``beta`` and ``sigma`` in its ``posterior`` group.
    exact : LinearPosterior
        The unknown-noise posterior (``noise_sigma=None``).
    X_new : array_like, shape (n_new, p)
    y_new : array_like, shape (n_new,)
        The observed new values.
    level : float
    rng : numpy.random.Generator
        Draws ``eps``.
    index : pandas.Index or None
        The table's index (a ``RangeIndex`` when None).

    Returns
    -------
    table : pandas.DataFrame
        ``observed``, ``nuts_lower``, ``nuts_upper``, ``exact_lower``, ``exact_upper``, and whether each
        interval contains the observation: ``covered`` (NUTS) and ``exact_covered``.
    draws : ndarray, shape (chain, draw, n_new)
        The predictive draws.
    """
    X_new = np.asarray(X_new, dtype=float)
    post = idata["posterior"]
    mu = post["intercept"].values[..., None] + post["beta"].values @ X_new.T
    y_rep = mu + post["sigma"].values[..., None] * rng.standard_normal(mu.shape)
    nuts_lower, nuts_upper = draw_intervals(y_rep, [level])
    exact_lower, exact_upper = exact_predictive_interval(exact, X_new, level)
    table = pd.DataFrame(
        {
            "observed": y_new,
            "nuts_lower": nuts_lower[0],
            "nuts_upper": nuts_upper[0],
            "exact_lower": exact_lower,
            "exact_upper": exact_upper,
        },
        index=index,
    )
    table["covered"] = covers(table.nuts_lower, table.nuts_upper, table.observed)
    table["exact_covered"] = covers(table.exact_lower, table.exact_upper, table.observed)
    return table, y_rep
