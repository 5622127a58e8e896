"""The penalty <-> prior dictionary.

Each function translates one scikit-learn penalty, in scikit-learn's own scaling convention, into the scale
of the prior whose negative log-density is that penalty (up to a constant), or back. A penalized fit is then
the maximum a posteriori (MAP) estimate of the Bayesian model with that prior.

Conventions (scikit-learn >= 1.8):

* ``Ridge(alpha)`` minimizes ``sum_i w_i (y_i - b - x_i w)**2 + alpha * ||w||**2`` (no 1/n; sample weights
  are used as given). The intercept ``b`` is not penalized.
* ``Lasso(alpha)`` minimizes ``1/(2 n) sum_i w_i (y_i - b - x_i w)**2 + alpha * ||w||_1``, with sample weights
  rescaled to sum to ``n``.
* ``ElasticNet(alpha, l1_ratio)`` adds ``alpha * (1 - l1_ratio) / 2 * ||w||**2`` to that Lasso objective,
  with ``alpha * l1_ratio`` in front of ``||w||_1``.
* ``LogisticRegression(C, l1_ratio)`` (any solver but liblinear) minimizes
  ``C * sum_i w_i logloss_i + l1_ratio * ||w||_1 + (1 - l1_ratio) * ||w||**2 / 2``; the intercept is not
  penalized; ``C = inf`` is no penalty. ``l1_ratio > 0`` needs the saga solver.
* ``PoissonRegressor(alpha)`` minimizes ``1/(2 sum_i w_i) sum_i w_i deviance_i + alpha/2 * ||w||**2``.
"""

import numpy as np

__all__ = [
    "ridge_alpha",
    "ridge_prior_sigma",
    "ridge_penalty_matrix",
    "whitening_factor",
    "lasso_laplace_scale",
    "elasticnet_prior_scales",
    "logistic_prior_sigma",
    "logistic_elasticnet_prior_scales",
    "poisson_prior_sigma",
]


def ridge_alpha(*, noise_sigma, prior_sigma):
    """Ridge's ``alpha`` for a Normal prior ``N(0, prior_sigma**2)`` and Gaussian noise ``noise_sigma``.

    The log-posterior is ``-sum_i w_i r_i**2 / (2 sigma**2) - ||w||**2 / (2 tau**2)``; multiplying by
    ``2 sigma**2`` gives Ridge's objective with ``alpha = sigma**2 / tau**2``. With ``sample_weight`` the noise
    variance of row ``i`` is ``sigma**2 / w_i``. A per-feature (diagonal) prior gives one alpha per feature.

    Parameters
    ----------
    noise_sigma : float
        Standard deviation of the observation noise (for unit sample weight).
    prior_sigma : float or array_like
        Prior standard deviation of each coefficient.

    Returns
    -------
    float or ndarray
        ``noise_sigma**2 / prior_sigma**2``.
    """
    return np.asarray(noise_sigma, dtype=float) ** 2 / np.asarray(prior_sigma, dtype=float) ** 2


def ridge_prior_sigma(*, ridge_alpha, noise_sigma):
    """Prior standard deviation ``tau = noise_sigma / sqrt(ridge_alpha)``; the inverse of :func:`ridge_alpha`.

    ``ridge_alpha = 0`` gives ``inf``: a flat prior, whose MAP is the least-squares fit.
    """
    ridge_alpha = np.asarray(ridge_alpha, dtype=float)
    with np.errstate(divide="ignore"):
        return np.asarray(noise_sigma, dtype=float) / np.sqrt(ridge_alpha)


def ridge_penalty_matrix(*, noise_sigma, prior_cov):
    """The generalized Ridge penalty matrix of a full prior covariance.

    A prior ``theta ~ N(0, Sigma)`` adds ``theta^T Sigma^-1 theta / 2`` to the negative log-posterior; times
    ``2 sigma**2`` that is the penalty ``theta^T A theta`` with ``A = sigma**2 Sigma^-1``. Ridge is the case
    ``Sigma = tau**2 I``, ``A = alpha I``.
    """
    prior_cov = np.asarray(prior_cov, dtype=float)
    return noise_sigma**2 * np.linalg.inv(prior_cov)


def whitening_factor(prior_cov):
    """A factor ``L`` with ``L L^T = prior_cov``, so that ``theta = L z`` with ``z ~ N(0, I)``.

    With it a full-covariance prior becomes an isotropic one: the MAP under ``N(0, tau**2 Sigma0)`` on features
    ``X`` is ``L`` times ``Ridge(alpha=sigma**2 / tau**2)`` fitted on the whitened features ``X L``, where
    ``Sigma0 = L L^T``. A 1-D ``prior_cov`` is read as the diagonal of a diagonal covariance.
    """
    prior_cov = np.asarray(prior_cov, dtype=float)
    if prior_cov.ndim == 1:
        return np.diag(np.sqrt(prior_cov))
    return np.linalg.cholesky(prior_cov)


def lasso_laplace_scale(*, lasso_alpha, noise_sigma, n_samples):
    """Laplace prior scale ``b`` whose MAP is ``Lasso(alpha)``.

    Lasso's objective times ``n / sigma**2`` is ``sum_i r_i**2 / (2 sigma**2) + (n alpha / sigma**2) ||w||_1``,
    the negative log-posterior under a Laplace(0, b) prior with ``1 / b = n alpha / sigma**2``, so
    ``b = sigma**2 / (n alpha)``. With sample weights, scikit-learn rescales them to sum to ``n``; pass
    weights normalized that way to the twin's likelihood.
    """
    return noise_sigma**2 / (n_samples * lasso_alpha)


def elasticnet_prior_scales(*, alpha, l1_ratio, noise_sigma, n_samples):
    """Laplace scale ``b`` and Normal scale ``tau`` of the prior whose MAP is ``ElasticNet(alpha, l1_ratio)``.

    The prior density is proportional to ``exp(-|w| / b) * exp(-w**2 / (2 tau**2))`` with
    ``b = sigma**2 / (n alpha l1_ratio)`` and ``tau**2 = sigma**2 / (n alpha (1 - l1_ratio))``
    (same derivation as :func:`lasso_laplace_scale`). Either part is absent (``inf``) at the ends of
    ``l1_ratio``.
    """
    l1_strength = np.float64(n_samples * alpha * l1_ratio)
    l2_strength = np.float64(n_samples * alpha * (1.0 - l1_ratio))
    with np.errstate(divide="ignore"):
        laplace_b = noise_sigma**2 / l1_strength
        normal_sigma = np.sqrt(noise_sigma**2 / l2_strength)
    return float(laplace_b), float(normal_sigma)


def logistic_prior_sigma(*, logistic_C):
    """Prior standard deviation ``sqrt(C)`` whose MAP is ``LogisticRegression(C)`` with the l2 penalty.

    ``C * sum_i w_i logloss_i + ||w||**2 / 2`` divided by ``C`` is the negative log-likelihood plus
    ``||w||**2 / (2 C)``: a ``N(0, C)`` prior on each coefficient and a flat prior on the intercept.
    """
    return float(np.sqrt(logistic_C))


def logistic_elasticnet_prior_scales(*, logistic_C, l1_ratio):
    """Laplace scale ``b`` and Normal scale ``tau`` whose MAP is ``LogisticRegression(C, l1_ratio)``.

    The objective divided by ``C`` is the negative log-likelihood plus ``(l1_ratio / C) ||w||_1`` and
    ``(1 - l1_ratio) / (2 C) ||w||**2``: the prior density proportional to
    ``exp(-|w| / b - w**2 / (2 tau**2))`` with ``b = C / l1_ratio`` and ``tau = sqrt(C / (1 - l1_ratio))``
    (``inf`` for a part that is absent). ``l1_ratio = 0`` is :func:`logistic_prior_sigma`.
    """
    with np.errstate(divide="ignore"):
        laplace_b = np.float64(logistic_C) / np.float64(l1_ratio)
        normal_sigma = np.sqrt(np.float64(logistic_C) / np.float64(1.0 - l1_ratio))
    return float(laplace_b), float(normal_sigma)


def poisson_prior_sigma(*, poisson_alpha, n_samples):
    """Prior standard deviation ``1 / sqrt(n alpha)`` whose MAP is ``PoissonRegressor(alpha)``.

    The objective is ``1/(2n) sum_i dev_i + alpha/2 ||w||**2``. The Poisson deviance is
    ``dev_i = 2 (y_i log(y_i / mu_i) - y_i + mu_i)``, which is ``-2 log p(y_i | mu_i)`` plus terms free of
    ``w``. Times ``n`` the objective is the negative log-likelihood plus ``n alpha / 2 ||w||**2``: a
    ``N(0, 1 / (n alpha))`` prior. With sample weights, ``n`` is their sum.
    """
    return float(1.0 / np.sqrt(n_samples * poisson_alpha))
