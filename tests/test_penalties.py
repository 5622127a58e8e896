import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import Ridge

from models import penalties


def test_ridge_alpha_and_prior_sigma_are_inverse():
    tau = penalties.ridge_prior_sigma(ridge_alpha=0.25, noise_sigma=3.0)
    # A square root and a division: a few ulps at most (both come out exact here, 6.0 and 0.25).
    assert tau == pytest.approx(6.0, rel=1e-15)
    assert penalties.ridge_alpha(noise_sigma=3.0, prior_sigma=tau) == pytest.approx(0.25, rel=1e-15)


def test_zero_alpha_is_a_flat_prior():
    assert np.isinf(penalties.ridge_prior_sigma(ridge_alpha=0.0, noise_sigma=1.0))


def test_normal_prior_of_ridge_alpha_has_ridge_as_posterior_mode(diabetes):
    """The prior N(0, tau**2), tau from the mapping, built as a density: its posterior mode is Ridge(alpha).

    The log posterior (flat intercept, ``y ~ N(intercept + X beta, sigma**2)``, ``beta ~ N(0, tau**2)``) is
    written with scipy's Normal densities and maximized by Newton's method from its own gradient and
    Hessian (one step: it is quadratic); no alpha enters. 1e-9: the normal equations of diabetes
    (condition number ~1e3 after centering) lose a few digits against Ridge's SVD.
    """
    alpha, sigma = 0.3, diabetes.noise_sigma
    tau = penalties.ridge_prior_sigma(ridge_alpha=alpha, noise_sigma=sigma)
    design = np.column_stack([np.ones(len(diabetes.y)), diabetes.X])

    def log_posterior(theta):
        likelihood = scipy.stats.norm.logpdf(diabetes.y, design @ theta, sigma).sum()
        return likelihood + scipy.stats.norm.logpdf(theta[1:], 0.0, tau).sum()

    prior_precision = np.diag([0.0] + [1.0 / tau**2] * diabetes.X.shape[1])
    hessian = -(design.T @ design) / sigma**2 - prior_precision
    theta0 = np.zeros(design.shape[1])
    gradient = design.T @ (diabetes.y - design @ theta0) / sigma**2 - prior_precision @ theta0
    mode = theta0 - np.linalg.solve(hessian, gradient)
    step = 1e-3 * np.ones_like(
        mode
    )  # the mode beats its neighbours: the density, not the algebra, decides
    assert log_posterior(mode) > max(log_posterior(mode + step), log_posterior(mode - step))
    ridge = Ridge(alpha=alpha, solver="svd").fit(diabetes.X, diabetes.y)
    np.testing.assert_allclose(mode[1:], ridge.coef_, rtol=1e-9)
    assert mode[0] == pytest.approx(ridge.intercept_, rel=1e-9)


def test_full_prior_covariance_is_ridge_on_whitened_features(rng, diabetes):
    """theta ~ N(0, Sigma): the MAP minimizes ||y - X theta||^2 + theta^T A theta, A = sigma^2 Sigma^-1."""
    p = diabetes.X.shape[1]
    basis = rng.standard_normal((p, p))
    prior_cov = basis @ basis.T / p + np.eye(p)
    sigma = diabetes.noise_sigma
    L = penalties.whitening_factor(prior_cov)
    # Cholesky is backward stable: rounding only (measured 7e-16 relative).
    np.testing.assert_allclose(L @ L.T, prior_cov, rtol=1e-12)
    ridge = Ridge(alpha=sigma**2, solver="svd").fit(diabetes.X @ L, diabetes.y)
    theta_whitened = L @ ridge.coef_
    A = penalties.ridge_penalty_matrix(noise_sigma=sigma, prior_cov=prior_cov)
    Xc = diabetes.X - diabetes.X.mean(0)
    yc = diabetes.y - diabetes.y.mean()
    theta_direct = np.linalg.solve(Xc.T @ Xc + A, Xc.T @ yc)
    np.testing.assert_allclose(
        theta_whitened, theta_direct, rtol=1e-8
    )  # normal equations: cond ~1e4


def test_diagonal_prior_covariance_is_read_as_variances():
    L = penalties.whitening_factor(np.array([4.0, 9.0]))
    np.testing.assert_array_equal(L, np.diag([2.0, 3.0]))


@pytest.mark.parametrize(
    ("mapping", "kwargs", "expected"),
    [
        (penalties.logistic_prior_sigma, {"logistic_C": 4.0}, 2.0),
        (penalties.poisson_prior_sigma, {"poisson_alpha": 0.01, "n_samples": 100}, 1.0),
        (
            penalties.lasso_laplace_scale,
            {"lasso_alpha": 0.5, "noise_sigma": 2.0, "n_samples": 8},
            1.0,
        ),
    ],
)
def test_glm_and_lasso_scales(mapping, kwargs, expected):
    # Closed forms of a product, a quotient and a square root: a few ulps at most (exact here).
    assert mapping(**kwargs) == pytest.approx(expected, rel=1e-15)


def test_elasticnet_scales_reduce_to_lasso_and_ridge_parts():
    b, tau = penalties.elasticnet_prior_scales(
        alpha=0.5, l1_ratio=1.0, noise_sigma=2.0, n_samples=8
    )
    # The same closed forms as the lasso and Ridge mappings: a few ulps at most (exact here).
    assert b == pytest.approx(1.0, rel=1e-15) and np.isinf(tau)
    b, tau = penalties.elasticnet_prior_scales(
        alpha=0.5, l1_ratio=0.0, noise_sigma=2.0, n_samples=8
    )
    assert np.isinf(b) and tau == pytest.approx(1.0, rel=1e-15)
