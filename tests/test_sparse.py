import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.integrate
import scipy.stats
from sklearn.linear_model import ElasticNet, Lasso

from models import sparse
from models.diagnostics import mean_z_scores
from models.fit import coefficients, compile_nuts, posterior_coefficients, sample_nuts

# scikit-learn's coordinate descent with a duality-gap tolerance of 1e-12 (times ||y||^2) and no iteration cap
# in practice: its error, not the active-set MAP's, sets the agreement (about 1e-8 relative at worst here).
LASSO_SETTINGS = {"tol": 1e-12, "max_iter": 1_000_000}


def lasso_coef(ds, alpha, l1_ratio=1.0):
    estimator = Lasso if l1_ratio == 1.0 else ElasticNet
    kwargs = {} if l1_ratio == 1.0 else {"l1_ratio": l1_ratio}
    fit = estimator(alpha=alpha, fit_intercept=ds.fit_intercept, **kwargs, **LASSO_SETTINGS)
    fit.fit(ds.X, ds.y, sample_weight=ds.sample_weight)
    return np.concatenate([[fit.intercept_], fit.coef_]) if ds.fit_intercept else fit.coef_


def alpha_max(ds):
    return sparse.lasso_alpha_max(
        ds.X, ds.y, sample_weight=ds.sample_weight, fit_intercept=ds.fit_intercept
    )


@pytest.mark.parametrize("design", ["diabetes", "weighted", "no_intercept"])
def test_lasso_alpha_max_is_where_the_lasso_becomes_all_zero(diabetes, designs, design):
    ds = diabetes if design == "diabetes" else designs[design]
    alpha = alpha_max(ds)
    # A tight tolerance: with the default one, coordinate descent stops at 0 just below alpha_max too.
    for factor, all_zero in [(1 + 1e-9, True), (1 - 1e-3, False)]:
        assert np.all(lasso_coef(ds, alpha * factor)[int(ds.fit_intercept) :] == 0.0) == all_zero


def test_support_recovery_counts_and_f1():
    truth = np.array([True, True, False, False, False])
    selected = np.array([True, False, True, False, False])  # one hit, one miss, one false alarm
    assert sparse.support_recovery(selected, truth) == (1, 1, 1, 0.5)
    assert sparse.support_recovery(truth, truth).f1 == 1.0
    assert np.isnan(sparse.support_recovery(np.zeros(3, bool), np.zeros(3, bool)).f1)


def twin(ds, **prior):
    builder = sparse.laplace_regression if "lasso_alpha" in prior else sparse.elasticnet_regression
    return builder(
        ds.X,
        ds.y,
        noise_sigma=ds.noise_sigma,
        sample_weight=ds.sample_weight,
        fit_intercept=ds.fit_intercept,
        **prior,
    )


def assert_same_fit(estimate, reference):
    """Same exact zeros; every non-zero coefficient within 1e-6 relative (the issue's target)."""
    np.testing.assert_array_equal(estimate == 0.0, reference == 0.0)
    nonzero = reference != 0.0
    relative = np.abs(estimate - reference)[nonzero] / np.abs(reference[nonzero])
    assert relative.max(initial=0.0) <= 1e-6, relative.max()


@pytest.mark.parametrize("design", ["diabetes", "wide", "badly_scaled", "weighted", "no_intercept"])
def test_sparse_map_matches_lasso_zeros_and_values_across_alpha_path(diabetes, designs, design):
    """The data set's twin (its weights and intercept, :func:`models.sparse.laplace_twin`), refitted along the
    path with :func:`models.sparse.lasso_path_data`."""
    ds = diabetes if design == "diabetes" else designs[design]
    alphas = alpha_max(ds) * np.logspace(0.05, -3, 8)
    model = sparse.laplace_twin(ds, alphas[0])
    sparse_map = sparse.SparseMAP(model)  # compiled once for the whole path
    settings = sparse.lasso_path_data(ds, alphas)
    path = sparse.warm_started_path(sparse_map, settings)
    n_zeros = 0
    for alpha, data, values in zip(alphas, settings, path, strict=True):
        # Yielded while the model still holds this alpha's prior scale.
        assert model["laplace_b"].get_value() == data["laplace_b"]
        reference = lasso_coef(ds, alpha)
        assert_same_fit(coefficients(values), reference)
        optimality = values["_optimality"]
        assert (
            max(optimality.nonzero, optimality.zero) <= 1e-8
        )  # rounding: gradient terms ~ |H| |x|
        n_zeros += int(np.sum(reference == 0.0))
    assert n_zeros > 0  # the path does test exact zeros


def test_sample_weights_are_rescaled_to_sum_to_n_like_scikit_learn(designs):
    ds = designs["weighted"]
    alpha = 0.05
    fits = []
    for scale in (1.0, 7.0):
        weighted = ds._replace(sample_weight=scale * ds.sample_weight)
        fits.append(coefficients(sparse.SparseMAP(twin(weighted, lasso_alpha=alpha))()))
        assert_same_fit(fits[-1], lasso_coef(weighted, alpha))
    np.testing.assert_allclose(fits[0], fits[1], rtol=1e-10)  # same model: weights are normalized
    model = twin(ds, lasso_alpha=alpha)
    # n * w / sum(w), summed: rounding only (measured exact).
    np.testing.assert_allclose(model["sample_weight"].get_value().sum(), len(ds.y), rtol=1e-12)


@pytest.mark.parametrize("l1_ratio", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("fraction", [0.3, 0.01])
def test_sparse_map_matches_elasticnet(diabetes, l1_ratio, fraction):
    alpha = fraction * alpha_max(diabetes)
    model = twin(diabetes, alpha=alpha, l1_ratio=l1_ratio)
    assert_same_fit(coefficients(sparse.SparseMAP(model)()), lasso_coef(diabetes, alpha, l1_ratio))


def test_elasticnet_prior_scales_follow_the_data_after_set_data(diabetes):
    model = twin(diabetes, alpha=1.0, l1_ratio=0.5)
    sparse_map = sparse.SparseMAP(model)
    data = sparse.elasticnet_prior_data(
        alpha=0.05, l1_ratio=0.3, noise_sigma=diabetes.noise_sigma, n_samples=442
    )
    pm.set_data(data, model=model)
    assert_same_fit(coefficients(sparse_map()), lasso_coef(diabetes, 0.05, 0.3))


@pytest.mark.parametrize(("laplace_b", "normal_sigma"), [(1.0, 1.0), (0.01, 3.0), (5.0, 0.1)])
def test_elasticnet_prior_density_integrates_to_one(laplace_b, normal_sigma):
    w = pt.dscalar("w")
    density = pytensor.function([w], pt.exp(sparse.laplace_normal_logp(w, laplace_b, normal_sigma)))
    half = 40 * min(laplace_b, normal_sigma)  # the narrower factor sets the width
    # At quad's default tolerances its error estimate read 6.9e-10 (b=5, sigma=0.1) against this 1e-9:
    # asked for 1e-12 it reads <= 3e-13, while the integral itself was right to 6e-16 either way.
    total, error = scipy.integrate.quad(
        density, -half, half, points=[0.0], limit=200, epsabs=1e-12, epsrel=1e-12
    )
    assert error < 1e-9
    # Within quad's error bound; the tails beyond 40 scales add < exp(-40) = 4e-18 (measured 6e-16).
    assert total == pytest.approx(1.0, abs=1e-9)


def test_sparse_map_reaches_exact_zeros_that_satisfy_the_subgradient_conditions(diabetes):
    alpha = 0.3
    model = twin(diabetes, lasso_alpha=alpha)
    values = sparse.SparseMAP(model)()
    assert np.sum(values["beta"] == 0.0) >= 3  # Lasso has 6 exact zeros at alpha = 0.3 on diabetes
    assert values["_optimality"].zero == 0.0


def test_sparse_map_rejects_transformed_variables(rng):
    X = rng.standard_normal((30, 4))
    model = sparse.regularized_horseshoe_regression(X, X[:, 0], noise_sigma=1.0, expected_nonzero=1)
    with pytest.raises(ValueError, match="untransformed"):
        sparse.SparseMAP(model, penalized="z")


@pytest.mark.parametrize(
    ("builder", "kwargs", "message"),
    [
        (
            sparse.laplace_regression,
            {"lasso_alpha": 0.0},
            "^lasso_alpha must be finite and > 0, got 0$",
        ),
        (
            sparse.elasticnet_regression,
            {"alpha": 1.0, "l1_ratio": 1.0},
            r"^l1_ratio must be in \(0, 1\), got 1 \(use the Laplace or Ridge twin at the ends\)$",
        ),
        (
            sparse.elasticnet_regression,
            {"alpha": -1.0, "l1_ratio": 0.5},
            "^alpha must be finite and > 0, got -1$",
        ),
        (
            sparse.regularized_horseshoe_regression,
            {"expected_nonzero": 5},
            "expected_nonzero must be in",
        ),
    ],
)
def test_builders_reject_bad_prior_settings(rng, builder, kwargs, message):
    X = rng.standard_normal((20, 5))
    with pytest.raises(ValueError, match=message):
        builder(X, X[:, 0], noise_sigma=1.0, **kwargs)


def test_horseshoe_local_scale_is_half_cauchy(rng):
    """``a sqrt(g)`` with a ~ HalfNormal(1), g ~ InverseGamma(1/2, 1/2) is HalfCauchy(1)."""
    X = rng.standard_normal((30, 4))
    model = sparse.regularized_horseshoe_regression(X, X[:, 0], noise_sigma=1.0, expected_nonzero=1)
    prior = pm.sample_prior_predictive(
        draws=4000, model=model, random_seed=1, var_names=["local_a", "local_g"]
    )
    lam = (prior["prior"]["local_a"] * np.sqrt(prior["prior"]["local_g"])).values.ravel()
    # 16,000 draws: a KS test rejects a wrong scale of 10% with near certainty; p < 1e-4 by chance 1 in 10,000.
    assert scipy.stats.kstest(lam, scipy.stats.halfcauchy().cdf).pvalue > 1e-4


def test_sparse_truth_has_the_requested_support(rng):
    ds = sparse.sparse_truth(rng=rng, n_samples=50, n_features=12, n_nonzero=3)
    assert ds.X.shape == (50, 12) and np.sum(ds.true_coef[1:] != 0.0) == 3
    assert np.all(np.abs(ds.true_coef[1:][ds.true_coef[1:] != 0.0]) >= 0.5)


@pytest.mark.slow
def test_laplace_posterior_matches_quadrature_in_mcse_units(rng):
    """One coefficient, no intercept: the posterior under the Laplace prior by 1-D quadrature vs NUTS."""
    n, alpha, sigma = 20, 0.3, 1.0
    x = rng.standard_normal((n, 1))
    y = 0.2 * x[:, 0] + sigma * rng.standard_normal(n)
    model = sparse.laplace_regression(
        x, y, lasso_alpha=alpha, noise_sigma=sigma, fit_intercept=False
    )
    b = sparse.lasso_prior_data(lasso_alpha=alpha, noise_sigma=sigma, n_samples=n)["laplace_b"]

    def unnormalized(w):
        return np.exp(-np.sum((y - x[:, 0] * w) ** 2) / (2 * sigma**2) - abs(w) / b + 10.0)

    mass = scipy.integrate.quad(unnormalized, -5, 5, points=[0.0])[0]
    mean = scipy.integrate.quad(lambda w: w * unnormalized(w), -5, 5, points=[0.0])[0] / mass
    near_zero = scipy.integrate.quad(unnormalized, -0.02, 0.02)[0] / mass
    idata = sample_nuts(compile_nuts(model), seed=3, draws=2000, tune=1000, chains=2)
    draws = posterior_coefficients(idata, names=("beta",))
    assert (
        mean_z_scores(draws, [mean]).max() < 4
    )  # 4 MCSE: fails by chance about once in 15,000 runs
    # P(|beta| < 0.02): a proportion of 4,000 correlated draws; 0.03 is > 4 of its standard errors here.
    assert np.mean(np.abs(draws) < 0.02) == pytest.approx(near_zero, abs=0.03)
    assert (
        near_zero < 0.2
    )  # the posterior has no point mass at zero, although the MAP may be exactly zero


def test_line_search_shortens_an_overshooting_step_and_refuses_ascent(rng):
    """On the l1 logistic twin (a non-quadratic likelihood), ten Newton steps at once overshoot: the Armijo
    search returns a shorter length that decreases the objective; an ascent direction gets length 0."""
    from models import glm

    X = rng.standard_normal((60, 3))
    y = (rng.random(60) < 1.0 / (1.0 + np.exp(-3.0 * X[:, 0]))).astype(float)
    solver = sparse.SparseMAP(glm.logistic_regression(X, y, logistic_C=1.0, l1_ratio=1.0))
    x = np.array([0.5, 1.0, -0.5, 0.2])  # intercept, then beta: every coefficient active
    value, grad, hess = solver.compiled.value_gradient_hessian(x)
    restricted = grad + float(solver._weight()) * np.where(solver._penalized, np.sign(x), 0.0)
    newton, _ = solver._newton_step(restricted, hess)
    active = np.ones(4, dtype=bool)
    step = 10.0 * newton
    length = solver._line_search(x, value, active, step, restricted @ step, 1.0)
    assert 0.0 < length < 1.0
    assert solver.objective(x + length * step) < solver.objective(x)
    assert solver.objective(x + step) > solver.objective(x)  # the full step was an ascent
    assert solver._line_search(x, value, active, -step, restricted @ -step, 1.0) == 0.0


def test_lasso_path_alphas_are_decreasing_and_include_the_extra_points(diabetes):
    alphas = sparse.lasso_path_alphas(
        diabetes.X, diabetes.y, n_path=5, decades=3.0, extra=(0.0123,)
    )
    assert np.all(np.diff(alphas) < 0) and 0.0123 in alphas
    assert alphas[0] > alpha_max(diabetes)  # the path starts with an all-zero fit
    assert alphas[-1] == pytest.approx(alpha_max(diabetes) * 1e-3, rel=1e-12)  # 3 decades below
    assert len(alphas) == 5 + 1


def test_near_zero_threshold_is_a_fraction_of_each_standard_error_in_an_orthogonal_design(rng):
    """With orthogonal centred columns, the least-squares SE of coefficient j is sigma / ||x_j - mean||."""
    # Orthonormal columns orthogonal to the constant one: centred already.
    q, _ = np.linalg.qr(np.column_stack([np.ones(40), rng.standard_normal((40, 3))]))
    X = 5.0 + q[:, 1:] @ np.diag([2.0, 4.0, 0.5])
    Xc = X - X.mean(axis=0)
    gram = Xc.T @ Xc
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-12)  # still orthogonal
    standard_errors = 1.5 * np.sqrt(np.diag(np.linalg.inv(gram)))
    threshold = sparse.near_zero_threshold(X, 1.5, 0.1)
    np.testing.assert_allclose(threshold, 0.1 * standard_errors, rtol=1e-12)  # rounding: 2e-16


@pytest.mark.extended  # two numba compilations: 92 s on the shared two-core machine
def test_laplace_posteriors_share_one_compiled_model_with_the_draws_of_one_built_per_alpha(rng):
    """The prior scale is pm.Data: sampling the model compiled at the first alpha with the second alpha's
    scale gives, seed for seed, the draws of a model built at the second alpha (what lets an experiment
    reproduce one point of another's path)."""
    ds = sparse.sparse_truth(rng=rng, n_samples=30, n_features=3, n_nonzero=1)
    alphas, seeds, sampling = (0.3, 0.05), (12, 12), {"draws": 50, "tune": 50, "chains": 1}
    posteriors = sparse.laplace_posteriors(ds, alphas, seeds, **sampling)
    assert list(posteriors) == list(alphas)
    alone = sparse.laplace_posteriors(ds, alphas[1:], seeds[1:], **sampling)[alphas[1]]
    np.testing.assert_array_equal(
        posterior_coefficients(posteriors[alphas[1]]), posterior_coefficients(alone)
    )
    # ... and not those at the first alpha with the same seed: the second scale did reach the sampler.
    assert not np.array_equal(
        posterior_coefficients(posteriors[alphas[0]]), posterior_coefficients(alone)
    )
