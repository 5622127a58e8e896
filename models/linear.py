"""The Bayesian twin of Ridge: linear regression with a Normal prior, as a PyMC model.

``y_i ~ N(intercept + x_i beta, sigma**2 / w_i)`` with a flat prior on the intercept and
``beta ~ N(0, sigma**2 / ridge_alpha * Sigma0)``. Its MAP is ``Ridge(alpha=ridge_alpha)`` (on the whitened
features ``X L``, ``L L^T = Sigma0``, mapped back by ``L``) whether ``sigma`` is known or not: with the
conjugate prior ``sigma**2 ~ InverseGamma`` the mode in ``beta`` does not depend on ``sigma``.

The design, the response, the sample weights and ``ridge_alpha`` are ``pm.Data``, so one compiled model serves a
whole alpha path (``pm.set_data({"ridge_alpha": a})``). ``ridge_alpha = 0`` builds a flat prior instead: a
different model structure, whose MAP is the least-squares fit.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from models.exact import NOISE_PRIOR
from models.penalties import whitening_factor


def linear_regression(
    X,
    y,
    *,
    ridge_alpha: float,
    noise_sigma: float | None = None,
    sample_weight=None,
    fit_intercept: bool = True,
    relative_prior_cov=None,
    noise_prior: tuple[float, float] = NOISE_PRIOR,
    feature_names=None,
) -> pm.Model:
    """Build the linear twin of ``Ridge(alpha=ridge_alpha)``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    ridge_alpha : float
        Ridge's penalty strength (scikit-learn's convention, no 1/n); 0 means a flat prior.
    noise_sigma : float or None
        Known noise standard deviation (Gaussian posterior) or None: ``sigma**2 ~ InverseGamma(*noise_prior)``
        and ``beta | sigma`` scales with ``sigma`` (Student-t posterior).
    sample_weight : array_like or None
        Row ``i`` has noise variance ``sigma**2 / w_i``, as in ``Ridge.fit(..., sample_weight=w)``.
    fit_intercept : bool
        Add an intercept with a flat (unpenalized) prior.
    relative_prior_cov : array_like or None
        ``Sigma0``, diagonal (1-D) or full (2-D); identity when None.
    noise_prior : (float, float)
        Inverse-gamma shape and rate of ``sigma**2``.
    feature_names : sequence of str or None
        Coordinates of the ``feature`` dim.

    Returns
    -------
    pm.Model
        Free variables ``intercept`` (when fitted), ``beta`` (dim ``feature``) and ``sigma_squared`` (unknown
        noise); observed ``y`` (dim ``obs_id``).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if ridge_alpha < 0:
        raise ValueError(f"ridge_alpha must be >= 0, got {ridge_alpha}")
    sample_weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    coords = {"feature": feature_names, "obs_id": np.arange(n)}

    with pm.Model(coords=coords) as model:
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        y_ = pm.Data("y_observed", y, dims="obs_id")
        sample_weight_ = pm.Data("sample_weight", sample_weight, dims="obs_id")
        if noise_sigma is None:
            sigma_squared = pm.InverseGamma("sigma_squared", alpha=noise_prior[0], beta=noise_prior[1])
            sigma = pm.Deterministic("sigma", pt.sqrt(sigma_squared))
        else:
            sigma = pt.as_tensor(float(noise_sigma))

        if ridge_alpha == 0:
            beta = pm.Flat("beta", dims="feature")
        else:
            ridge_alpha_ = pm.Data("ridge_alpha", float(ridge_alpha))
            prior_sigma = sigma / pt.sqrt(ridge_alpha_)
            if relative_prior_cov is None:
                beta = pm.Normal("beta", 0.0, prior_sigma, dims="feature")
            elif np.ndim(relative_prior_cov) == 1:
                relative_sd = np.sqrt(np.asarray(relative_prior_cov, dtype=float))
                beta = pm.Normal("beta", 0.0, prior_sigma * relative_sd, dims="feature")
            else:
                chol = prior_sigma * whitening_factor(relative_prior_cov)
                beta = pm.MvNormal("beta", mu=np.zeros(p), chol=chol, dims="feature")

        mu = X_ @ beta
        if fit_intercept:
            mu = pm.Flat("intercept") + mu
        pm.Normal("y", mu=mu, sigma=sigma / pt.sqrt(sample_weight_), observed=y_, dims="obs_id")
    return model
