import numpy as np
import pymc as pm
import pytest
from sklearn.linear_model import Ridge

from models.diagnostics import convergence, mean_z_scores, relative_error, sd_ratio
from models.exact import linear_posterior
from models.fit import (
    COMPILE_MODE,
    CompiledDensity,
    PreciseMAP,
    QuadraticMAP,
    coefficients,
    compile_nuts,
    map_default,
    posterior_coefficients,
    sample_nuts,
)
from models.linear import linear_regression

ALPHA_PATH = np.logspace(-4, 4, 9)


def ridge_coef(ds, alpha):
    ridge = Ridge(alpha=alpha, solver="svd", fit_intercept=ds.fit_intercept)
    ridge.fit(ds.X, ds.y, sample_weight=ds.sample_weight)
    return np.concatenate([[ridge.intercept_], ridge.coef_]) if ds.fit_intercept else ridge.coef_


def twin(ds, alpha, noise):
    return linear_regression(
        ds.X,
        ds.y,
        ridge_alpha=alpha,
        noise_sigma=ds.noise_sigma if noise == "known" else None,
        sample_weight=ds.sample_weight,
        fit_intercept=ds.fit_intercept,
    )


@pytest.mark.parametrize(
    "design", ["diabetes", "collinear", "wide", "badly_scaled", "weighted", "no_intercept"]
)
@pytest.mark.parametrize("noise", ["known", "unknown"])
def test_precise_map_matches_ridge_across_alpha_path(diabetes, designs, design, noise):
    ds = diabetes if design == "diabetes" else designs[design]
    model = twin(ds, ALPHA_PATH[0], noise)
    precise_map = PreciseMAP(model)  # compiled once for the whole path
    for alpha in ALPHA_PATH:
        pm.set_data({"ridge_alpha": alpha}, model=model)
        # Newton to machine precision vs Ridge's SVD: the worst of the 108 fits (badly_scaled has a
        # condition number ~1e6) measured 2.3e-12, so 1e-8 (the target) leaves room.
        assert relative_error(coefficients(precise_map()), ridge_coef(ds, alpha)) <= 1e-8, alpha


def test_flat_prior_map_is_least_squares(diabetes):
    model = twin(diabetes, 0.0, "known")
    assert "ridge_alpha" not in model.named_vars
    # Least squares on both sides on diabetes (cond(X^T X) ~ 500 after centering): measured 2e-15.
    assert relative_error(coefficients(PreciseMAP(model)()), ridge_coef(diabetes, 0.0)) <= 1e-10


def test_full_prior_covariance_map_is_ridge_on_whitened_features(diabetes, rng):
    p = diabetes.X.shape[1]
    basis = rng.standard_normal((p, p))
    prior_cov = basis @ basis.T / p + np.eye(p)
    model = linear_regression(
        diabetes.X,
        diabetes.y,
        ridge_alpha=0.5,
        noise_sigma=diabetes.noise_sigma,
        relative_prior_cov=prior_cov,
    )
    L = np.linalg.cholesky(prior_cov)
    ridge = Ridge(alpha=0.5, solver="svd").fit(diabetes.X @ L, diabetes.y)
    reference = np.concatenate([[ridge.intercept_], L @ ridge.coef_])
    # Exact linear algebra on both sides, as above: measured 1e-15.
    assert relative_error(coefficients(PreciseMAP(model)()), reference) <= 1e-8


def test_default_find_map_is_close_but_not_exact(diabetes):
    """PyMC's default L-BFGS-B stops early: near Ridge, not at it (the pitfall this suite reports)."""
    error = relative_error(
        coefficients(map_default(twin(diabetes, 0.1, "known"))), ridge_coef(diabetes, 0.1)
    )
    # Measured 2.7e-5: far from both rounding level (PreciseMAP's) and a wrong answer.
    assert 1e-12 < error < 1e-3


def test_set_data_refit_equals_rebuilt_model(diabetes):
    model = twin(diabetes, 1.0, "unknown")
    precise_map = PreciseMAP(model)
    pm.set_data({"ridge_alpha": 0.01}, model=model)
    rebuilt = PreciseMAP(twin(diabetes, 0.01, "unknown"))()
    # The same compiled Newton iterations on the same numbers: measured bitwise equal.
    np.testing.assert_allclose(coefficients(precise_map()), coefficients(rebuilt), rtol=1e-12)


def test_unknown_noise_map_has_the_joint_mode_of_sigma(diabetes):
    """At the joint mode, sigma**2 = (rate0 + S/2) / (shape0 + (n + p)/2 + 1): the flat intercept is not
    integrated out, and the p coefficients' prior scales with sigma (Jeffreys' prior: shape0 = rate0 = 0)."""
    values = PreciseMAP(twin(diabetes, 1.0, "unknown"))()
    post = linear_posterior(diabetes.X, diabetes.y, ridge_alpha=1.0)
    n, p = diabetes.X.shape
    shape_joint = (n + p) / 2
    # Newton to machine precision vs the closed form: rounding only.
    assert values["sigma_squared"] == pytest.approx(post.noise_rate / (shape_joint + 1), rel=1e-10)


@pytest.mark.parametrize("noise_prior", [(0.0, 0.0), (2.5, 3.0)])
def test_noise_prior_density_is_the_stated_inverse_gamma_kernel(diabetes, noise_prior):
    """The model's log density is the likelihood, the Normal prior and ``-(a + 1) log s2 - b / s2``
    (Jeffreys' ``-log s2`` at a = b = 0), up to the inverse gamma's constant; a point of the proper prior
    reached through ``pm.set_data`` gives the same as a model built with it."""
    import scipy.stats

    X, y = diabetes.X, diabetes.y
    a, b = noise_prior
    point = {"intercept": np.array(150.0), "beta": np.linspace(-5, 5, X.shape[1]), "s2": 2900.0}
    sigma = np.sqrt(point["s2"])
    expected = (
        scipy.stats.norm.logpdf(y, point["intercept"] + X @ point["beta"], sigma).sum()
        + scipy.stats.norm.logpdf(point["beta"], 0.0, sigma / np.sqrt(0.5)).sum()
        - (a + 1) * np.log(point["s2"])
        - b / point["s2"]
    )
    values = {k: point[k] for k in ("intercept", "beta")} | {
        "sigma_squared_log__": np.log(point["s2"])
    }
    built = linear_regression(X, y, ridge_alpha=0.5, noise_prior=noise_prior)
    switched = linear_regression(X, y, ridge_alpha=0.5)
    with switched:
        pm.set_data({"noise_shape": a, "noise_rate": b})
    for model in (built, switched):
        logp = model.compile_logp(jacobian=False)(values)
        np.testing.assert_allclose(logp, expected, rtol=1e-12)  # the same sums in another order


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["known", "unknown"])
def test_nuts_matches_exact_posterior_in_mcse_units(diabetes, noise):
    model = twin(diabetes, 0.01, noise)
    compiled = compile_nuts(model)
    for seed, alpha in enumerate([0.01, 1.0]):
        idata = sample_nuts(compiled, seed=seed, draws=2000, ridge_alpha=np.asarray(alpha))
        exact = linear_posterior(
            diabetes.X,
            diabetes.y,
            ridge_alpha=alpha,
            noise_sigma=diabetes.noise_sigma if noise == "known" else None,
        )
        draws = posterior_coefficients(idata)
        # 4 MCSE over 11 coefficients: fails by chance about once in 1,400 runs (seeded, so reproducible).
        assert mean_z_scores(draws, exact.mean).max() < 4.0
        assert (
            np.abs(sd_ratio(draws, exact.sd) - 1.0).max() < 0.10
        )  # SD estimate from ESS > 1000: ~2% noise
        assert not convergence(idata).failures()


@pytest.mark.parametrize("noise", ["known", "unknown"])
@pytest.mark.parametrize("design", ["weighted", "no_intercept"])
def test_sufficient_statistics_give_the_same_log_posterior(designs, rng, noise, design):
    """Row-wise and sufficient-statistics twins: same log-density (up to rounding) at random points."""
    ds = designs[design]
    kwargs = dict(
        ridge_alpha=0.5,
        noise_sigma=1.3 if noise == "known" else None,
        sample_weight=ds.sample_weight,
        fit_intercept=ds.fit_intercept,
    )
    rows = linear_regression(ds.X, ds.y, **kwargs)
    suffstat = linear_regression(ds.X, ds.y, likelihood="suffstat", **kwargs)
    logp_rows, logp_suffstat = rows.compile_logp(), suffstat.compile_logp()
    for _ in range(3):
        point = {
            name: value + rng.normal(0.0, 0.3, size=np.shape(value))
            for name, value in rows.initial_point().items()
        }
        # Expanding the quadratic form costs digits relative to y^T W y (~1e3 here): rtol 1e-9.
        assert logp_suffstat(point) == pytest.approx(logp_rows(point), rel=1e-9)
    a = coefficients(PreciseMAP(rows)())
    b = coefficients(PreciseMAP(suffstat)())
    assert relative_error(b, a) <= 1e-10  # two Newton solves of the same quadratic: measured 7e-16


def test_precision_is_the_exact_posterior_precision_in_the_order_asked(designs):
    """Known noise: the negative Hessian is X^T W X / sigma^2 plus the prior precision, for any order."""
    ds = designs["weighted"]
    model = linear_regression(
        ds.X, ds.y, ridge_alpha=2.0, noise_sigma=1.3, sample_weight=ds.sample_weight
    )
    precise_map = PreciseMAP(model)
    values = precise_map()
    design = np.column_stack([np.ones(len(ds.y)), ds.X])
    expected = design.T @ (ds.sample_weight[:, None] * design) / 1.3**2
    expected[1:, 1:] += np.eye(ds.X.shape[1]) * 2.0 / 1.3**2
    found = precise_map.precision(values, ["intercept", "beta"])
    np.testing.assert_allclose(found, expected, rtol=1e-10)  # same sums, other order
    swapped = precise_map.precision(values, ["beta", "intercept"])
    # As above, reordered (measured 1.4e-12).
    np.testing.assert_allclose(swapped[-1, -1], expected[0, 0], rtol=1e-10)
    np.testing.assert_allclose(swapped[:-1, :-1], expected[1:, 1:], rtol=1e-10)


@pytest.mark.parametrize("noise", ["known", "unknown"])
def test_quadratic_map_is_one_newton_step_to_ridge(designs, noise):
    """Weighted design: the Newton step from the exact precision at the initial point (sigma**2 = 1 there for
    unknown noise) is Ridge; a precision off by a factor 2 leaves a gradient that the result reports."""
    ds = designs["weighted"]
    model = twin(ds, 0.5, noise)
    quadratic_map = QuadraticMAP(model, ["intercept", "beta"])
    noise_variance = ds.noise_sigma**2 if noise == "known" else 1.0
    design = np.column_stack([np.ones(len(ds.y)), ds.X])
    precision = design.T @ (ds.sample_weight[:, None] * design)
    precision[1:, 1:] += 0.5 * np.eye(ds.X.shape[1])
    precision /= noise_variance
    found = quadratic_map(precision)
    # Normal equations vs scikit-learn's SVD solver on a well-conditioned design.
    assert relative_error(coefficients(found), ridge_coef(ds, 0.5)) <= 1e-10
    # Rounding of a gradient made of terms of size |precision| * |coefficients|.
    assert found["_grad_norm"] <= 1e-10 * np.linalg.norm(precision)
    wrong = quadratic_map(2.0 * precision)
    assert wrong["_grad_norm"] > 1e-3 * np.linalg.norm(precision)


def test_compiled_density_is_the_models_log_density_on_the_joined_vector(diabetes):
    """Unknown noise: ``sigma_squared`` is a free variable on the log scale, so the joined vector holds its
    transformed value. Value, gradient and Hessian are PyMC's own (no Jacobian) at the same point; the named
    values map it back."""
    model = twin(diabetes, 1.0, "unknown")
    compiled = CompiledDensity(model)
    point = {
        name: np.full(np.shape(v), 0.1 * (i + 1))
        for i, (name, v) in enumerate(compiled.initial_point.items())
    }
    x = compiled.ravel(point)
    assert x.size == compiled.size == 1 + diabetes.X.shape[1] + 1
    for name, value in compiled.unravel(x).items():
        np.testing.assert_array_equal(value, point[name])  # the same numbers put back: exact
    order = ["beta", "intercept"]
    np.testing.assert_array_equal(
        x[compiled.index(order)], np.concatenate([np.ravel(point[n]) for n in order])
    )
    reference = model.compile_fn(
        [
            model.logp(jacobian=False),
            model.dlogp(jacobian=False),
            model.d2logp(jacobian=False, negate_output=False),
        ],
        mode=COMPILE_MODE,
    )(point)
    # The same graphs compiled apart (other rewrites may order the sums otherwise): rounding only.
    for found, expected in zip(
        [compiled.value(x), compiled.gradient(x), *compiled.value_gradient_hessian(x)],
        [*reference[:2], *reference],
        strict=True,
    ):
        np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())
    values = compiled.named_values(x)
    assert values["sigma_squared"] == pytest.approx(np.exp(point["sigma_squared_log__"]), rel=1e-15)
    np.testing.assert_array_equal(values["beta"], point["beta"])


def test_each_fit_compiles_only_the_pieces_it_uses(designs):
    """QuadraticMAP must not pay for the p x p Hessian; PreciseMAP compiles its two functions once, and the
    Laplace approximation reuses them (compiled pieces are kept on the CompiledDensity as attributes)."""
    from models.approximations import Laplace

    pieces = {"value", "gradient", "value_gradient_hessian", "named_values"}
    model = twin(designs["weighted"], 0.5, "known")
    quadratic_map = QuadraticMAP(model, ["intercept", "beta"])
    assert pieces & set(vars(quadratic_map.compiled)) == {"gradient"}
    precise_map = PreciseMAP(model)
    compiled = {
        piece: vars(precise_map.compiled)[piece]
        for piece in pieces & set(vars(precise_map.compiled))
    }
    assert set(compiled) == {"value_gradient_hessian", "named_values"}
    Laplace(model, precise_map=precise_map)()
    for piece, function in compiled.items():
        assert vars(precise_map.compiled)[piece] is function
    assert pieces & set(vars(precise_map.compiled)) == set(compiled)
