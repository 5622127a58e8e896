"""Where the prior scale comes from: the evidence of the Ridge twin, and a hierarchical twin that learns it.

The evidence (log marginal likelihood) of the linear twin of :mod:`models.linear` as a function of Ridge's
``alpha = sigma**2 / tau**2``, in closed form through one SVD of the centered, whitened design:

* known noise ``sigma``: ``log p(y | alpha, sigma)``, Gaussian;
* unknown noise with the conjugate ``sigma**2 ~ InverseGamma(a0, b0)``: ``log p(y | alpha)``, Student-t;
  under Jeffreys' ``1 / sigma**2`` (``a0 = b0 = 0``, the default) it is defined up to that improper prior's
  constant, which is the same for every ``alpha``, so it still ranks and maximizes over ``alpha``;
* profiled noise: ``max_sigma log p(y | alpha, sigma)``, the type-II maximum likelihood that
  scikit-learn's ``BayesianRidge`` climbs (with near-flat hyperpriors).

The intercept has the twin's flat prior and is integrated out against Lebesgue measure; the evidence is then
defined up to that measure's constant, which does not depend on ``alpha`` or ``sigma``. After the intercept is
integrated, the response lives in the ``m = n - 1`` dimensions orthogonal to the (weighted) constant, and

``log p(y | alpha, sigma) = c - m log(sigma) - 1/2 sum_i log(1 + s_i**2 / alpha) - Q(alpha) / (2 sigma**2)``

with ``s_i`` the singular values of the centered design and ``Q(alpha) = min_beta ||z - Z beta||**2 + alpha
||beta||**2`` the penalized residual sum of squares at the Ridge solution, computed as
``||z - U U^T z||**2 + sum_i (u_i^T z)**2 alpha / (s_i**2 + alpha)`` (a sum of non-negative terms: no
cancellation at small or large ``alpha``).

:func:`hierarchical_linear_regression` puts priors on the prior scale ``tau`` and the noise ``sigma`` instead
of fixing them; :func:`hyperposterior` is its reference answer: the exact posterior of ``(sigma, alpha)`` by
quadrature on a grid, with the coefficients' posterior mean as a mixture of Ridge fits;
:func:`nuts_against_quadrature` measures sampled draws against it in Monte Carlo standard errors.
"""

import warnings
from typing import NamedTuple

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.special
import scipy.stats
from sklearn.linear_model import BayesianRidge

from models.diagnostics import convergence, mean_z_scores, quantile_z_scores, relative_error
from models.exact import NOISE_PRIOR, WhitenedDesign, noise_prior_terms
from models.fit import intercept_first, map_default, posterior_coefficients, sample_nuts
from models.loglik import with_log_likelihood
from models.registry import ridge_reference

__all__ = [
    "LOG_2PI",
    "Evidence",
    "bayesian_ridge_objective_argmax",
    "bayesian_ridge_gap",
    "bayesian_ridge_gap_decades",
    "log_evidence",
    "HyperpriorScales",
    "default_hyperprior_scales",
    "hierarchical_linear_regression",
    "Hyperposterior",
    "hyperposterior",
    "nuts_against_quadrature",
    "hierarchical_find_map",
    "profile_log_joint",
    "tau_profile",
    "LeaveOneOut",
    "exact_loo",
    "criteria_path",
    "psis_loo_against_exact",
]

LOG_2PI = float(np.log(2.0 * np.pi))


class Evidence:
    """The evidence of the linear twin for any ``alpha`` (and ``sigma``), from one SVD.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    sample_weight : array_like or None
        Row ``i`` has noise variance ``sigma**2 / w_i``.
    fit_intercept : bool
        Whether the twin has a flat-prior intercept (integrated out).
    relative_prior_cov : array_like or None
        ``Sigma0`` of the prior ``beta ~ N(0, sigma**2 / alpha * Sigma0)``; identity when None.

    Attributes
    ----------
    singular_values : ndarray
        Singular values ``s_i`` of the centered, weighted, whitened design.
    n_residual : int
        ``m``: the number of rows less one for an integrated intercept.
    n_rows : int
    """

    def __init__(self, X, y, *, sample_weight=None, fit_intercept=True, relative_prior_cov=None):
        design = WhitenedDesign.of(
            X,
            y,
            sample_weight=sample_weight,
            fit_intercept=fit_intercept,
            relative_prior_cov=relative_prior_cov,
        )
        z, w, n = design.z, design.w, len(design.z)
        U, s, _ = design.svd()
        projection = U.T @ z
        self.singular_values = s
        self._projection_sq = projection**2
        self._residual_sq = float(np.sum((z - U @ projection) ** 2))
        self.n_residual = n - int(fit_intercept)
        self.n_rows = n
        # Whitening the rows (Jacobian sum(log w) / 2) and integrating the flat intercept (log sum(w) / 2).
        self._log_const = 0.5 * np.sum(np.log(w)) - (
            0.5 * np.log(w.sum()) if fit_intercept else 0.0
        )

    def penalized_rss(self, ridge_alpha) -> np.ndarray:
        """``Q(alpha) = ||z - Z beta_alpha||**2 + alpha ||beta_alpha||**2`` at the Ridge solution."""
        alpha = np.asarray(ridge_alpha, dtype=float)[..., None]
        shrink = alpha / (self.singular_values**2 + alpha)
        return self._residual_sq + np.sum(self._projection_sq * shrink, axis=-1)

    def log_det(self, ridge_alpha) -> np.ndarray:
        """``log det(I + Z Z^T / alpha) = sum_i log1p(s_i**2 / alpha)``."""
        alpha = np.asarray(ridge_alpha, dtype=float)[..., None]
        return np.sum(np.log1p(self.singular_values**2 / alpha), axis=-1)

    def known_noise(self, ridge_alpha, noise_sigma) -> np.ndarray:
        """``log p(y | alpha, sigma)``; broadcasts ``ridge_alpha`` against ``noise_sigma``."""
        sigma = np.asarray(noise_sigma, dtype=float)
        m = self.n_residual
        return (
            self._log_const
            - 0.5 * m * (LOG_2PI + 2.0 * np.log(sigma))
            - 0.5 * self.log_det(ridge_alpha)
            - self.penalized_rss(ridge_alpha) / (2.0 * sigma**2)
        )

    def unknown_noise(self, ridge_alpha, noise_prior=NOISE_PRIOR) -> np.ndarray:
        """``log p(y | alpha)`` with ``sigma**2 ~ InverseGamma(shape, rate)`` integrated out.

        Under Jeffreys' prior (``(0, 0)``) the prior's normalizing constant ``rate**shape / Gamma(shape)``
        does not exist and is left out: the same constant for every ``alpha``.
        """
        shape0, rate0 = noise_prior_terms(noise_prior)
        m = self.n_residual
        shape = shape0 + 0.5 * m
        prior_const = shape0 * np.log(rate0) - scipy.special.gammaln(shape0) if shape0 > 0 else 0.0
        return (
            self._log_const
            - 0.5 * m * LOG_2PI
            - 0.5 * self.log_det(ridge_alpha)
            + prior_const
            + scipy.special.gammaln(shape)
            - shape * np.log(rate0 + 0.5 * self.penalized_rss(ridge_alpha))
        )

    def profiled_noise(self, ridge_alpha) -> np.ndarray:
        """``max_sigma log p(y | alpha, sigma)``, attained at ``sigma**2 = Q(alpha) / m``."""
        return self.known_noise(ridge_alpha, np.sqrt(self.profiled_noise_variance(ridge_alpha)))

    def profiled_noise_variance(self, ridge_alpha) -> np.ndarray:
        """The noise variance ``Q(alpha) / m`` that maximizes the known-noise evidence at ``alpha``."""
        return self.penalized_rss(ridge_alpha) / self.n_residual

    def maximize(self, kind: str = "profiled", *, bounds=(1e-8, 1e8), **kwargs) -> float:
        """The ``alpha`` maximizing the evidence (``kind``: "profiled", "unknown" or "known").

        A bounded search in ``log alpha`` from the best point of a 400-point log grid; the evidence is smooth
        in ``log alpha``, and the grid guards against a second, lower mode.
        """
        objective = {
            "profiled": self.profiled_noise,
            "unknown": self.unknown_noise,
            "known": self.known_noise,
        }[kind]
        grid = np.linspace(np.log(bounds[0]), np.log(bounds[1]), 400)
        values = objective(np.exp(grid), **kwargs)
        best = int(np.argmax(values))
        lower, upper = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
        result = scipy.optimize.minimize_scalar(
            lambda v: -objective(np.exp(v), **kwargs),
            bounds=(lower, upper),
            method="bounded",
            options={"xatol": 1e-10},
        )
        return float(np.exp(result.x))


def bayesian_ridge_objective_argmax(evidence: Evidence, start, *, hyperprior: float) -> float:
    """Ridge alpha maximizing scikit-learn's ``BayesianRidge`` objective over (noise, weight) precisions.

    scikit-learn's score is the known-noise evidence written with ``n`` rows where the twin has ``n - 1``
    (the centered response loses one dimension to the intercept), plus its Gamma hyperprior terms
    ``c log(precision) - c precision`` (``c = 1e-6`` by default; ``hyperprior=0`` drops them). Nelder-Mead
    in the log precisions from ``start`` = ``(log noise precision, log weight precision)``, to ``1e-12``.
    """
    extra_rows = evidence.n_rows - evidence.n_residual

    def negative(log_precisions):
        log_noise, log_weight = log_precisions
        alpha = np.exp(log_weight - log_noise)
        value = evidence.known_noise(alpha, np.exp(-0.5 * log_noise))
        value += 0.5 * extra_rows * (log_noise - np.log(2.0 * np.pi))
        value += hyperprior * (log_noise - np.exp(log_noise) + log_weight - np.exp(log_weight))
        return -value

    result = scipy.optimize.minimize(
        negative,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 10000},
    )
    return float(np.exp(result.x[1] - result.x[0]))


def bayesian_ridge_gap(X, y) -> pd.DataFrame:
    """scikit-learn's ``BayesianRidge`` against the evidence maximum, the gap between them taken apart.

    ``BayesianRidge`` at its defaults and run to convergence (``tol=1e-14``), the maximum of its own objective
    with and without its Gamma hyperpriors (:func:`bayesian_ridge_objective_argmax`), and the maximum of the
    twin's profiled-noise evidence. Its objective counts ``n`` rows where the twin's evidence has ``n - 1``.

    Returns
    -------
    DataFrame
        One row per ``quantity`` (``bayesianridge``, ``bayesianridge_converged``, ``sklearn_objective_max``,
        ``sklearn_objective_max_flat``, ``evidence_max``): its ``alpha`` (Ridge's: ``lambda_ / alpha_``
        for the estimator), ``log10_alpha_minus_evidence_max``, ``coef_rel_err_vs_ridge`` (the default
        estimator's ``coef_`` against ``Ridge`` at its alpha; NaN elsewhere) and ``n_iter``.
    """
    evidence = Evidence(X, y)
    default = BayesianRidge().fit(X, y)
    tight = BayesianRidge(tol=1e-14, max_iter=100_000).fit(X, y)
    alpha = default.lambda_ / default.alpha_
    start = np.log([tight.alpha_, tight.lambda_])
    rows = {
        "bayesianridge": alpha,
        "bayesianridge_converged": tight.lambda_ / tight.alpha_,
        "sklearn_objective_max": bayesian_ridge_objective_argmax(evidence, start, hyperprior=1e-6),
        "sklearn_objective_max_flat": bayesian_ridge_objective_argmax(
            evidence, start, hyperprior=0.0
        ),
        "evidence_max": evidence.maximize("profiled"),
    }
    table = pd.DataFrame({"quantity": list(rows), "alpha": list(rows.values())})
    table["log10_alpha_minus_evidence_max"] = np.log10(table.alpha / rows["evidence_max"])
    table["coef_rel_err_vs_ridge"] = np.nan
    table.loc[0, "coef_rel_err_vs_ridge"] = relative_error(
        intercept_first(default), ridge_reference(X, y, ridge_alpha=alpha)
    )
    table["n_iter"] = [default.n_iter_, tight.n_iter_, np.nan, np.nan, np.nan]
    return table


def bayesian_ridge_gap_decades(table: pd.DataFrame) -> dict[str, float]:
    """:func:`bayesian_ridge_gap`'s table (indexed by ``quantity``) as gaps in decades of alpha.

    ``total``: BayesianRidge at its defaults against the evidence maximum, taken apart into ``tolerance``
    (defaults against run to convergence), ``hyperpriors`` (its objective's maximum with against without its
    Gamma hyperpriors) and ``n_vs_n_minus_1`` (its objective without hyperpriors against the evidence
    maximum: n rows against n - 1); ``converged_vs_objective_max``: the converged estimator's distance to
    its own objective's maximum, a check on both optimizers.
    """
    alpha, gap = table.alpha, table.log10_alpha_minus_evidence_max
    return {
        "total": float(gap["bayesianridge"]),
        "tolerance": float(np.log10(alpha["bayesianridge"] / alpha["bayesianridge_converged"])),
        "hyperpriors": float(
            np.log10(alpha["sklearn_objective_max"] / alpha["sklearn_objective_max_flat"])
        ),
        "n_vs_n_minus_1": float(gap["sklearn_objective_max_flat"]),
        "converged_vs_objective_max": abs(
            float(np.log10(alpha["bayesianridge_converged"] / alpha["sklearn_objective_max"]))
        ),
    }


def log_evidence(
    X,
    y,
    *,
    ridge_alpha,
    noise_sigma: float | None = None,
    noise_prior: tuple[float, float] = NOISE_PRIOR,
    sample_weight=None,
    fit_intercept: bool = True,
    relative_prior_cov=None,
) -> np.ndarray:
    """Log marginal likelihood of the linear twin of ``Ridge(alpha=ridge_alpha)``.

    With ``noise_sigma`` given, ``log p(y | alpha, sigma)``; with ``noise_sigma=None``, the conjugate
    inverse-gamma ``noise_prior`` on ``sigma**2`` is integrated out (the model of
    :func:`models.linear.linear_regression` with ``noise_sigma=None``). A flat intercept is integrated against
    Lebesgue measure. Vectorized over ``ridge_alpha`` (an array gives an array).
    """
    evidence = Evidence(
        X,
        y,
        sample_weight=sample_weight,
        fit_intercept=fit_intercept,
        relative_prior_cov=relative_prior_cov,
    )
    if noise_sigma is None:
        return evidence.unknown_noise(ridge_alpha, noise_prior)
    return evidence.known_noise(ridge_alpha, noise_sigma)


class HyperpriorScales(NamedTuple):
    """Scales of the hierarchical twin's priors ``sigma ~ HalfNormal(sigma_scale)``,
    ``tau ~ HalfCauchy(tau_scale)``."""

    sigma_scale: float
    tau_scale: float


def default_hyperprior_scales(X, y) -> HyperpriorScales:
    """Weakly informative scales read off the data's units.

    ``sigma_scale = sd(y)``: the noise cannot plausibly exceed the response's own spread by much.
    ``tau_scale = sd(y) / rms_j sd(x_j)``: a coefficient of that size lets one feature alone move the response
    by one standard deviation of ``y``. The half-Cauchy's heavy tail leaves room for almost no shrinkage
    (``alpha -> 0``, least squares), and its finite density at zero for a strong one (``alpha -> inf``).
    """
    X = np.asarray(X, dtype=float)
    y_sd = float(np.std(y, ddof=1))
    x_sd = float(np.sqrt(np.mean(np.var(X, axis=0, ddof=1))))
    return HyperpriorScales(sigma_scale=y_sd, tau_scale=y_sd / x_sd)


def hierarchical_linear_regression(
    X,
    y,
    *,
    sigma_scale: float | None = None,
    tau_scale: float | None = None,
    noncentered: bool = True,
    fit_intercept: bool = True,
    feature_names=None,
) -> pm.Model:
    """The linear twin with a prior on its prior scale: Ridge with alpha learned, not chosen.

    ``y_i ~ N(intercept + x_i beta, sigma**2)``, flat intercept, ``beta_j ~ N(0, tau**2)``,
    ``sigma ~ HalfNormal(sigma_scale)``, ``tau ~ HalfCauchy(tau_scale)`` (see
    :func:`default_hyperprior_scales` for the defaults and why). Given ``(sigma, tau)`` it is the twin of
    ``Ridge(alpha=sigma**2 / tau**2)``, recorded as the deterministic ``ridge_alpha``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    sigma_scale, tau_scale : float or None
        Prior scales; :func:`default_hyperprior_scales` when None.
    noncentered : bool
        ``beta = tau * beta_raw`` with ``beta_raw ~ N(0, 1)`` (no funnel between ``beta`` and ``tau``); else
        ``beta ~ N(0, tau)`` directly.
    fit_intercept : bool
    feature_names : sequence of str or None

    Returns
    -------
    pm.Model
        Free variables ``intercept``, ``beta`` (or ``beta_raw``), ``tau``, ``sigma``; deterministics ``beta``
        (non-centered) and ``ridge_alpha``. ``X``, ``y_observed``, ``sigma_scale`` and ``tau_scale`` are
        ``pm.Data``: one compiled model serves several data sets (pass new scales with new data).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    defaults = default_hyperprior_scales(X, y)
    sigma_scale = defaults.sigma_scale if sigma_scale is None else float(sigma_scale)
    tau_scale = defaults.tau_scale if tau_scale is None else float(tau_scale)
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    coords = {"feature": feature_names, "obs_id": np.arange(n)}
    with pm.Model(coords=coords) as model:
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        y_ = pm.Data("y_observed", y, dims="obs_id")
        sigma_scale_ = pm.Data("sigma_scale", sigma_scale)
        tau_scale_ = pm.Data("tau_scale", tau_scale)
        sigma = pm.HalfNormal("sigma", sigma=sigma_scale_)
        tau = pm.HalfCauchy("tau", beta=tau_scale_)
        if noncentered:
            beta_raw = pm.Normal("beta_raw", 0.0, 1.0, dims="feature")
            beta = pm.Deterministic("beta", tau * beta_raw, dims="feature")
        else:
            beta = pm.Normal("beta", 0.0, tau, dims="feature")
        pm.Deterministic("ridge_alpha", sigma**2 / tau**2)
        mu = X_ @ beta
        if fit_intercept:
            mu = pm.Flat("intercept") + mu
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs_id")
    return model


class Hyperposterior(NamedTuple):
    """The exact posterior of the hierarchical twin's scales, on a grid.

    ``log_alpha`` (natural log) is the grid of ``alpha = sigma**2 / tau**2``, ``alpha_density`` the marginal
    posterior density of ``log alpha`` on it, ``alpha_cdf`` its distribution function; ``coef_mean`` the
    posterior mean of ``(intercept, beta)``, a mixture of Ridge solutions; ``log_tau`` and
    ``tau_density`` the marginal posterior of ``log tau`` on its own grid.
    """

    log_alpha: np.ndarray
    alpha_density: np.ndarray
    alpha_cdf: np.ndarray
    coef_mean: np.ndarray
    log_tau: np.ndarray
    tau_density: np.ndarray

    def alpha_quantile(self, q) -> np.ndarray:
        """Posterior quantiles of ``alpha``."""
        return np.exp(np.interp(q, self.alpha_cdf, self.log_alpha))


def hyperposterior(
    X,
    y,
    *,
    sigma_scale: float | None = None,
    tau_scale: float | None = None,
    alpha_bounds=(1e-10, 1e10),
    n_alpha: int = 2001,
    n_sigma: int = 801,
) -> Hyperposterior:
    """Exact posterior of :func:`hierarchical_linear_regression`'s scales, by quadrature.

    ``p(sigma, tau | y)`` is proportional to the known-noise evidence at ``alpha = sigma**2 / tau**2`` times
    the two priors. It is tabulated on a grid of ``(log sigma, log alpha)`` (Jacobian ``sigma tau / 2``), with
    ``log sigma`` spanning 12 posterior standard deviations around the noise level; the trapezoid rule on a
    smooth, light-tailed integrand. Given ``alpha``, the coefficients' posterior mean is Ridge's solution (it
    does not depend on ``sigma``), so their posterior mean is Ridge averaged over ``p(alpha | y)``.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    defaults = default_hyperprior_scales(X, y)
    sigma_scale = defaults.sigma_scale if sigma_scale is None else float(sigma_scale)
    tau_scale = defaults.tau_scale if tau_scale is None else float(tau_scale)
    evidence = Evidence(X, y)
    log_alpha = np.linspace(np.log(alpha_bounds[0]), np.log(alpha_bounds[1]), n_alpha)
    alpha = np.exp(log_alpha)
    # sigma's posterior sits between the least-squares residual SD and sd(y), each +-6 SDs (1/sqrt(2m)).
    rss = evidence.penalized_rss(alpha)
    spread = 6.0 / np.sqrt(2.0 * evidence.n_residual)
    log_sigma = np.linspace(
        0.5 * np.log(rss.min() / evidence.n_residual) - spread,
        0.5 * np.log(rss.max() / evidence.n_residual) + spread,
        n_sigma,
    )
    sigma = np.exp(log_sigma)[:, None]
    tau = sigma / np.sqrt(alpha)[None, :]
    log_density = (
        -evidence.n_residual * np.log(sigma)
        - 0.5 * evidence.log_det(alpha)[None, :]
        - rss[None, :] / (2.0 * sigma**2)
        + scipy.stats.halfnorm.logpdf(sigma, scale=sigma_scale)
        + scipy.stats.halfcauchy.logpdf(tau, scale=tau_scale)
        + np.log(sigma)
        + np.log(tau)
    )
    weights = np.exp(log_density - log_density.max())
    alpha_density = scipy.integrate.trapezoid(weights, log_sigma, axis=0)
    alpha_density /= scipy.integrate.trapezoid(alpha_density, log_alpha)
    alpha_cdf = scipy.integrate.cumulative_trapezoid(alpha_density, log_alpha, initial=0.0)
    alpha_cdf /= alpha_cdf[-1]

    # Marginal of log tau: a second grid in (log sigma, log tau) (Jacobian sigma tau), spanning the alpha
    # posterior's central 1 - 2e-9 at every sigma of the grid, and 1.5 more on each side.
    alpha_lo, alpha_hi = np.interp([1e-9, 1.0 - 1e-9], alpha_cdf, log_alpha)
    log_tau = np.linspace(
        log_sigma[0] - 0.5 * alpha_hi - 1.5, log_sigma[-1] - 0.5 * alpha_lo + 1.5, 800
    )
    tau = np.exp(log_tau)[None, :]
    alpha_st = sigma**2 / tau**2
    log_density = (
        -evidence.n_residual * np.log(sigma)
        - 0.5 * evidence.log_det(alpha_st)
        - evidence.penalized_rss(alpha_st) / (2.0 * sigma**2)
        + scipy.stats.halfnorm.logpdf(sigma, scale=sigma_scale)
        + scipy.stats.halfcauchy.logpdf(tau, scale=tau_scale)
        + np.log(sigma)
        + np.log(tau)
    )
    tau_density = scipy.integrate.trapezoid(
        np.exp(log_density - log_density.max()), log_sigma, axis=0
    )
    tau_density /= scipy.integrate.trapezoid(tau_density, log_tau)

    ridge_means = _ridge_means(X, y, alpha)
    step = np.gradient(log_alpha)
    coef_mean = (alpha_density * step) @ ridge_means / np.sum(alpha_density * step)
    return Hyperposterior(log_alpha, alpha_density, alpha_cdf, coef_mean, log_tau, tau_density)


def nuts_against_quadrature(idata, exact: Hyperposterior, probs=(0.05, 0.5, 0.95)) -> dict:
    """Draws of the hierarchical twin against :func:`hyperposterior`, in Monte Carlo standard errors.

    Parameters
    ----------
    idata : DataTree or mapping
        Posterior draws with ``ridge_alpha``, ``intercept`` and ``beta`` (``(chain, draw)`` leading axes).
    exact : Hyperposterior
    probs : sequence of float
        The quantile levels of ``alpha`` to compare (on the log scale, where they are the same quantiles).

    Returns
    -------
    dict
        For each level, ``alpha_qNN_nuts``, ``alpha_qNN_exact`` and ``alpha_qNN_z`` (``NN`` the level in
        percent; ``z`` = |sampled - exact| / MCSE of the quantile of ``log alpha``), then
        ``coef_mean_z_max``, the largest |posterior mean - exact mean| of a coefficient in MCSE.
    """
    log_alpha = np.log(idata["posterior"]["ridge_alpha"].values)
    exact_q = np.log(exact.alpha_quantile(probs))
    z = quantile_z_scores(log_alpha, exact_q, probs)
    row = {}
    for q, nuts_q, exact_q_, z_q in zip(
        probs, np.quantile(log_alpha, probs), exact_q, z, strict=True
    ):
        tag = f"q{int(round(100 * q)):02d}"
        row |= {f"alpha_{tag}_nuts": np.exp(nuts_q), f"alpha_{tag}_exact": np.exp(exact_q_)}
        row |= {f"alpha_{tag}_z": z_q}
    row["coef_mean_z_max"] = float(
        mean_z_scores(posterior_coefficients(idata), exact.coef_mean).max()
    )
    return row


def hierarchical_find_map(X, y, start_tau_factors=(1.0,)) -> pd.DataFrame:
    """``find_MAP`` (PyMC's defaults, :func:`models.fit.map_default`) on both parametrizations of
    :func:`hierarchical_linear_regression`, from ``tau``'s default start times each of ``start_tau_factors``.

    The centered joint density grows without bound as ``tau -> 0`` (:func:`profile_log_joint`), so where the
    optimizer stops on it depends on where it starts.

    Returns
    -------
    DataFrame
        One row per (parametrization, start): ``parametrization``, ``start_tau``, and the ``tau``, ``sigma``,
        ``alpha`` and ``beta_norm`` (the Euclidean norm of ``beta``) where it stopped.
    """
    rows = []
    for noncentered in (False, True):
        model = hierarchical_linear_regression(X, y, noncentered=noncentered)
        default_tau = float(np.exp(model.initial_point()["tau_log__"]))
        for factor in start_tau_factors:
            model.set_initval(model["tau"], default_tau * factor)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to tau -> 0
                values = map_default(model)
            rows.append(
                {
                    "parametrization": "noncentered" if noncentered else "centered",
                    "start_tau": default_tau * factor,
                    "tau": float(values["tau"]),
                    "sigma": float(values["sigma"]),
                    "alpha": float(values["ridge_alpha"]),
                    "beta_norm": float(np.linalg.norm(values["beta"])),
                }
            )
    return pd.DataFrame(rows)


def _ridge_means(X, y, alphas) -> np.ndarray:
    """Ridge's ``(intercept, beta)`` at each of ``alphas`` (rows), from one SVD of the centered design
    (:class:`models.exact.WhitenedDesign`, the one both closed forms use)."""
    design = WhitenedDesign.of(X, y)
    U, s, Vt = design.svd()
    projection = U.T @ design.z
    betas = (s / (s**2 + np.asarray(alphas)[:, None]) * projection) @ Vt
    return np.column_stack([design.y_mean - betas @ design.x_mean, betas])


def profile_log_joint(evidence: Evidence, log_tau, log_sigma, *, scales: HyperpriorScales, p: int):
    """What ``find_MAP`` climbs on the hierarchical twin, maximized over everything but ``tau``.

    The log joint density (no Jacobian terms, as ``find_MAP``) of the centered model at ``tau``, maximized
    over the intercept and ``beta`` (the Ridge solution at ``alpha = sigma**2 / tau**2``, value
    ``-Q(alpha) / (2 sigma**2)``) and then over ``sigma`` on the ``log_sigma`` grid:
    ``-n log sigma - Q / (2 sigma**2) - p log tau + log p(sigma) + log p(tau)`` up to a constant. It grows
    like ``-p log tau`` as ``tau -> 0``: the centered joint density has no maximum. The non-centered one
    (``beta = tau * beta_raw``) lacks the ``-p log tau`` term and has one.

    Returns
    -------
    (centered, noncentered) : tuple of ndarray
        The two profiles over ``log_tau`` (natural log), each up to its own additive constant.
    """
    sigma = np.exp(np.asarray(log_sigma))[:, None]
    tau = np.exp(np.asarray(log_tau))[None, :]
    alpha = sigma**2 / tau**2
    common = (
        -evidence.n_rows * np.log(sigma)
        - evidence.penalized_rss(alpha) / (2.0 * sigma**2)
        + scipy.stats.halfnorm.logpdf(sigma, scale=scales.sigma_scale)
        + scipy.stats.halfcauchy.logpdf(tau, scale=scales.tau_scale)
    )
    noncentered = common.max(axis=0)
    centered = (common - p * np.log(tau)).max(axis=0)
    return centered, noncentered


def tau_profile(X, y, tau_center: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`profile_log_joint` of both parametrizations on a ``log tau`` grid around ``tau_center``.

    The grid spans 12 decades below ``tau_center`` (deep into the centered density's climb towards
    ``tau -> 0``) and 4 above, 321 points; ``sigma`` is maximized over 600 points from half the
    least-squares residual SD to twice ``sd(y)``, with :func:`default_hyperprior_scales`.

    Returns
    -------
    (log_tau, centered, noncentered) : tuple of ndarray
    """
    evidence = Evidence(X, y)
    log_tau = np.log(tau_center) + np.linspace(-12.0, 4.0, 321) * np.log(10.0)
    sigma_ls = np.sqrt(evidence.penalized_rss(1e-12) / evidence.n_residual)
    log_sigma = np.linspace(np.log(0.5 * sigma_ls), np.log(2.0 * np.std(y)), 600)
    scales = default_hyperprior_scales(X, y)
    centered, noncentered = profile_log_joint(
        evidence, log_tau, log_sigma, scales=scales, p=np.shape(X)[1]
    )
    return log_tau, centered, noncentered


class LeaveOneOut(NamedTuple):
    """Exact leave-one-out quantities of the linear twin at one ``alpha``.

    ``elpd_i``: ``log p(y_i | y_-i)`` under the twin's posterior predictive; ``residual``: ``y_i`` minus the
    Ridge prediction fitted without row ``i`` (what ``RidgeCV`` squares); ``leverage``: ``h_ii`` of the
    Ridge smoother, intercept included.
    """

    elpd_i: np.ndarray
    residual: np.ndarray
    leverage: np.ndarray


def exact_loo(
    X,
    y,
    *,
    ridge_alpha: float,
    noise_sigma: float | None = None,
    noise_prior: tuple[float, float] = NOISE_PRIOR,
    fit_intercept: bool = True,
) -> LeaveOneOut:
    """Exact leave-one-out predictive densities of the linear twin, without refitting.

    With ``H`` the Ridge smoother (``y_hat = H y``, flat intercept included) and ``e`` the residuals, removing
    row ``i`` moves its prediction to leave a residual ``e_i / (1 - h_ii)`` and lowers the penalized residual
    sum of squares by ``e_i**2 / (1 - h_ii)`` (rank-one downdates). The predictive for ``y_i`` is then
    Gaussian with variance ``sigma**2 / (1 - h_ii)`` (known noise), or Student-t with ``2 a`` degrees of
    freedom and squared scale ``b / (a (1 - h_ii))`` (conjugate unknown noise; ``a``, ``b`` the inverse-gamma
    posterior without row ``i``).
    """
    design = WhitenedDesign.of(X, y, fit_intercept=fit_intercept)
    n, yc = design.z.size, design.z
    U, s, _ = design.svd()
    shrink = s**2 / (s**2 + ridge_alpha)
    leverage = np.sum(U**2 * shrink, axis=1) + (1.0 / n if fit_intercept else 0.0)
    projection = U.T @ yc
    fitted_residual = yc - U @ (shrink * projection)
    one_minus_h = 1.0 - leverage
    residual = fitted_residual / one_minus_h
    if noise_sigma is not None:
        variance = noise_sigma**2 / one_minus_h
        elpd_i = -0.5 * (LOG_2PI + np.log(variance) + residual**2 / variance)
        return LeaveOneOut(elpd_i, residual, leverage)
    penalized_rss = float(
        np.sum(fitted_residual**2)
        + ridge_alpha * np.sum((s / (s**2 + ridge_alpha) * projection) ** 2)
    )
    shape0, rate0 = noise_prior_terms(noise_prior)
    n_integrated = int(fit_intercept) + (design.Z.shape[1] if ridge_alpha == 0 else 0)
    shape = shape0 + 0.5 * (n - 1 - n_integrated)
    rate = rate0 + 0.5 * (penalized_rss - fitted_residual**2 / one_minus_h)
    scale = np.sqrt(rate / (shape * one_minus_h))
    elpd_i = scipy.stats.t.logpdf(residual, df=2.0 * shape, scale=scale)
    return LeaveOneOut(elpd_i, residual, leverage)


def criteria_path(X, y, alphas, *, noise_sigma: float) -> pd.DataFrame:
    """Every closed-form criterion for choosing Ridge's ``alpha``, at each of ``alphas``.

    Returns
    -------
    DataFrame
        One row per alpha: ``exact_loo_mse``, the mean squared leave-one-out residual of Ridge (what
        ``RidgeCV`` minimizes); ``exact_loo_elpd``, the unknown-noise twin's exact leave-one-out log
        predictive density (:func:`exact_loo`); and the log evidence with the noise profiled (what
        ``BayesianRidge`` climbs), integrated under Jeffreys' prior, and known to be ``noise_sigma``.
    """
    alphas = np.asarray(alphas)
    evidence = Evidence(X, y)
    loo = [exact_loo(X, y, ridge_alpha=a) for a in alphas]
    return pd.DataFrame(
        {
            "alpha": alphas,
            "exact_loo_mse": [np.mean(result.residual**2) for result in loo],
            "exact_loo_elpd": [result.elpd_i.sum() for result in loo],
            "log_evidence_profiled": evidence.profiled_noise(alphas),
            "log_evidence_unknown": evidence.unknown_noise(alphas),
            "log_evidence_known": evidence.known_noise(alphas, noise_sigma),
        }
    )


def psis_loo_against_exact(compiled, X, y, alphas, seeds, **sampling) -> pd.DataFrame:
    """PSIS-LOO of NUTS fits of the unknown-noise linear twin at each of ``alphas``, beside the exact LOO.

    ``compiled`` is :func:`models.fit.compile_nuts` of :func:`models.linear.linear_regression` with unknown
    noise (``ridge_alpha`` a ``pm.Data``), refitted on ``X, y`` at each alpha with its seed from ``seeds``;
    ``sampling`` goes to :func:`models.fit.sample_nuts` (``draws``, ``tune``, ``chains``).

    Returns
    -------
    DataFrame
        One row per alpha: ``elpd_psis``, ``elpd_se`` and ``p_loo`` (ArviZ's PSIS-LOO on the whole pointwise
        log-likelihood, :func:`models.loglik.with_log_likelihood`), ``elpd_exact`` (:func:`exact_loo`),
        ``pareto_k_max``, ``n_k_above_good`` (points above ArviZ's ``good_k``), ``good_k``, and the fit's
        convergence diagnostics (:func:`models.diagnostics.convergence`).
    """
    rows = []
    for alpha, seed in zip(alphas, seeds, strict=True):
        idata = sample_nuts(
            compiled,
            seed=int(seed),
            **sampling,
            X=X,
            y_observed=y,
            sample_weight=np.ones(y.size),
            ridge_alpha=np.asarray(alpha, dtype=float),
        )
        loo = azs.loo(with_log_likelihood(idata, X, y), pointwise=True)
        k = loo.pareto_k.values
        rows.append(
            {"alpha": alpha, "elpd_psis": loo.elpd, "elpd_se": loo.se, "p_loo": loo.p}
            | {"elpd_exact": exact_loo(X, y, ridge_alpha=alpha).elpd_i.sum()}
            | {"pareto_k_max": k.max(), "n_k_above_good": int(np.sum(k > loo.good_k))}
            | {"good_k": loo.good_k}
            | convergence(idata)._asdict()
        )
    return pd.DataFrame(rows)
