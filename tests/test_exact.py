import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge

from models.data import SIMULATED_DESIGNS
from models.diagnostics import relative_error
from models.exact import linear_posterior


def ridge_coef(ds, alpha):
    ridge = Ridge(alpha=alpha, solver="svd", fit_intercept=ds.fit_intercept)
    ridge.fit(ds.X, ds.y, sample_weight=ds.sample_weight)
    return np.concatenate([[ridge.intercept_], ridge.coef_]) if ds.fit_intercept else ridge.coef_


@pytest.mark.parametrize("design", SIMULATED_DESIGNS)
@pytest.mark.parametrize("alpha", [1e-4, 1.0, 1e4])
@pytest.mark.parametrize("noise", ["known", "unknown"])
def test_exact_posterior_mean_is_ridge(designs, design, alpha, noise):
    ds = designs[design]
    post = linear_posterior(
        ds.X,
        ds.y,
        ridge_alpha=alpha,
        noise_sigma=ds.noise_sigma if noise == "known" else None,
        sample_weight=ds.sample_weight,
        fit_intercept=ds.fit_intercept,
    )
    # Two SVD-based solutions of the same problem: rounding times the condition number (<= 1e6 here).
    assert relative_error(post.mean, ridge_coef(ds, alpha)) <= 1e-10


def brute_force(X, y, alpha, sigma, shape0=0.0, rate0=0.0):
    """Posterior from the normal equations on the intercept-augmented design (flat intercept); the noise
    prior is InverseGamma(shape0, rate0), Jeffreys' at (0, 0)."""
    n, p = X.shape
    design = np.column_stack([np.ones(n), X])
    precision = design.T @ design + np.diag([0.0] + [alpha] * p)
    cov_unit = np.linalg.inv(precision)
    mean = cov_unit @ design.T @ y
    if sigma is not None:
        return mean, sigma**2 * cov_unit
    rss = y @ y - mean @ precision @ mean
    shape, rate = shape0 + (n - 1) / 2, rate0 + rss / 2
    df = 2 * shape
    return mean, rate / shape * cov_unit * df / (df - 2)


@pytest.mark.parametrize("sigma", [1.0, None])
def test_exact_covariance_matches_normal_equations(designs, sigma):
    ds = designs["well_conditioned"]
    post = linear_posterior(ds.X, ds.y, ridge_alpha=2.0, noise_sigma=sigma)
    mean, cov = brute_force(ds.X, ds.y, 2.0, sigma)
    np.testing.assert_allclose(post.mean, mean, rtol=1e-9)  # normal equations lose ~cond digits
    # As the mean: measured 9e-14 (the atol is inert: the smallest entry is ~2e-5).
    np.testing.assert_allclose(post.cov, cov, rtol=1e-9, atol=1e-14)


def test_proper_noise_prior_matches_normal_equations(designs):
    ds = designs["well_conditioned"]
    post = linear_posterior(ds.X, ds.y, ridge_alpha=2.0, noise_prior=(2.5, 3.0))
    _, cov = brute_force(ds.X, ds.y, 2.0, None, shape0=2.5, rate0=3.0)
    # Normal equations vs SVD as above: measured 9e-14, so 1e-9 leaves room for other BLAS builds.
    np.testing.assert_allclose(post.cov, cov, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("noise_prior", [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)])
def test_noise_prior_is_proper_or_jeffreys(designs, noise_prior):
    ds = designs["well_conditioned"]
    with pytest.raises(ValueError, match="noise_prior must be"):
        linear_posterior(ds.X, ds.y, ridge_alpha=2.0, noise_prior=noise_prior)


def test_jeffreys_prior_refuses_an_exact_fit():
    X = np.random.default_rng(0).standard_normal((6, 2))
    with pytest.raises(ValueError, match="fitted exactly"):
        linear_posterior(X, X @ [1.0, 2.0] + 3.0, ridge_alpha=0.0)


def test_flat_prior_is_least_squares(diabetes):
    post = linear_posterior(
        diabetes.X, diabetes.y, ridge_alpha=0.0, noise_sigma=diabetes.noise_sigma
    )
    ols = LinearRegression().fit(diabetes.X, diabetes.y)
    # Two least-squares solvers on diabetes (cond(X^T X) ~ 500 after centering): measured 2e-15.
    assert relative_error(post.mean, np.concatenate([[ols.intercept_], ols.coef_])) <= 1e-10


def test_flat_prior_needs_full_rank(designs):
    ds = designs["wide"]
    with pytest.raises(ValueError, match="full column rank"):
        linear_posterior(ds.X, ds.y, ridge_alpha=0.0, noise_sigma=1.0)


def test_weights_are_noise_precisions(designs):
    """Duplicating a row is the same as giving it weight 2 (noise variance sigma**2 / 2)."""
    ds = designs["well_conditioned"]
    weights = np.ones(len(ds.y))
    weights[:5] = 2.0
    weighted = linear_posterior(ds.X, ds.y, ridge_alpha=1.0, noise_sigma=1.0, sample_weight=weights)
    X2 = np.vstack([ds.X, ds.X[:5]])
    y2 = np.concatenate([ds.y, ds.y[:5]])
    duplicated = linear_posterior(X2, y2, ridge_alpha=1.0, noise_sigma=1.0)
    # The same sums in another order on a well-conditioned design: rounding only, measured 4e-15 (mean)
    # and 1e-13 (covariance).
    np.testing.assert_allclose(weighted.mean, duplicated.mean, rtol=1e-12)
    np.testing.assert_allclose(weighted.cov, duplicated.cov, rtol=1e-10)


@pytest.mark.parametrize("sigma", [1.0, None])
def test_draws_have_the_posterior_moments(designs, rng, sigma):
    ds = designs["collinear"]
    post = linear_posterior(ds.X, ds.y, ridge_alpha=1.0, noise_sigma=sigma)
    draws = post.draws(rng, 40_000)
    z = np.abs(draws.mean(0) - post.mean) / (post.sd / np.sqrt(len(draws)))
    assert (
        z.max() < 4.5
    )  # 4.5 standard errors over 11 coefficients: fails about once in 30,000 runs
    np.testing.assert_allclose(
        draws.std(0), post.sd, rtol=0.03
    )  # SD of an SD estimate ~0.5% at 40,000


def test_quantiles_are_consistent_with_sd():
    post = linear_posterior(np.eye(3) + 0.1, np.arange(3.0), ridge_alpha=1.0, noise_sigma=1.0)
    lo, hi = post.quantile([0.05, 0.95])
    # Normal quantiles: mean -/+ z * sd, rounding only (measured 2e-16).
    np.testing.assert_allclose(hi - lo, 2 * 1.6448536269514722 * post.sd, rtol=1e-12)
