import numpy as np
import pytest
from sklearn.linear_model import Ridge

from models import penalties
from models.exact import linear_posterior


def test_ridge_alpha_and_prior_sigma_are_inverse():
    tau = penalties.ridge_prior_sigma(ridge_alpha=0.25, noise_sigma=3.0)
    assert tau == pytest.approx(6.0, rel=1e-15)
    assert penalties.ridge_alpha(noise_sigma=3.0, prior_sigma=tau) == pytest.approx(0.25, rel=1e-15)


def test_zero_alpha_is_a_flat_prior():
    assert np.isinf(penalties.ridge_prior_sigma(ridge_alpha=0.0, noise_sigma=1.0))


def test_normal_prior_of_ridge_alpha_has_ridge_as_posterior_mode(diabetes):
    """The exact posterior mean under N(0, tau**2), tau from the mapping, equals Ridge(alpha)."""
    alpha = 0.3
    tau = penalties.ridge_prior_sigma(ridge_alpha=alpha, noise_sigma=diabetes.noise_sigma)
    # The builder speaks Ridge units; map tau back and check the round trip reproduces scikit-learn.
    alpha_back = penalties.ridge_alpha(noise_sigma=diabetes.noise_sigma, prior_sigma=tau)
    post = linear_posterior(
        diabetes.X, diabetes.y, ridge_alpha=float(alpha_back), noise_sigma=diabetes.noise_sigma
    )
    ridge = Ridge(alpha=alpha, solver="svd").fit(diabetes.X, diabetes.y)
    np.testing.assert_allclose(
        post.mean[1:], ridge.coef_, rtol=1e-10
    )  # same linear algebra, different order


def test_full_prior_covariance_is_ridge_on_whitened_features(rng, diabetes):
    """theta ~ N(0, Sigma): the MAP minimizes ||y - X theta||^2 + theta^T A theta, A = sigma^2 Sigma^-1."""
    p = diabetes.X.shape[1]
    basis = rng.standard_normal((p, p))
    prior_cov = basis @ basis.T / p + np.eye(p)
    sigma = diabetes.noise_sigma
    L = penalties.whitening_factor(prior_cov)
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
    assert mapping(**kwargs) == pytest.approx(expected, rel=1e-15)


def test_elasticnet_scales_reduce_to_lasso_and_ridge_parts():
    b, tau = penalties.elasticnet_prior_scales(
        alpha=0.5, l1_ratio=1.0, noise_sigma=2.0, n_samples=8
    )
    assert b == pytest.approx(1.0) and np.isinf(tau)
    b, tau = penalties.elasticnet_prior_scales(
        alpha=0.5, l1_ratio=0.0, noise_sigma=2.0, n_samples=8
    )
    assert np.isinf(b) and tau == pytest.approx(1.0)
