import arviz_stats as azs
import numpy as np
import pymc as pm
import pytest
import xarray as xr

from models.diagnostics import convergence
from models.evidence import exact_loo
from models.exact import linear_posterior
from models.linear import linear_regression
from models.loglik import loo, pointwise_chunks, with_log_likelihood

CHAINS, DRAWS = 2, 1000


def posterior_tree(coef, sigma_squared=None, *, fit_intercept=True):
    """A DataTree shaped like a sampled posterior of the linear twin, from independent draws."""
    coef = coef.reshape(CHAINS, DRAWS, -1)
    variables = {"beta": (("chain", "draw", "feature"), coef[..., int(fit_intercept) :])}
    if fit_intercept:
        variables["intercept"] = (("chain", "draw"), coef[..., 0])
    if sigma_squared is not None:
        variables["sigma_squared"] = (("chain", "draw"), sigma_squared.reshape(CHAINS, DRAWS))
    zeros = np.zeros((CHAINS, DRAWS), bool)
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(variables),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), zeros)}),
        }
    )


@pytest.fixture
def data(rng):
    X = rng.standard_normal((60, 3))
    y = 0.5 + X @ [1.0, -2.0, 0.5] + rng.standard_normal(60)
    return X, y, rng.uniform(0.5, 2.0, size=60)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_pointwise_matches_the_row_wise_twin(data, rng, fit_intercept):
    X, y, weights = data
    exact = linear_posterior(
        X, y, ridge_alpha=1.0, sample_weight=weights, fit_intercept=fit_intercept
    )
    sigma_squared = 1.0 / rng.gamma(exact.noise_shape, 1.0 / exact.noise_rate, CHAINS * DRAWS)
    idata = posterior_tree(
        exact.draws(rng, CHAINS * DRAWS), sigma_squared, fit_intercept=fit_intercept
    )
    model = linear_regression(
        X, y, ridge_alpha=1.0, sample_weight=weights, fit_intercept=fit_intercept
    )
    reference = pm.compute_log_likelihood(idata.copy(), model=model, progressbar=False)
    chunks = list(
        pointwise_chunks(
            idata, X, y, sample_weight=weights, fit_intercept=fit_intercept, chunk_size=7
        )
    )
    assert len(chunks) == 9
    ours = np.concatenate([chunk for _, chunk in chunks], axis=-1)
    # The same Gaussian density, evaluated in a different order.
    np.testing.assert_allclose(ours, reference["log_likelihood"]["y"].values, rtol=1e-12)


def test_known_noise_uses_the_given_sigma(data, rng):
    X, y, _ = data
    exact = linear_posterior(X, y, ridge_alpha=1.0, noise_sigma=1.5)
    idata = posterior_tree(exact.draws(rng, CHAINS * DRAWS))
    log_lik = with_log_likelihood(idata, X, y, noise_sigma=1.5)["log_likelihood"]["y"].values
    first = idata["posterior"]
    mu = first["intercept"].values[0, 0] + X @ first["beta"].values[0, 0]
    by_hand = -0.5 * np.log(2 * np.pi * 1.5**2) - 0.5 * (y - mu) ** 2 / 1.5**2
    # The same formula written twice: rounding only (measured 4e-16).
    np.testing.assert_allclose(log_lik[0, 0], by_hand, rtol=1e-12)


def test_chunked_loo_equals_loo_on_the_whole_array_and_the_exact_loo(data, rng):
    X, y, _ = data
    exact = linear_posterior(X, y, ridge_alpha=1.0)
    sigma_squared = 1.0 / rng.gamma(exact.noise_shape, 1.0 / exact.noise_rate, CHAINS * DRAWS)
    # Joint draws: coefficients | sigma^2 ~ N(mean, sigma^2 (a / b) S S^T), S S^T the Student-t scale.
    scale = np.sqrt(sigma_squared * exact.noise_shape / exact.noise_rate)[:, None]
    z = rng.standard_normal((CHAINS * DRAWS, exact.mean.size)) @ exact.scale_factor.T
    idata = posterior_tree(exact.mean + scale * z, sigma_squared)
    chunked = loo(idata, X, y, chunk_size=7)
    # The reff loo() fixes once for every chunk: the posterior's smallest bulk ESS over the draws.
    reff = min(1.0, convergence(idata).ess_bulk_min / (CHAINS * DRAWS))
    full = azs.loo(with_log_likelihood(idata, X, y), pointwise=True, reff=reff)
    # Same PSIS per observation, summed in a different order.
    np.testing.assert_allclose(chunked.elpd, full.elpd, rtol=1e-12)
    # The SE and p_loo from the same pointwise values (measured <= 2e-16); 1e-10 leaves room for the
    # cancellation in the SE's variance.
    np.testing.assert_allclose(chunked.se, full.se, rtol=1e-10)
    np.testing.assert_allclose(chunked.p, full.p, rtol=1e-10)
    assert chunked.n_data_points == y.size
    # PSIS-LOO from 2,000 exact draws vs the closed form: Monte Carlo error well under 1% of elpd here.
    reference = exact_loo(X, y, ridge_alpha=1.0).elpd_i.sum()
    assert abs(chunked.elpd - reference) < 0.01 * abs(reference)
