"""Exact posteriors in closed form: the oracle every numerical method is checked against.

The linear twin (see :mod:`models.linear`) has a Gaussian posterior when the noise scale is known and a
multivariate Student-t posterior when the noise variance has the conjugate inverse-gamma prior and
``beta | sigma ~ N(0, sigma**2 / alpha * Sigma0)``. Both are computed here through an SVD of the whitened,
centered design, which stays accurate on ill-conditioned and ``p > n`` designs where forming and inverting
``X^T X`` would not.
"""

from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.special

from models.data import DataError
from models.penalties import whitening_factor

__all__ = [
    "NOISE_PRIOR",
    "noise_prior_terms",
    "WhitenedDesign",
    "LinearPosterior",
    "linear_posterior",
]

NOISE_PRIOR = (0.0, 0.0)
"""Default (shape, rate) of the inverse-gamma prior on the noise variance: ``(0, 0)`` is Jeffreys' prior
``p(sigma**2) ∝ 1 / sigma**2``, the limit of ``InverseGamma(a, b)`` as ``a, b -> 0``.

It is the one choice that does not care about the units of ``y``: rescaling ``y`` by ``c`` rescales every
posterior SD by ``c`` exactly. A proper ``InverseGamma(a, b)`` is not: its rate ``b`` is in ``y``'s units
squared, and ``InverseGamma(1, 1)`` on Longley's employment in thousands (residual sum of squares 0.84) made the
posterior SDs 1.84x the OLS standard errors, against 1.00x in persons. The price of an improper prior: the
posterior is proper only with residual degrees of freedom left (``n`` greater than the coefficients that are
integrated with a flat prior), data cannot be simulated from it (calibration studies pass a proper prior), and
the evidence is defined up to a constant that is the same for every ``alpha``.

At ``alpha = 0`` (a flat prior on the ``k`` coefficients, intercept included) the coefficients' posterior is a
Student-t with ``n - k`` degrees of freedom and scale ``s**2 (X'X)^-1``, ``s**2 = RSS / (n - k)``: the OLS
standard errors are its scale, and its SDs are those times ``sqrt((n - k) / (n - k - 2))``. At ``alpha > 0``
the conjugate prior ``beta | sigma ~ N(0, sigma**2 / alpha)`` carries a factor ``sigma**-p``, which adds ``p``
degrees of freedom: ``n - 1`` of them however small ``alpha`` is, so as ``alpha -> 0+`` the SDs tend to the
OLS standard errors times ``sqrt((n - k) / (n - 3))``, not to the ``alpha = 0`` posterior's."""


def noise_prior_terms(noise_prior) -> tuple[float, float]:
    """``(shape, rate)`` of an inverse-gamma noise prior, checked: both > 0 (proper) or both 0 (Jeffreys)."""
    shape, rate = (float(v) for v in noise_prior)
    if not ((shape > 0 and rate > 0) or (shape == 0 and rate == 0)):
        raise DataError(
            f"noise_prior must be (shape > 0, rate > 0) or (0, 0) for Jeffreys' prior, got {noise_prior}"
        )
    return shape, rate


class WhitenedDesign(NamedTuple):
    """The linear twin's data as both closed forms (:func:`linear_posterior`, :class:`models.evidence.Evidence`)
    use them: ``Z = W^(1/2) (X - x_mean) L`` and ``z = W^(1/2) (y - y_mean)``, centered at the weighted means
    when the intercept is fitted (a flat-prior intercept integrates out to exactly that), whitened by
    ``L L^T = Sigma0``, the prior's relative covariance."""

    Z: np.ndarray
    z: np.ndarray
    L: np.ndarray
    w: np.ndarray
    x_mean: np.ndarray
    y_mean: float

    @classmethod
    def of(cls, X, y, *, sample_weight=None, fit_intercept=True, relative_prior_cov=None):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        n, p = X.shape
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        L = np.eye(p) if relative_prior_cov is None else whitening_factor(relative_prior_cov)
        if fit_intercept:
            x_mean, y_mean = w @ X / w.sum(), w @ y / w.sum()
        else:
            x_mean, y_mean = np.zeros(p), 0.0
        root_w = np.sqrt(w)
        return cls(
            root_w[:, None] * ((X - x_mean) @ L), root_w * (y - y_mean), L, w, x_mean, y_mean
        )

    def svd(self, *, full: bool = False):
        """``U, s, Vt`` of ``Z`` (LAPACK's ``gesvd``, the driver both closed forms have always used)."""
        return scipy.linalg.svd(self.Z, full_matrices=full, lapack_driver="gesvd")


class LinearPosterior(NamedTuple):
    """The joint posterior of ``(intercept, beta)``, Gaussian (``df = inf``) or multivariate Student-t.

    ``scale_factor @ scale_factor.T`` is the covariance (Gaussian) or the scale matrix (Student-t); it may
    have fewer columns than rows (a coefficient fixed at 0, such as a feature ARD pruned, has a zero row).
    ``noise_shape`` and ``noise_rate`` are the inverse-gamma posterior of ``sigma**2`` when it is unknown.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    scale_factor: np.ndarray
    df: float
    noise_shape: float | None = None
    noise_rate: float | None = None

    @property
    def cov(self) -> np.ndarray:
        """Posterior covariance matrix."""
        scale = self.scale_factor @ self.scale_factor.T
        return scale if np.isinf(self.df) else scale * self.df / (self.df - 2.0)

    @property
    def sd(self) -> np.ndarray:
        """Posterior marginal standard deviations."""
        return np.sqrt(np.diag(self.cov))

    def quantile(self, q) -> np.ndarray:
        """Marginal quantiles, shape ``(len(q), n_coef)`` for an array ``q``."""
        q = np.atleast_1d(q)
        marginal_scale = np.sqrt(np.sum(self.scale_factor**2, axis=1))
        std = scipy.special.ndtri(q) if np.isinf(self.df) else scipy.special.stdtrit(self.df, q)
        return self.mean + np.outer(std, marginal_scale)

    def draws(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent posterior draws, shape ``(size, n_coef)``."""
        z = rng.standard_normal((size, self.scale_factor.shape[1])) @ self.scale_factor.T
        if not np.isinf(self.df):
            z /= np.sqrt(rng.chisquare(self.df, size=(size, 1)) / self.df)
        return self.mean + z


def linear_posterior(
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
) -> LinearPosterior:
    """Exact posterior of the linear twin.

    Model: ``y_i ~ N(intercept + x_i beta, sigma**2 / w_i)``, flat prior on the intercept,
    ``beta ~ N(0, sigma**2 / ridge_alpha * Sigma0)`` (``Sigma0 = relative_prior_cov``, identity by default;
    ``ridge_alpha = 0`` is a flat prior). With ``noise_sigma`` given the posterior is Gaussian; with
    ``noise_sigma=None``, ``sigma**2 ~ InverseGamma(*noise_prior)`` (Jeffreys' ``1 / sigma**2`` by default,
    see :data:`NOISE_PRIOR`) and the marginal posterior of the coefficients is a multivariate Student-t.
    Its mean is ``Ridge(alpha=ridge_alpha)`` on the whitened features ``X L`` (``L L^T = Sigma0``), mapped
    back by ``L``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    ridge_alpha : float
        Ridge's penalty strength (scikit-learn's convention, no 1/n), ``>= 0``.
    noise_sigma : float or None
        Known noise standard deviation, or None for the conjugate unknown-noise model.
    sample_weight : array_like or None
        Row weights ``w_i``: row ``i`` has noise variance ``sigma**2 / w_i``.
    fit_intercept : bool
        Whether the model has a flat-prior intercept.
    relative_prior_cov : array_like or None
        ``Sigma0``: a diagonal (1-D) or full (2-D) prior covariance in units of ``sigma**2 / ridge_alpha``.
    noise_prior : (float, float)
        Inverse-gamma shape and rate of ``sigma**2`` (unknown-noise model only); ``(0, 0)`` is Jeffreys'.
    feature_names : sequence of str or None

    Returns
    -------
    LinearPosterior
        Coefficients ordered ``intercept`` (when fitted) then the features.
    """
    design = WhitenedDesign.of(
        X,
        y,
        sample_weight=sample_weight,
        fit_intercept=fit_intercept,
        relative_prior_cov=relative_prior_cov,
    )
    n, p = design.Z.shape
    Z, z_y, L, w, x_mean, y_mean = (
        design.Z,
        design.z,
        design.L,
        design.w,
        design.x_mean,
        design.y_mean,
    )
    # Full V when p > n, so that the null space of Z gets the prior's variance 1 / alpha.
    U, s, Vt = design.svd(full=p > n)
    s_all = np.zeros(p)
    s_all[: s.size] = s
    shrink = s_all**2 + ridge_alpha
    if np.any(shrink <= 0.0):
        raise DataError("a flat prior (ridge_alpha=0) needs a design of full column rank")
    gamma = Vt[: s.size].T @ (s / shrink[: s.size] * (U[:, : s.size].T @ z_y))
    beta = L @ gamma
    beta_factor = L @ (Vt.T / np.sqrt(shrink))

    if fit_intercept:
        mean = np.concatenate([[y_mean - x_mean @ beta], beta])
        factor = np.zeros((p + 1, p + 1))
        factor[0, 0] = 1.0 / np.sqrt(w.sum())
        factor[0, 1:] = -x_mean @ beta_factor
        factor[1:, 1:] = beta_factor
    else:
        mean, factor = beta, beta_factor

    names = (("intercept",) if fit_intercept else ()) + tuple(
        feature_names if feature_names is not None else (f"x{j}" for j in range(p))
    )
    if noise_sigma is not None:
        return LinearPosterior(names, mean, noise_sigma * factor, np.inf)

    shape0, rate0 = noise_prior_terms(noise_prior)
    residual = z_y - Z @ gamma
    penalized_rss = residual @ residual + ridge_alpha * gamma @ gamma
    n_integrated = int(fit_intercept) + (p if ridge_alpha == 0 else 0)
    shape = shape0 + (n - n_integrated) / 2.0
    rate = rate0 + penalized_rss / 2.0
    # A residual at rounding level (relative to y's spread) is an exact fit: no information about sigma.
    exact_fit = penalized_rss <= (n * np.finfo(float).eps) ** 2 * (z_y @ z_y)
    if rate0 == 0 and (shape <= 0 or exact_fit):
        raise DataError(
            "the noise variance's posterior is improper under Jeffreys' prior: "
            + ("no residual degrees of freedom" if shape <= 0 else "y is fitted exactly")
            + "; pass a proper noise_prior"
        )
    return LinearPosterior(names, mean, np.sqrt(rate / shape) * factor, 2.0 * shape, shape, rate)
