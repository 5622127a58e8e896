"""The kernel_gp experiment and its library pieces (models.kernel): the RBF marginal-likelihood model, type-II
ML, mixture quantiles and the band with integrated hyperparameters."""

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.spatial.distance
import scipy.stats
import xarray as xr

from experiments import kernel_gp
from models.kernel import (
    normal_mixture_quantile,
    rbf_integrated_band,
    rbf_marginal_data,
    rbf_marginal_regression,
    rbf_posterior,
    rbf_type_two_ml,
)


@pytest.fixture
def problem(rng):
    """20 training rows and 5 new ones, 2 features."""
    X = rng.standard_normal((25, 2))
    y = np.sin(X[:, 0]) + 0.2 * rng.standard_normal(25)
    return kernel_gp.Problem("toy", X[:20], y[:20], X[20:], y[20:])


def test_rbf_marginal_model_density_is_the_multivariate_normal_with_its_hyperpriors(problem):
    """The model's log density (no Jacobian) at one point against scipy's densities, the distances and
    prior scales computed independently (scipy's pdist)."""
    X, y = problem.X, problem.y
    model = rbf_marginal_regression(X, y)
    length_scale, eta, sigma = 0.8, 1.3, 0.4
    point = {
        f"{name}_log__": np.log(value)
        for name, value in zip(kernel_gp.PARAMETERS, (length_scale, eta, sigma), strict=True)
    }
    distances = scipy.spatial.distance.pdist(X)
    kernel = eta**2 * np.exp(
        -0.5 * scipy.spatial.distance.squareform(distances) ** 2 / length_scale**2
    )
    likelihood = scipy.stats.multivariate_normal(
        np.zeros(len(y)), kernel + sigma**2 * np.eye(len(y))
    )
    priors = (
        scipy.stats.lognorm(1.0, scale=np.median(distances)).logpdf(length_scale)
        + scipy.stats.halfnorm(scale=np.std(y)).logpdf([eta, sigma]).sum()
    )
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")(point)
    # The same density through two Cholesky factorizations of a 20 x 20 matrix: equal to rounding.
    np.testing.assert_allclose(logp, likelihood.logpdf(y) + priors, rtol=1e-10)
    typical = np.exp(rbf_marginal_data(X, y)["log_typical_distance"])
    assert typical == pytest.approx(np.median(distances), rel=1e-12)  # the same median, to rounding


def test_mixture_quantile_solves_the_mixture_cdf():
    means = np.array([[0.0, -1.0], [0.0, 3.0]])
    sds = np.array([[1.0, 0.5], [1.0, 2.0]])
    # One normal twice over: its own quantile.
    lo = normal_mixture_quantile(means, sds, 0.05)
    assert lo[0] == pytest.approx(scipy.stats.norm.ppf(0.05), abs=1e-12)  # bisection to rounding
    # Two different normals: the root of the averaged CDF, found independently.
    root = scipy.optimize.brentq(
        lambda q: scipy.stats.norm.cdf(q, means[:, 1], sds[:, 1]).mean() - 0.05, -20, 20, xtol=1e-14
    )
    assert lo[1] == pytest.approx(root, abs=1e-10)


def rbf_log_marginal_likelihood(X, y, length_scale, eta, sigma) -> float:
    """scipy's multivariate normal density of ``y`` under the RBF Gaussian process, ``f`` integrated out."""
    squared = scipy.spatial.distance.squareform(scipy.spatial.distance.pdist(X, "sqeuclidean"))
    cov = eta**2 * np.exp(-0.5 * squared / length_scale**2) + sigma**2 * np.eye(len(y))
    return scipy.stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y)


def test_type_two_ml_point_maximizes_the_marginal_likelihood(problem):
    _, point = rbf_type_two_ml(problem.X, problem.y, restarts=2, seed=0)
    best = rbf_log_marginal_likelihood(problem.X, problem.y, **point)
    for name in kernel_gp.PARAMETERS:
        for factor in (0.98, 1.02):
            moved = point | {name: point[name] * factor}
            # L-BFGS-B stops at a gradient of about 1e-5: a 2% step loses far more than that.
            assert rbf_log_marginal_likelihood(problem.X, problem.y, **moved) < best


def test_integrated_band_of_a_point_mass_posterior_is_the_plug_in_band(problem):
    point = {"length_scale": 0.8, "eta": 1.3, "sigma": 0.4}
    posterior = xr.Dataset(
        {name: (("chain", "draw"), np.full((2, 5), v)) for name, v in point.items()}
    )
    band = rbf_integrated_band(
        problem.X, problem.y, problem.X_new, {"posterior": posterior}, count=4
    )
    mean, sd = rbf_posterior(problem.X, problem.y, problem.X_new, **point)
    z = scipy.stats.norm.isf(0.05)
    # Bisection to rounding on one normal: its own quantiles.
    np.testing.assert_allclose(band["f"], [mean - z * sd, mean + z * sd], rtol=1e-10)
    observation_sd = np.sqrt(sd**2 + point["sigma"] ** 2)
    np.testing.assert_allclose(
        band["y"], [mean - z * observation_sd, mean + z * observation_sd], rtol=1e-10
    )


def check_fast_run(folder, metadata):
    """The fast run: every comparison of the twin at 1e-8, a posterior row per hyperparameter, both bands
    scored on every held-out row."""
    config = kernel_gp.FAST
    equivalence = pd.read_csv(folder / "equivalence.csv")
    assert set(equivalence.problem) == {"one_d", "diabetes"}
    assert len(equivalence) == 2 * 5
    assert (equivalence.relative_error <= 1e-8).all()  # exact to rounding (see summarize)
    hyper = pd.read_csv(folder / "hyperparameters.csv")
    assert len(hyper) == 2 * len(kernel_gp.PARAMETERS)
    assert (hyper.ml > 0).all() and (hyper.q05 < hyper["median"]).all()
    assert (hyper["median"] < hyper.q95).all()
    assert hyper.ml_inside_90.eq((hyper.q05 <= hyper.ml) & (hyper.ml <= hyper.q95)).all()
    coverage = pd.read_csv(folder / "coverage.csv").set_index(["problem", "band"])
    assert len(coverage) == 4
    assert coverage.loc[("diabetes", "plug_in"), "n"] == 442 - config.diabetes_train_rows
    assert coverage.loc[("one_d", "integrated"), "n"] == config.one_d_fresh_rows
    assert coverage.coverage.between(0, 1).all() and (coverage.mean_width > 0).all()
    metrics = metadata["metrics"]
    assert metrics["n_nuts_fits"] == 2
    assert np.isfinite(metrics["one_d_f_band_width_ratio"])
    assert metadata["checks"]["twin_equals_kernel_ridge_and_gp"]["passed"]
