"""The Bayesian twins of GammaRegressor and TweedieRegressor: exponential-dispersion GLMs with a dispersion.

``tweedie_regression`` builds ``y_i ~ Tweedie_p(mu_i, dispersion)`` with ``mu_i = g^-1(intercept + x_i beta)``
(``g``: the log or the identity link), a flat intercept, ``beta ~ N(0, dispersion / (n alpha))`` (``n``: the
sum of the sample weights) and Jeffreys' prior ``p(dispersion) ∝ 1 / dispersion``. Its mode in the
coefficients is ``TweedieRegressor(power=p, alpha=alpha, link=g)`` (``GammaRegressor(alpha)`` at ``p = 2``)
whatever the dispersion:

Every Tweedie density with power ``p`` is an exponential-dispersion model, so its log-density is
``log f(y; mu, phi) = -d_p(y, mu) / (2 phi) + c_p(y, phi)`` with ``d_p`` the unit deviance (zero at
``mu = y``) and ``c_p`` free of ``mu``. With the sample weights ``w_i`` multiplying the log-density terms, the
log-posterior is, up to terms free of the coefficients,

``-1 / (2 phi) sum_i w_i d_p(y_i, mu_i) - n alpha / (2 phi) ||beta||**2
= -(n / phi) [1 / (2 n) sum_i w_i d_p(y_i, mu_i) + alpha / 2 ||beta||**2]``.

The bracket is scikit-learn's objective (``sklearn/linear_model/_glm``: the mean half-deviance
``HalfTweedieLoss`` / ``HalfGammaLoss`` differs from ``d_p / 2`` only by terms free of ``mu``, and the penalty
is ``alpha / 2 ||coef||**2``), and ``n / phi > 0`` only scales it: at every ``phi`` the mode in
``(intercept, beta)`` is scikit-learn's fit, so the joint mode is too. This is the argument of the Ridge twin's
``sigma`` (:mod:`models.linear`) with ``phi`` in place of ``sigma**2``. Jeffreys' prior keeps the answer free of
``y``'s units (``phi`` is in units of ``y**(2 - p)``).

The densities: ``p = 0`` Normal (variance ``phi``), ``p = 2`` Gamma (shape ``1 / phi``), ``p = 3`` inverse
Gaussian (``lambda = 1 / phi``), all in closed form; ``1 < p < 2`` the compound Poisson-Gamma with its point mass
``exp(-mu**(2 - p) / (phi (2 - p)))`` at zero and, for ``y > 0``, Dunn & Smyth's (2005) series for ``c_p``
(:func:`series_log_a`, summed in log space around its largest term). ``p = 1`` is the Poisson twin
(:mod:`models.glm`). Other powers have no twin here: ``0 < p < 1`` has no distribution, ``p < 0`` and
``p > 2`` (but 3) have no density in closed form or a series built here.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.special
from pytensor.gradient import zero_grad
from sklearn.linear_model import GammaRegressor, TweedieRegressor

from models.data import DataError, check_number, check_sample_weight, validate_arrays
from models.sparse import prior_scale

__all__ = [
    "EXACT_POWERS",
    "LOG_TERM_CUTOFF",
    "resolve_link",
    "check_power",
    "validate_tweedie",
    "unit_deviance",
    "series_log_a",
    "log_density",
    "tweedie_logp",
    "tweedie_draw",
    "pearson_dispersion",
    "tweedie_regression",
    "tweedie_reference",
    "power_and_link",
    "simulated_insurance",
]

EXACT_POWERS = (0.0, 2.0, 3.0)
"""Tweedie powers with a closed-form density: Normal, Gamma, inverse Gaussian."""

LOG_TERM_CUTOFF = 37.0
"""Series terms below the largest by more than this (in log units, ``exp(-37) = 8.5e-17``) are left out: they
cannot change a double-precision sum."""


def resolve_link(power: float, link: str) -> str:
    """scikit-learn's link: ``"auto"`` is the identity for ``power <= 0`` and the log otherwise."""
    if link == "auto":
        return "identity" if power <= 0 else "log"
    if link not in ("identity", "log"):
        raise DataError(f"link must be 'auto', 'identity' or 'log', got {link!r}")
    return link


def check_power(power: float, link: str = "log") -> None:
    """Refuse, in one line, a Tweedie power (and link) with no twin here.

    Raises
    ------
    DataError
        ``0 < power < 1`` (no distribution), ``power < 0`` or ``power > 2`` other than 3 (no density built
        here), ``power = 1`` with the identity link (the Poisson twin has the log link only).
    """
    if not np.isfinite(power):
        raise DataError(f"power must be finite, got {power:g}")
    if 0 < power < 1:
        raise DataError(
            f"Tweedie power {power:g} in (0, 1): no distribution has that variance function"
        )
    if power < 0:
        raise DataError(f"Tweedie power {power:g} < 0 (extreme stable): no density built here")
    if power > 2 and power != 3:
        raise DataError(
            f"Tweedie power {power:g} > 2 other than 3 (positive stable): no density built here"
        )
    if power == 1 and resolve_link(power, link) == "identity":
        raise DataError(
            "Tweedie power 1 with the identity link: the Poisson twin has the log link only"
        )


def validate_tweedie(
    X,
    y,
    *,
    power: float,
    link: str = "log",
    sample_weight=None,
    tweedie_alpha=None,
    name: str = "data",
):
    """Check a Tweedie GLM's data, power and penalty once; return float ``X``, ``y`` and the weights.

    Raises
    ------
    DataError
        One line: a power without a twin (:func:`check_power`); ``y <= 0`` for ``power >= 2`` (Gamma, inverse
        Gaussian); ``y < 0`` or all zero for ``1 < power < 2``; non-finite or misshapen arrays; bad sample
        weights; ``alpha < 0`` or non-finite.
    """
    check_power(power, link)
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    validate_arrays(X, y, name=name)
    if power >= 2 and np.any(y <= 0):
        raise DataError(f"{name}: power {power:g} needs y > 0, got {y.min():g}")
    if 1 < power < 2:
        if np.any(y < 0):
            raise DataError(f"{name}: power {power:g} needs y >= 0, got {y.min():g}")
        if not np.any(y > 0):
            raise DataError(f"{name}: y is all zero (the intercept's MAP would be -inf)")
    weights = check_sample_weight(sample_weight, y.size, source=name)
    if tweedie_alpha is not None:
        check_number("alpha", tweedie_alpha)
    return X, y, weights


# Densities in NumPy: the references the PyMC model is checked against --------------------------------------


def unit_deviance(y, mu, power: float) -> np.ndarray:
    """The Tweedie unit deviance ``d_p(y, mu)``, twice scikit-learn's half-deviance with its constant (zero at
    ``mu = y``)."""
    y, mu = np.asarray(y, dtype=float), np.asarray(mu, dtype=float)
    p = power
    if p == 1:
        return 2.0 * (scipy.special.xlogy(y, y / mu) - y + mu)
    if p == 2:
        return 2.0 * (np.log(mu / y) + y / mu - 1.0)
    y_term = np.maximum(y, 0.0) ** (2 - p) / ((1 - p) * (2 - p))
    return 2.0 * (y_term - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))


def _series_terms(y, phi, power):
    """``alpha`` and ``log z`` of Dunn & Smyth's terms ``log W_j = j log z - lgamma(1 + j) - lgamma(-j alpha)``,
    and the index of the largest term, ``y**(2 - p) / ((2 - p) phi)``."""
    p = power
    alpha = (2 - p) / (1 - p)  # < 0 for 1 < p < 2
    log_z = -alpha * np.log(y) + alpha * np.log(p - 1) - (1 - alpha) * np.log(phi) - np.log(2 - p)
    return alpha, log_z, y ** (2 - p) / ((2 - p) * phi)


def series_log_a(y, phi, power: float, *, max_terms: int | None = None) -> np.ndarray:
    """``log a(y, phi)`` of the compound Poisson-Gamma density for ``y > 0`` (Dunn & Smyth 2005, eq. 5).

    ``f(y; mu, phi) = a(y, phi) exp((y theta - kappa(theta)) / phi)``, ``theta = mu**(1 - p) / (1 - p)``,
    ``kappa = mu**(2 - p) / (2 - p)``, ``a(y, phi) = (1 / y) sum_{j >= 1} W_j`` with
    ``W_j = z**j / (j! Gamma(-j alpha))``, ``alpha = (2 - p) / (1 - p)`` and
    ``z = y**-alpha (p - 1)**alpha / (phi**(1 - alpha) (2 - p))``. The NumPy check of the PyTensor sum: every
    term from ``j = 1`` up to well past the largest one (``max_terms``; by default the largest index plus 20
    of its widths plus 50), a log-sum-exp, and a check that the last term is negligible.
    """
    y, phi = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(phi, dtype=float))
    alpha, log_z, peak = _series_terms(y, phi, power)
    if max_terms is None:
        max_terms = int(np.ceil(np.max(peak) + 20.0 * np.sqrt(np.max(peak) / (1 - alpha)) + 50.0))
    j = np.arange(1, max_terms + 1, dtype=float)
    log_w = (
        j * log_z[..., None] - scipy.special.gammaln(1.0 + j) - scipy.special.gammaln(-j * alpha)
    )
    top = log_w.max(axis=-1)
    if np.any(log_w[..., -1] > top - LOG_TERM_CUTOFF):
        raise ValueError("series_log_a: max_terms too small for these y and phi")
    return scipy.special.logsumexp(log_w, axis=-1) - np.log(y)


def log_density(y, mu, phi, power: float) -> np.ndarray:
    """The Tweedie log-density (log-probability at ``y = 0`` for ``1 < p < 2``), in NumPy, powers 0, 1 < p < 2,
    2 and 3."""
    y, mu, phi = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (y, mu, phi)))
    p = power
    if p == 0:
        return -0.5 * (y - mu) ** 2 / phi - 0.5 * np.log(2 * np.pi * phi)
    if p == 2:
        shape = 1.0 / phi
        return (
            shape * np.log(shape / mu)
            + (shape - 1) * np.log(y)
            - shape * y / mu
            - scipy.special.gammaln(shape)
        )
    if p == 3:
        return -0.5 * np.log(2 * np.pi * phi * y**3) - (y - mu) ** 2 / (2 * phi * mu**2 * y)
    if not 1 < p < 2:
        raise DataError(f"no Tweedie density for power {p:g} here")
    exponent = (y * mu ** (1 - p) / (1 - p) - mu ** (2 - p) / (2 - p)) / phi
    positive = y > 0
    out = exponent.copy()
    if np.any(positive):
        out[positive] += series_log_a(y[positive], phi[positive], p)
    return out


# The PyTensor density of the twin ---------------------------------------------------------------------------


def _pt_series_log_a(y, phi, power):
    """``log a(y, phi)`` in PyTensor for ``y > 0``: Dunn & Smyth's terms in a window around the largest.

    The terms ``log W_j`` are concave in ``j`` with their peak near ``j0 = y**(2 - p) / ((2 - p) phi)`` and a
    curvature of about ``-(1 - alpha) / j``; the window ``j0 +- (12 sqrt(max j0 / (1 - alpha)) + 40)`` reaches
    beyond :data:`LOG_TERM_CUTOFF` on both sides (checked against :func:`series_log_a`, which sums every term
    from 1). The window follows ``phi`` (its position carries no gradient: the sum does not depend on it).
    """
    p = power
    alpha = (2 - p) / (1 - p)
    log_z = -alpha * pt.log(y) + alpha * np.log(p - 1) - (1 - alpha) * pt.log(phi) - np.log(2 - p)
    peak = zero_grad(y ** (2 - p) / ((2 - p) * phi))
    half_width = pt.cast(pt.ceil(12.0 * pt.sqrt(pt.max(peak) / (1 - alpha)) + 40.0), "int64")
    offsets = pt.arange(-half_width, half_width + 1).astype("float64")
    j = pt.floor(peak)[:, None] + offsets[None, :]
    valid = j >= 1.0
    j_safe = pt.maximum(j, 1.0)
    log_w = j_safe * log_z[:, None] - pt.gammaln(1.0 + j_safe) - pt.gammaln(-j_safe * alpha)
    log_w = pt.switch(valid, log_w, -np.inf)
    return pt.logsumexp(log_w, axis=1) - pt.log(y)


def tweedie_logp(value, mu, phi, power: float):
    """The Tweedie log-density of ``value`` in PyTensor, as :func:`log_density` (``-inf`` where ``mu <= 0``)."""
    p = power
    positive_mu = pt.switch(mu > 0, mu, 1.0)
    if p == 0:
        out = -0.5 * (value - mu) ** 2 / phi - 0.5 * pt.log(2 * np.pi * phi)
        return out
    if p == 2:
        shape = 1.0 / phi
        out = (
            shape * pt.log(shape / positive_mu)
            + (shape - 1) * pt.log(value)
            - shape * value / positive_mu
            - pt.gammaln(shape)
        )
    elif p == 3:
        out = -0.5 * pt.log(2 * np.pi * phi * value**3) - (value - positive_mu) ** 2 / (
            2 * phi * positive_mu**2 * value
        )
    else:
        exponent = (
            value * positive_mu ** (1 - p) / (1 - p) - positive_mu ** (2 - p) / (2 - p)
        ) / phi
        y_safe = pt.switch(value > 0, value, 1.0)
        phi_rows = pt.broadcast_to(phi, y_safe.shape)
        out = exponent + pt.switch(value > 0, _pt_series_log_a(y_safe, phi_rows, p), 0.0)
    return pt.switch(mu > 0, out, -np.inf)


def tweedie_draw(rng: np.random.Generator, mu, phi, power: float) -> np.ndarray:
    """New observations with mean ``mu`` and variance ``phi mu**power`` (the compound Poisson-Gamma as a
    Poisson number of Gamma claims for ``1 < p < 2``)."""
    mu = np.asarray(mu, dtype=float)
    p = power
    if p == 0:
        return mu + np.sqrt(phi) * rng.standard_normal(mu.shape)
    if p == 2:
        return rng.gamma(1.0 / phi, phi * mu)
    if p == 3:
        return rng.wald(mu, 1.0 / phi)
    claims = rng.poisson(mu ** (2 - p) / (phi * (2 - p)))
    shape = (2 - p) / (p - 1)
    size = rng.gamma(np.maximum(claims, 1) * shape, phi * (p - 1) * mu ** (p - 1))
    return np.where(claims > 0, size, 0.0)


def pearson_dispersion(y, mu, power: float, *, sample_weight=None, n_coef: int = 0) -> float:
    """Pearson's estimate ``sum w (y - mu)**2 / mu**p / (sum w - n_coef)`` of the dispersion."""
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    return float(np.sum(w * (y - mu) ** 2 / mu**power) / max(w.sum() - n_coef, 1.0))


def tweedie_regression(
    X,
    y,
    *,
    tweedie_alpha: float,
    power: float,
    link: str = "log",
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    feature_scale=None,
    dispersion: float | None = None,
) -> pm.Model:
    """Build the twin of ``TweedieRegressor(power=power, alpha=tweedie_alpha, link=link)``.

    ``GammaRegressor(alpha)`` is ``power = 2`` with the log link. See the module docstring for the model and
    why its mode in the coefficients is scikit-learn's fit at every dispersion.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
        The response: any real for power 0, ``>= 0`` (exact zeros allowed) for ``1 < power < 2``, ``> 0`` for
        2 and 3.
    tweedie_alpha : float
        scikit-learn's penalty strength, >= 0: ``beta ~ N(0, dispersion / (sum(w) alpha))``; 0 is a flat prior.
    power : float
        The Tweedie power: 0, ``1 < power < 2``, 2 or 3 (:func:`check_power`).
    link : {"auto", "log", "identity"}
        As scikit-learn's; with the identity link and ``power > 0`` the density is ``-inf`` where ``mu <= 0``.
    sample_weight : array_like or None
        Multiplies row ``i``'s log-density; their sum is the ``n`` of the prior variance.
    fit_intercept : bool
        Add an intercept with a flat (unpenalized) prior, started at the link of the weighted mean of ``y``.
    feature_names : sequence of str or None
        Coordinates of the ``feature`` dim.
    feature_scale : array_like or None
        Standardized coordinates, as in :func:`models.glm.logistic_regression`.
    dispersion : float or None
        None: the dispersion is a free variable with Jeffreys' prior. A number: the dispersion is known and
        fixed there (the mode in the coefficients is the same, see the module docstring).

    Returns
    -------
    pm.Model
        Free variables ``dispersion`` (when not known) (``HalfFlat`` with the potential ``dispersion_prior``, ``-log``
        dispersion), ``intercept`` (when fitted) and ``beta`` (dim ``feature``); observed ``y`` (dim
        ``obs_id``); ``pm.Data`` ``X``, ``y_observed``, ``sample_weight`` and ``tweedie_alpha`` (absent for a
        flat prior).
    """
    link = resolve_link(power, link)
    X, y, weights = validate_tweedie(
        X, y, power=power, link=link, sample_weight=sample_weight, tweedie_alpha=tweedie_alpha
    )
    n, p = X.shape
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    if len(feature_names) != p:
        raise DataError(f"feature_names has {len(feature_names)} names for {p} columns")
    mean_y = float(weights @ y / weights.sum())
    if link == "log" and mean_y <= 0:
        raise DataError(f"the log link needs a positive mean of y, got {mean_y:g}")
    start_mu = np.full(n, mean_y if mean_y > 0 else 1.0)
    start_dispersion = pearson_dispersion(y, start_mu, power, sample_weight=weights)
    start_dispersion = start_dispersion if start_dispersion > 0 else 1.0  # y constant
    coords = {"feature": feature_names, "obs_id": np.arange(n)}
    with pm.Model(coords=coords) as model:
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        y_ = pm.Data("y_observed", y, dims="obs_id")
        sample_weight_ = pm.Data("sample_weight", weights, dims="obs_id")
        if dispersion is None:
            dispersion = pm.HalfFlat("dispersion", initval=start_dispersion)
            pm.Potential("dispersion_prior", -pt.log(dispersion))
        else:
            dispersion = pt.as_tensor(check_number("dispersion", dispersion, inclusive=False))
        pm.Deterministic("sigma", pt.sqrt(dispersion))  # the noise scale predictions draw with
        scale = prior_scale(feature_scale, p)
        if tweedie_alpha == 0:
            beta = pm.Flat("beta", dims="feature")
        else:
            alpha_ = pm.Data("tweedie_alpha", float(tweedie_alpha))
            sigma = scale * pt.sqrt(dispersion / (pt.sum(sample_weight_) * alpha_))
            beta = pm.Normal("beta", 0.0, sigma, dims="feature")
        eta = X_ @ beta
        if fit_intercept:
            start = np.log(mean_y) if link == "log" else mean_y
            eta = pm.Flat("intercept", initval=start) + eta
        mu = pt.exp(eta) if link == "log" else eta

        def logp(value, mu, dispersion, weight):
            return weight * tweedie_logp(value, mu, dispersion, power)

        pm.CustomDist("y", mu, dispersion, sample_weight_, logp=logp, observed=y_, dims="obs_id")
    return model


def tweedie_reference(
    X,
    y,
    *,
    tweedie_alpha: float,
    power: float,
    link: str = "log",
    sample_weight=None,
    fit_intercept: bool = True,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> np.ndarray:
    """``TweedieRegressor(solver="newton-cholesky", tol=1e-12)``; coefficients with the intercept first.

    At ``power = 2`` with the log link this is ``GammaRegressor``'s objective (``HalfGammaLoss`` and
    ``HalfTweedieLoss(power=2)`` differ by a constant in ``mu``).
    """
    validate_tweedie(X, y, power=power, link=link, tweedie_alpha=tweedie_alpha)
    fit = TweedieRegressor(
        power=power,
        alpha=tweedie_alpha,
        link=link,
        solver="newton-cholesky",
        tol=tol,
        max_iter=max_iter,
        fit_intercept=fit_intercept,
    ).fit(X, y, sample_weight=sample_weight)
    return np.concatenate([[fit.intercept_], fit.coef_]) if fit_intercept else fit.coef_


def power_and_link(final) -> tuple[float, str]:
    """``(power, link)`` of a GammaRegressor (2, log) or a TweedieRegressor (its link resolved)."""
    if isinstance(final, GammaRegressor):
        return 2.0, "log"
    power = float(final.power)
    return power, resolve_link(power, final.link)


def simulated_insurance(rng: np.random.Generator, n: int = 500):
    """An insurance-like table: claim amounts with exact zeros (most policies claim nothing).

    Features ``driver_age`` (years), ``vehicle_power`` (1-10) and ``urban`` (0/1); claim counts are Poisson
    with rate ``0.4 exp(-0.02 (age - 40) + 0.08 (power - 5) + 0.3 urban)``, each claim Gamma with shape 2 and
    mean 1,000. Returns ``(X, y, feature_names)``.
    """
    age = rng.uniform(18, 80, n)
    vehicle_power = rng.integers(1, 11, n).astype(float)
    urban = (rng.random(n) < 0.4).astype(float)
    rate = 0.4 * np.exp(-0.02 * (age - 40) + 0.08 * (vehicle_power - 5) + 0.3 * urban)
    claims = rng.poisson(rate)
    amount = rng.gamma(2.0 * np.maximum(claims, 1), 500.0)
    y = np.where(claims > 0, amount, 0.0)
    return np.column_stack([age, vehicle_power, urban]), y, ("driver_age", "vehicle_power", "urban")
