"""The Bayesian twin of ``KernelRidge``: the Gaussian process with the same kernel.

``KernelRidge(alpha, kernel)`` minimizes ``sum_i w_i (y_i - f(x_i))**2 + alpha ||f||_H**2`` over the reproducing
kernel Hilbert space of ``k``; by the representer theorem its fit is ``f = sum_j c_j k(., x_j)`` with
``c = (K + alpha W^-1)^-1 y`` (``K`` the training Gram matrix, ``W`` the sample weights, identity by default),
and it predicts ``K_* c``. It has no intercept and no coefficients on the features.

The twin: a Gaussian-process prior ``f ~ GP(0, s k)`` with noise ``y_i ~ N(f(x_i), sigma**2 / w_i)``. Its
posterior at new rows is Gaussian with mean ``K_* s (s K + sigma**2 W^-1)^-1 y = K_* (K + (sigma**2 / s)
W^-1)^-1 y`` and covariance ``s (K_** - K_* (K + (sigma**2 / s) W^-1)^-1 K_*^T)``. The mean is KernelRidge's
prediction exactly when ``sigma**2 / s = alpha``; equivalently, the log posterior is ``-(sum_i w_i (y_i -
f_i)**2 + alpha ||f||_H**2) / (2 sigma**2)`` plus a constant, KernelRidge's objective scaled, so its MAP is
KernelRidge's fit. KernelRidge fixes only that ratio: every noise variance ``sigma**2`` with prior scale ``s =
sigma**2 / alpha`` gives the same mean, and the posterior SDs scale with ``sqrt(s)``. By default
``sigma**2 = alpha`` and ``s = 1``: the Gaussian process with kernel ``k`` itself and noise variance ``alpha``,
which is ``GaussianProcessRegressor(kernel=k, alpha=alpha, optimizer=None, normalize_y=False)``. Pass
``noise_sigma`` (the noise SD, in ``y``'s units) to set the scale from a known noise level instead.

A covariance must be positive semi-definite: the sigmoid kernel is not in general and is refused, and so is
any Gram matrix with a clearly negative eigenvalue (see :data:`NEGATIVE_EIGENVALUE_TOLERANCE`).

This twin has no coefficient vector, so it does not go through :func:`models.twin.fit_twin` (whose design,
back-transforms and ``TwinFit`` are about coefficients on features) or ``BayesianTwin``: it is
:func:`kernel_twin`, with its own :class:`KernelTwin`. Its PyMC model (:func:`gaussian_process_regression`)
writes the latent function at the training rows as ``f = A u``, ``u ~ N(0, I)``, ``A A^T = s K`` (from the
eigendecomposition, so a rank-deficient Gram matrix such as a linear kernel's with fewer features than rows is
fine); the MAP of ``f`` is checked against KernelRidge's fitted values.
"""

from typing import NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.linalg
import scipy.sparse
import scipy.stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.utils.validation import check_is_fitted

from models.data import DataError, check_number, check_sample_weight
from models.diagnostics import checks, relative_error
from models.fit import PreciseMAP
from models.twin import MAP_COMPILE_MODE

__all__ = [
    "NEGATIVE_EIGENVALUE_TOLERANCE",
    "NOT_A_COVARIANCE",
    "kernel_matrix",
    "positive_semidefinite_factor",
    "gaussian_process_regression",
    "KernelTwin",
    "kernel_twin",
    "rbf_marginal_data",
    "rbf_marginal_regression",
    "rbf_type_two_ml",
    "rbf_posterior",
    "normal_mixture_quantile",
    "rbf_integrated_band",
]

NEGATIVE_EIGENVALUE_TOLERANCE = 1e-8
"""A Gram matrix is refused when its smallest eigenvalue is below ``-1e-8`` times its largest. Rounding puts an
eigenvalue of a positive semi-definite matrix at most about ``n eps`` (relative) below zero, 2e-13 at
``n = 1000``; a kernel that is not positive semi-definite gives far larger negative eigenvalues (scikit-learn's
default sigmoid kernel on 40 standard normal rows of 3 columns: -2.3 against a largest 28.4)."""

NOT_A_COVARIANCE = {
    "sigmoid": "the sigmoid (tanh) kernel is not positive semi-definite in general, so no Gaussian process "
    "has it as its covariance",
}
"""Kernels refused by name: no Gaussian process has them as covariance."""


def kernel_matrix(estimator: KernelRidge, X, Y=None) -> np.ndarray:
    """The kernel between the rows of ``X`` and ``Y`` as ``KernelRidge`` computes it (its ``_get_kernel``):
    ``gamma``, ``degree`` and ``coef0`` for a named kernel, ``kernel_params`` for a callable one. With
    ``kernel="precomputed"``, ``X`` is returned: it is the Gram matrix."""
    if callable(estimator.kernel):
        params = estimator.kernel_params or {}
    else:
        params = {"gamma": estimator.gamma, "degree": estimator.degree, "coef0": estimator.coef0}
    return pairwise_kernels(X, Y, metric=estimator.kernel, filter_params=True, **params)


def positive_semidefinite_factor(K) -> np.ndarray:
    """``A`` with ``A A^T = K`` from the eigendecomposition of a symmetric Gram matrix (eigenvalues at rounding
    level below zero count as zero).

    Raises
    ------
    DataError
        A Gram matrix that is not symmetric or has a clearly negative eigenvalue.
    """
    K = np.asarray(K, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise DataError(f"a Gram matrix must be square, got shape {K.shape}")
    # Symmetric up to the rounding of a kernel's evaluation (k(x, y) and k(y, x) summed in other orders).
    if not np.allclose(K, K.T, rtol=0.0, atol=1e-12 * np.max(np.abs(K))):
        raise DataError(
            "the Gram matrix is not symmetric: no Gaussian process has it as covariance"
        )
    eigenvalues, eigenvectors = np.linalg.eigh((K + K.T) / 2.0)
    largest = max(eigenvalues[-1], 0.0)
    if eigenvalues[0] < -NEGATIVE_EIGENVALUE_TOLERANCE * largest or largest == 0.0:
        raise DataError(
            f"the Gram matrix has eigenvalue {eigenvalues[0]:.3g} (largest {largest:.3g}): it is not "
            "positive semi-definite, so no Gaussian process has it as covariance"
        )
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def gaussian_process_regression(
    K, y, *, kernel_scale: float, noise_sigma: float, sample_weight=None
) -> pm.Model:
    """The Gaussian-process twin of ``KernelRidge`` at the training rows, as a PyMC model.

    ``f = sqrt(kernel_scale) A u`` with ``u ~ N(0, I)`` (dim ``component``) and ``A A^T = K``, so ``f ~ N(0,
    kernel_scale K)``; ``y_i ~ N(f_i, noise_sigma**2 / w_i)``. Its MAP in ``u`` maps to the MAP of ``f``,
    KernelRidge's fitted values when ``noise_sigma**2 / kernel_scale`` is its ``alpha``.

    Parameters
    ----------
    K : array_like, shape (n, n)
        The training Gram matrix, positive semi-definite.
    y : array_like, shape (n,)
    kernel_scale : float
        ``s``, the prior's scale on the kernel.
    noise_sigma : float
        The noise SD of a row of weight 1.
    sample_weight : array_like or None
        Row ``i`` has noise variance ``noise_sigma**2 / w_i``.

    Returns
    -------
    pm.Model
        Free variable ``u`` (dim ``component``), deterministic ``f`` (dim ``obs_id``), observed ``y``.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    factor = positive_semidefinite_factor(K)
    weights = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    with pm.Model(coords={"obs_id": np.arange(n), "component": np.arange(n)}) as model:
        u = pm.Normal("u", 0.0, 1.0, dims="component")
        f = pm.Deterministic("f", np.sqrt(kernel_scale) * pt.dot(factor, u), dims="obs_id")
        pm.Normal("y", mu=f, sigma=noise_sigma / np.sqrt(weights), observed=y, dims="obs_id")
    return model


class KernelTwin(NamedTuple):
    """The Gaussian-process twin of one fitted ``KernelRidge`` on its training data.

    ``cholesky`` is the lower Cholesky factor of ``K + alpha W^-1`` and ``dual_coef`` its solve with ``y``
    (KernelRidge's ``dual_coef_``, recomputed); the posterior of ``f`` at new rows is ``K_* dual_coef`` with
    variance ``kernel_scale (k(x, x) - |cholesky^-1 K_*^T|**2)``. ``map_latent`` is the PyMC model's MAP of
    ``f`` at the training rows; ``checks`` compares it and the closed-form mean with the estimator.
    ``train_rows``: the rows of the data with a positive weight, those the posterior conditions on.
    """

    estimator: KernelRidge
    X_train: np.ndarray
    train_rows: np.ndarray
    cholesky: np.ndarray
    dual_coef: np.ndarray
    kernel_scale: float
    noise_sigma: float
    map_latent: np.ndarray
    checks: dict

    def predict(self, X_new, *, return_std: bool = False, observation: bool = False, diagonal=None):
        """The posterior mean of ``f`` at new rows (KernelRidge's prediction), and with ``return_std`` its
        SD (``observation=True``: the SD of a new observation, the noise added).

        For ``kernel="precomputed"``, ``X_new`` is the kernel between the new rows and the training rows
        (as ``KernelRidge.predict`` takes it), and ``return_std`` needs ``diagonal``, the new rows' ``k(x,
        x)``.
        """
        precomputed = self.estimator.kernel == "precomputed"
        if precomputed:
            K_cross = np.asarray(X_new, dtype=float)[:, self.train_rows]
        else:
            K_cross = kernel_matrix(self.estimator, X_new, self.X_train)
        mean = K_cross @ self.dual_coef
        if not return_std:
            return mean
        if precomputed and diagonal is None:
            raise DataError(
                "a precomputed kernel needs diagonal=k(x, x) of the new rows for the SD"
            )
        if diagonal is None:
            diagonal = [
                kernel_matrix(self.estimator, row[None, :])[0, 0] for row in np.asarray(X_new)
            ]
        v = scipy.linalg.solve_triangular(self.cholesky, K_cross.T, lower=True)
        # Rounding can take a variance of about 0 (a training row, tiny noise) just below it.
        variance = self.kernel_scale * np.maximum(np.asarray(diagonal) - np.sum(v**2, axis=0), 0.0)
        if observation:
            variance = variance + self.noise_sigma**2
        return mean, np.sqrt(variance)


def _check_estimator(estimator) -> float:
    """KernelRidge's alpha as one positive number, after refusing settings with no Gaussian-process twin."""
    if not isinstance(estimator, KernelRidge):
        raise DataError(f"kernel_twin takes a KernelRidge, got {type(estimator).__name__}")
    kernel = estimator.kernel
    if isinstance(kernel, str) and kernel in NOT_A_COVARIANCE:
        raise DataError(f"KernelRidge(kernel={kernel!r}) has no twin: {NOT_A_COVARIANCE[kernel]}")
    alpha = np.ravel(np.asarray(estimator.alpha, dtype=float))
    if alpha.size != 1:
        raise DataError("KernelRidge with one alpha per target: the twin has one response")
    return check_number(
        "alpha", alpha[0], inclusive=False, reason="the Gaussian process's noise variance"
    )


def kernel_twin(
    estimator, X, y, *, sample_weight=None, noise_sigma: float | None = None
) -> KernelTwin:
    """The Gaussian-process twin of a ``KernelRidge`` on ``(X, y)``: exact posterior and checked MAP.

    Parameters
    ----------
    estimator : KernelRidge
        Fitted on these data, or unfitted (a fitted clone is made).
    X : array_like, shape (n, p), or (n, n) for ``kernel="precomputed"`` (the Gram matrix)
    y : array_like, shape (n,)
    sample_weight : array_like or None
        As passed to ``KernelRidge.fit``: row ``i`` has noise variance ``noise_sigma**2 / w_i``. Rows of weight
        zero carry no likelihood and are left out.
    noise_sigma : float or None
        The noise SD; the prior's scale on the kernel is then ``noise_sigma**2 / alpha``. None: ``sqrt(alpha)``
        (prior scale 1, the Gaussian process with the estimator's kernel itself; see the module docstring).

    Returns
    -------
    KernelTwin

    Raises
    ------
    DataError
        A kernel that is not positive semi-definite, ``alpha <= 0`` or one per target, a response that is not
        one column of finite numbers, bad sample weights.
    """
    alpha = _check_estimator(estimator)
    X = np.asarray(X.toarray() if scipy.sparse.issparse(X) else X, dtype=float)
    y = np.asarray(y, dtype=float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if X.ndim != 2 or y.ndim != 1 or len(y) != len(X):
        raise DataError(
            f"X must be 2-D and y one column of len(X) values, got {X.shape}, {y.shape}"
        )
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(X))):
        raise DataError("X and y must be finite")
    weights = check_sample_weight(sample_weight, len(y))
    rows = np.flatnonzero(weights > 0)
    noise_sigma = check_number(
        "noise_sigma",
        float(np.sqrt(alpha)) if noise_sigma is None else noise_sigma,
        inclusive=False,
    )
    kernel_scale = noise_sigma**2 / alpha
    precomputed = estimator.kernel == "precomputed"
    K = X[np.ix_(rows, rows)] if precomputed else kernel_matrix(estimator, X[rows])
    X_train, y_train, weights = X[rows], y[rows], weights[rows]
    # Built before the estimator's fit: the builder refuses a Gram matrix that is no covariance.
    model = gaussian_process_regression(
        K, y_train, kernel_scale=kernel_scale, noise_sigma=noise_sigma, sample_weight=weights
    )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        estimator = clone(estimator).fit(X, y, sample_weight=sample_weight)
    cholesky = scipy.linalg.cholesky(K + np.diag(alpha / weights), lower=True)
    dual_coef = scipy.linalg.cho_solve((cholesky, True), y_train)
    map_latent = PreciseMAP(model, mode=MAP_COMPILE_MODE)()["f"]
    fitted = estimator.predict(X[rows])
    targets = {
        # Newton on a quadratic (the MAP) and a Cholesky solve (the closed form) against KernelRidge's own
        # Cholesky solve: all exact to rounding.
        "map_vs_estimator": (relative_error(map_latent, fitted), "<=", 1e-8),
        "exact_mean_vs_estimator": (relative_error(K @ dual_coef, fitted), "<=", 1e-8),
    }
    return KernelTwin(
        estimator,
        X_train,
        rows,
        cholesky,
        dual_coef,
        kernel_scale,
        noise_sigma,
        map_latent,
        checks(targets),
    )


def rbf_marginal_data(X, y) -> dict:
    """The data of :func:`rbf_marginal_regression` for ``(X, y)``: squared distances between the rows, the
    response, and the hyperpriors' scales (log of the median distance between rows, SD of ``y``). Pass it to
    ``compiled.with_data`` (:func:`models.fit.sample_nuts`) to refit one compiled model on other data."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    squared_distance = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    typical = np.median(np.sqrt(squared_distance[np.triu_indices(len(y), 1)]))
    scales = {"log_typical_distance": np.log(typical), "y_scale": np.std(y)}
    return {"squared_distance": squared_distance, "y_obs": y} | scales


def rbf_marginal_regression(X, y) -> pm.Model:
    """Gaussian-process regression with an RBF kernel, ``f`` integrated out, and priors on the kernel's three
    hyperparameters: what :class:`sklearn.gaussian_process.GaussianProcessRegressor` with ``ConstantKernel *
    RBF + WhiteKernel`` fits by type-II maximum likelihood, given a posterior instead.

    ``y ~ N(0, eta**2 exp(-|x - x'|**2 / (2 length_scale**2)) + sigma**2 I)`` with

    * ``length_scale ~ LogNormal(log d, 1)``, ``d`` the median distance between rows: 90% of its mass within
      a factor 5.2 of the scale the data can inform, and none at 0 (a LogNormal or InverseGamma, as PyMC's
      Gaussian-process guide suggests for length scales);
    * ``eta`` (signal SD) and ``sigma`` (noise SD) ``~ HalfNormal(sd(y))``: weakly informative in the
      response's own units.

    Every datum is ``pm.Data`` (:func:`rbf_marginal_data`), so one compiled model serves data of any size.
    """
    with pm.Model() as model:
        data = {name: pm.Data(name, value) for name, value in rbf_marginal_data(X, y).items()}
        length_scale = pm.LogNormal("length_scale", data["log_typical_distance"], 1.0)
        eta = pm.HalfNormal("eta", data["y_scale"])
        sigma = pm.HalfNormal("sigma", data["y_scale"])
        size = data["y_obs"].shape[0]
        kernel = eta**2 * pt.exp(-0.5 * data["squared_distance"] / length_scale**2)
        pm.MvNormal(
            "y", mu=pt.zeros(size), cov=kernel + sigma**2 * pt.eye(size), observed=data["y_obs"]
        )
    return model


def rbf_type_two_ml(
    X, y, *, restarts: int = 5, seed: int = 0
) -> tuple[GaussianProcessRegressor, dict]:
    """The empirical-Bayes counterpart of :func:`rbf_marginal_regression`: ``GaussianProcessRegressor`` with
    ``ConstantKernel * RBF + WhiteKernel`` fitted by maximizing the marginal likelihood (type-II ML).

    ``alpha=0``: no jitter beside the ``WhiteKernel``, so the fitted noise variance is the ``WhiteKernel``'s
    alone. Returns the fitted regressor and its point as ``length_scale``, ``eta`` (signal SD) and ``sigma``
    (noise SD).
    """
    kernel = ConstantKernel(1.0) * RBF(1.0) + WhiteKernel(0.1)
    gpr = GaussianProcessRegressor(
        kernel, alpha=0.0, n_restarts_optimizer=restarts, random_state=seed
    )
    gpr.fit(X, y)
    signal, rbf, white = gpr.kernel_.k1.k1, gpr.kernel_.k1.k2, gpr.kernel_.k2
    point = {"length_scale": rbf.length_scale, "eta": np.sqrt(signal.constant_value)}
    return gpr, point | {"sigma": np.sqrt(white.noise_level)}


def rbf_posterior(X, y, X_new, *, length_scale, eta, sigma) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and SD of ``f`` at ``X_new`` for fixed hyperparameters (``GaussianProcessRegressor`` with
    them fixed and no optimizer)."""
    kernel = ConstantKernel(eta**2, "fixed") * RBF(length_scale, "fixed")
    gp = GaussianProcessRegressor(kernel, alpha=sigma**2, optimizer=None).fit(X, y)
    return gp.predict(X_new, return_std=True)


def normal_mixture_quantile(means, sds, prob: float) -> np.ndarray:
    """The ``prob`` quantile of an equal mixture of normals at each point, by bisection on the mixture's CDF;
    ``means`` and ``sds`` have shape ``(component, point)``."""
    lo, hi = (means - 10 * sds).min(axis=0), (means + 10 * sds).max(axis=0)
    for _ in range(80):  # 80 halvings of a bracket 20 SDs wide: far below rounding
        mid = (lo + hi) / 2
        below = scipy.stats.norm.cdf((mid - means) / sds).mean(axis=0) < prob
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def rbf_integrated_band(X, y, X_new, idata, *, count: int, prob: float = 0.9) -> dict:
    """The central ``prob`` bands of ``f`` and of a new ``y`` at ``X_new`` with the hyperparameters integrated
    over their posterior (``idata`` from :func:`rbf_marginal_regression`): quantiles of the mixture of the
    closed-form posteriors (:func:`rbf_posterior`) at ``count`` evenly spaced draws.

    Returns ``{"f": (lower, upper), "y": (lower, upper)}``.
    """
    names = ("length_scale", "eta", "sigma")
    flat = {name: idata["posterior"][name].values.ravel() for name in names}
    pick = np.linspace(0, len(flat["eta"]) - 1, count).round().astype(int)
    fits = [rbf_posterior(X, y, X_new, **{name: flat[name][j] for name in names}) for j in pick]
    means, sds = np.array([m for m, _ in fits]), np.array([s for _, s in fits])
    observation_sds = np.sqrt(sds**2 + flat["sigma"][pick][:, None] ** 2)
    tails = ((1 - prob) / 2, (1 + prob) / 2)
    return {
        "f": tuple(normal_mixture_quantile(means, sds, p) for p in tails),
        "y": tuple(normal_mixture_quantile(means, observation_sds, p) for p in tails),
    }
