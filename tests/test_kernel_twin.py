"""The Gaussian-process twin of KernelRidge (models.kernel), against KernelRidge and GaussianProcessRegressor."""

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, Exponentiation
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import rbf_kernel, sigmoid_kernel

from models.data import DataError
from models.diagnostics import relative_error
from models.kernel import kernel_twin
from models.twin import fit_twin

GAMMA = 0.7


def gp_kernel(name: str):
    """scikit-learn's Gaussian-process kernel equal to KernelRidge's ``name`` kernel at the settings below."""
    fixed = "fixed"
    if name == "linear":  # x . y
        return DotProduct(sigma_0=0.0, sigma_0_bounds=fixed)
    if name == "rbf":  # exp(-gamma |x - y|**2) = exp(-|x - y|**2 / (2 l**2)), l = 1 / sqrt(2 gamma)
        return RBF(length_scale=1.0 / np.sqrt(2.0 * GAMMA), length_scale_bounds=fixed)
    # (gamma x . y + coef0)**3 = gamma**3 (x . y + coef0 / gamma)**3
    dot = DotProduct(sigma_0=np.sqrt(2.0 / GAMMA), sigma_0_bounds=fixed)
    return ConstantKernel(GAMMA**3, fixed) * Exponentiation(dot, 3)


KERNEL_RIDGES = {
    "linear": KernelRidge(alpha=0.5, kernel="linear"),
    "rbf": KernelRidge(alpha=0.1, kernel="rbf", gamma=GAMMA),
    "poly": KernelRidge(alpha=1.0, kernel="poly", degree=3, gamma=GAMMA, coef0=2.0),
}


@pytest.fixture
def data(rng):
    """40 training rows and 7 new ones, 3 features, a nonlinear response."""
    X = rng.standard_normal((47, 3))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.1 * rng.standard_normal(47)
    return X[:40], y[:40], X[40:]


@pytest.mark.parametrize("kernel", list(KERNEL_RIDGES))
def test_posterior_mean_is_kernel_ridge_and_sd_is_the_gaussian_process(kernel, data):
    X, y, X_new = data
    twin = kernel_twin(KERNEL_RIDGES[kernel], X, y)
    assert all(check["passed"] for check in twin.checks.values()), twin.checks
    # The PyMC model's MAP of the latent function: Newton on a quadratic against KernelRidge's Cholesky.
    assert relative_error(twin.map_latent, twin.estimator.predict(X)) <= 1e-8
    mean, sd = twin.predict(X_new, return_std=True)
    gp = GaussianProcessRegressor(
        kernel=gp_kernel(kernel),
        alpha=KERNEL_RIDGES[kernel].alpha,
        optimizer=None,
        normalize_y=False,
    ).fit(X, y)
    gp_mean, gp_sd = gp.predict(X_new, return_std=True)
    # Cholesky solves on both sides, of the same matrix: exact to rounding (1e-14 seen).
    assert relative_error(mean, twin.estimator.predict(X_new)) <= 1e-8
    assert relative_error(mean, gp_mean) <= 1e-8
    np.testing.assert_allclose(sd, gp_sd, rtol=1e-8)
    _, observation_sd = twin.predict(X_new, return_std=True, observation=True)
    np.testing.assert_allclose(observation_sd**2, sd**2 + KERNEL_RIDGES[kernel].alpha, rtol=1e-12)


def test_precomputed_gram_matrix_is_the_same_twin(data):
    X, y, X_new = data
    K, K_new = rbf_kernel(X, gamma=GAMMA), rbf_kernel(X_new, X, gamma=GAMMA)
    twin = kernel_twin(KernelRidge(alpha=0.1, kernel="precomputed"), K, y)
    assert all(check["passed"] for check in twin.checks.values()), twin.checks
    mean, sd = twin.predict(K_new, return_std=True, diagonal=np.ones(len(X_new)))
    rbf_mean, rbf_sd = kernel_twin(KERNEL_RIDGES["rbf"], X, y).predict(X_new, return_std=True)
    np.testing.assert_allclose(mean, rbf_mean, rtol=1e-10)  # the same matrices, the same solves
    np.testing.assert_allclose(sd, rbf_sd, rtol=1e-10)
    with pytest.raises(DataError, match="diagonal"):
        twin.predict(K_new, return_std=True)


def test_noise_sigma_scales_the_prior_and_weights_scale_the_noise(data, rng):
    X, y, X_new = data
    weights = rng.uniform(0.5, 2.0, len(y))
    weights[:3] = 0.0  # rows of weight zero carry no likelihood
    noise_sigma, alpha = 0.2, 0.1
    twin = kernel_twin(KERNEL_RIDGES["rbf"], X, y, sample_weight=weights, noise_sigma=noise_sigma)
    estimator = KernelRidge(alpha=alpha, kernel="rbf", gamma=GAMMA).fit(X, y, sample_weight=weights)
    mean, sd = twin.predict(X_new, return_std=True)
    assert relative_error(mean, estimator.predict(X_new)) <= 1e-8  # exact on both sides
    # The GP with prior scale noise_sigma**2 / alpha and per-row noise variance noise_sigma**2 / w_i.
    kept = weights > 0
    gp = GaussianProcessRegressor(
        kernel=ConstantKernel(noise_sigma**2 / alpha, "fixed") * gp_kernel("rbf"),
        alpha=noise_sigma**2 / weights[kept],
        optimizer=None,
    ).fit(X[kept], y[kept])
    gp_mean, gp_sd = gp.predict(X_new, return_std=True)
    assert relative_error(mean, gp_mean) <= 1e-8  # Cholesky solves on both sides
    np.testing.assert_allclose(sd, gp_sd, rtol=1e-8)


SETTINGS_WITHOUT_A_GP = [
    (KernelRidge(kernel="sigmoid"), "sigmoid.*not positive semi-definite"),
    (KernelRidge(alpha=0.0, kernel="rbf"), "alpha must be finite and > 0"),
    (KernelRidge(alpha=[1.0, 2.0], kernel="rbf"), "one alpha per target"),
]


@pytest.mark.parametrize(("estimator", "message"), SETTINGS_WITHOUT_A_GP, ids=["sigmoid", "0", "2"])
def test_settings_without_a_gaussian_process_fail_with_one_line(estimator, message, data):
    X, y, _ = data
    with pytest.raises(DataError, match=message):
        kernel_twin(estimator, X, y)


def test_a_gram_matrix_with_a_negative_eigenvalue_fails_before_fitting(data):
    X, y, _ = data
    K = sigmoid_kernel(X)  # smallest eigenvalue -2.3, largest 28.4 on these rows
    with pytest.raises(DataError, match="eigenvalue -.*not positive semi-definite"):
        kernel_twin(KernelRidge(kernel="precomputed"), K, y)


def test_fit_twin_points_kernel_ridge_to_its_own_twin(data):
    X, y, _ = data
    with pytest.raises(DataError, match="Gaussian process.*kernel_twin"):
        fit_twin(KernelRidge(), X, y)
