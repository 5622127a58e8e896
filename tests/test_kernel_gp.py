"""The kernel_gp experiment's pieces: the marginal-likelihood model, the closed-form GP, mixture quantiles."""

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.stats

from experiments import kernel_gp


@pytest.fixture
def problem(rng):
    """20 training rows and 5 new ones, 2 features."""
    X = rng.standard_normal((25, 2))
    y = np.sin(X[:, 0]) + 0.2 * rng.standard_normal(25)
    return kernel_gp.Problem("toy", X[:20], y[:20], X[20:], y[20:])


def test_marginal_model_log_density_is_the_multivariate_normal_with_its_hyperpriors(problem):
    values = kernel_gp.model_data(problem)
    model = kernel_gp.marginal_gaussian_process(values)
    length_scale, eta, sigma = 0.8, 1.3, 0.4
    point = {"length_scale_log__": np.log(length_scale), "eta_log__": np.log(eta)}
    point["sigma_log__"] = np.log(sigma)
    cov = eta**2 * np.exp(-0.5 * values["squared_distance"] / length_scale**2) + sigma**2 * np.eye(
        20
    )
    scale = np.std(problem.y)
    expected = (
        scipy.stats.multivariate_normal(np.zeros(20), cov).logpdf(problem.y)
        + scipy.stats.lognorm(1.0, scale=np.exp(values["log_typical_distance"])).logpdf(
            length_scale
        )
        + scipy.stats.halfnorm(scale=scale).logpdf(eta)
        + scipy.stats.halfnorm(scale=scale).logpdf(sigma)
    )
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")(point)
    np.testing.assert_allclose(
        logp, expected, rtol=1e-10
    )  # the same density, two Cholesky factorizations


def test_mixture_quantile_solves_the_mixture_cdf():
    means = np.array([[0.0, -1.0], [0.0, 3.0]])
    sds = np.array([[1.0, 0.5], [1.0, 2.0]])
    # One normal twice over: its own quantile.
    lo = kernel_gp.mixture_quantile(means, sds, 0.05)
    assert lo[0] == pytest.approx(scipy.stats.norm.ppf(0.05), abs=1e-12)  # bisection to rounding
    # Two different normals: the root of the averaged CDF, found independently.
    root = scipy.optimize.brentq(
        lambda q: scipy.stats.norm.cdf(q, means[:, 1], sds[:, 1]).mean() - 0.05, -20, 20, xtol=1e-14
    )
    assert lo[1] == pytest.approx(root, abs=1e-10)


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
