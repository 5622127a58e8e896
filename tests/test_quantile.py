"""The QuantileRegressor twin (models.quantile): its MAP, certificate, density, prediction and refusals."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.stats
import statsmodels.api as sm
from sklearn.linear_model import QuantileRegressor
from statsmodels.regression.quantile_regression import QuantReg

from experiments import twin as twin_cli
from models import quantile
from models.bayesian_twin import BayesianTwin
from models.data import DataError
from models.diagnostics import relative_error
from models.fit import coefficients
from models.registry import Outcome
from models.twin import MAP_COMPILE_MODE, fit_twin

QUANTILES = (0.1, 0.5, 0.9)


def twin_map(X, y, *, q, alpha, sample_weight=None, fit_intercept=True) -> np.ndarray:
    """The twin's MAP (intercept first), solved from the PyMC model's own data."""
    model = quantile.quantile_regression(
        X,
        y,
        quantile=q,
        quantile_alpha=alpha,
        sample_weight=sample_weight,
        fit_intercept=fit_intercept,
    )
    return coefficients(quantile.LinearProgramMAP(model)())


def estimator_coef(fitted, fit_intercept=True) -> np.ndarray:
    return np.concatenate([[fitted.intercept_], fitted.coef_]) if fit_intercept else fitted.coef_


@pytest.mark.parametrize("q", QUANTILES)
@pytest.mark.parametrize(
    "alpha, weighted, fit_intercept",
    [(0.0, False, True), (1e-3, False, True), (1e-3, True, True), (0.0, True, False)],
    ids=["alpha0", "alpha1e-3", "weighted", "weighted_no_intercept"],
)
def test_map_is_quantile_regressor_and_certified(diabetes, rng, q, alpha, weighted, fit_intercept):
    """MAP = QuantileRegressor to 1e-6 (relative) where the certificate proves the minimizer unique (every
    case here; measured 0 to 2e-14), else equal objectives; the NumPy subgradient conditions hold."""
    X, y = diabetes.X, diabetes.y
    weights = rng.gamma(2.0, 0.5, len(y)) if weighted else None
    fitted = QuantileRegressor(quantile=q, alpha=alpha, fit_intercept=fit_intercept)
    expected = estimator_coef(fitted.fit(X, y, sample_weight=weights), fit_intercept)
    coef = twin_map(X, y, q=q, alpha=alpha, sample_weight=weights, fit_intercept=fit_intercept)
    penalty = {"quantile": q, "quantile_alpha": alpha, "fit_intercept": fit_intercept}
    optimality = quantile.quantile_optimality(coef, X, y, weights, **penalty)
    assert optimality.violation <= 1e-9  # measured 1e-17 to 1e-15: rounding of sums of n terms
    if optimality.unique:
        assert relative_error(coef, expected) <= 1e-6  # both exact vertices of the same program
    objective = [quantile.quantile_objective(c, X, y, weights, **penalty) for c in (coef, expected)]
    assert objective[0] == pytest.approx(objective[1], rel=1e-12)  # the same vertex's rounding
    if alpha > 0:
        assert np.any(coef[int(fit_intercept) :] == 0.0)  # exact zeros from the simplex vertex


def test_non_unique_minimizer_is_told_and_compared_in_objective():
    """The median of 1, 2, 3, 4 is any number in [2, 3]: two minimizers both pass the certificate, which does
    not claim uniqueness, with equal objectives; the MAP solver reports a preferred point (the estimator's)
    when it is one of them, and its own vertex when the preferred point is worse."""
    X, y = np.array([[1.0], [-1.0], [2.0], [-2.0]]), np.array([1.0, 2.0, 3.0, 4.0])
    penalty = {"quantile": 0.5, "quantile_alpha": 10.0, "fit_intercept": True}  # beta at 0
    for intercept in (2.2, 2.5):
        optimality = quantile.quantile_optimality(np.array([intercept, 0.0]), X, y, None, **penalty)
        assert optimality.violation <= 1e-15 and not optimality.unique
    objectives = [
        quantile.quantile_objective(np.array([b0, 0.0]), X, y, None, **penalty) for b0 in (2.2, 2.5)
    ]
    assert objectives[0] == pytest.approx(objectives[1], rel=1e-15)
    solver = quantile.LinearProgramMAP(
        quantile.quantile_regression(X, y, quantile=0.5, quantile_alpha=10.0)
    )
    vertex = solver()["_vertex"]
    assert (
        vertex[0] in (2.0, 3.0) and vertex[1] == 0.0
    )  # a simplex vertex: an end of the flat segment
    assert coefficients(solver(prefer=[2.5, 0.0])) == pytest.approx([2.5, 0.0], abs=0)
    np.testing.assert_array_equal(coefficients(solver(prefer=[3.5, 0.0])), vertex)


@pytest.mark.parametrize("q", QUANTILES)
@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_certificate_fails_at_a_perturbed_point(diabetes, q, alpha):
    """Moving one coefficient of the MAP by 1e-6 of the largest one breaks the subgradient conditions
    (interpolated rows leave zero; a zero coefficient takes a sign), by orders of magnitude over 1e-9."""
    X, y = diabetes.X, diabetes.y
    coef = twin_map(X, y, q=q, alpha=alpha)
    penalty = {"quantile": q, "quantile_alpha": alpha, "fit_intercept": True}
    for j in (
        1,
        int(np.argmin(np.abs(coef[1:]))) + 1,
    ):  # a feature, and the smallest (0 at alpha > 0)
        moved = coef.copy()
        moved[j] += 1e-6 * np.abs(coef).max()
        assert quantile.quantile_optimality(moved, X, y, None, **penalty).violation > 1e-4


@pytest.mark.parametrize("q", QUANTILES)
def test_map_matches_statsmodels_quantreg_on_engel(q):
    """statsmodels' QuantReg (iteratively reweighted least squares: an independent algorithm) on Engel's food
    expenditure data: 1e-6 relative (measured 5e-9 to 2e-8, where IRLS stops), and the MAP's objective is
    no worse than QuantReg's."""
    engel = sm.datasets.engel.load_pandas().data
    X, y = engel[["income"]].to_numpy(float), engel["foodexp"].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Convergence cycle detected": IRLS at its rounding floor
        params = np.asarray(QuantReg(y, sm.add_constant(X)).fit(q=q, p_tol=1e-12).params)
    coef = twin_map(X, y, q=q, alpha=0.0)
    assert relative_error(coef, params) <= 1e-6
    penalty = {"quantile": q, "quantile_alpha": 0.0, "fit_intercept": True}
    at_map, at_statsmodels = (
        quantile.quantile_objective(c, X, y, None, **penalty) for c in (coef, params)
    )
    assert at_map <= at_statsmodels * (1 + 1e-12)  # 1e-12: rounding of the sums


@pytest.mark.parametrize("alpha", [0.0, 0.02])
def test_twin_log_density_is_the_asymmetric_laplace_posterior(rng, alpha):
    """The PyMC model's log density at random points equals the formula of the module docstring in NumPy:
    ``sum_i log(w_i q (1 - q) / sigma) - sum_i w_i rho_q(r_i) / sigma`` plus the Laplace prior with scale
    ``sigma / (n alpha)`` (weights rescaled to sum to n)."""
    n, p, q = 30, 3, 0.3
    X, y = rng.standard_normal((n, p)), rng.standard_normal(n)
    weights = rng.gamma(2.0, 0.5, n)
    model = quantile.quantile_regression(
        X, y, quantile=q, quantile_alpha=alpha, sample_weight=weights
    )
    logp = model.compile_logp(
        jacobian=False, mode=MAP_COMPILE_MODE
    )  # Python code: no C compilation
    w = weights * n / weights.sum()
    for _ in range(3):
        beta, intercept, log_sigma = rng.standard_normal(p), rng.standard_normal(), rng.normal()
        sigma = np.exp(log_sigma)
        r = y - intercept - X @ beta
        expected = np.sum(
            np.log(w * q * (1 - q) / sigma) - w * np.where(r >= 0, q * r, (q - 1) * r) / sigma
        )
        if alpha > 0:
            b = sigma / (n * alpha)
            expected += np.sum(-np.log(2 * b) - np.abs(beta) / b)
        point = {"beta": beta, "intercept": intercept, "log_sigma": log_sigma}
        assert logp(point) == pytest.approx(expected, rel=1e-12)  # the same sums in another order


def test_draws_and_predictive_quantile(rng):
    """Draws put a share q below the location (4 binomial SEs); the predictive quantile of one draw is its
    location, and of a mixture the point where the mean CDF is q (to the bisection's rounding); the outcome's
    parts pickle (BayesianTwin pickles its fit)."""
    q, parts = 0.2, quantile.outcome_parts(0.2)
    location, noise = np.full((1, 200_000), 3.0), np.array([[2.0]])
    share = np.mean(parts["draw"](rng, location, noise) <= 3.0)
    assert abs(share - q) < 4 * np.sqrt(q * (1 - q) / location.size)
    assert parts["point"](np.array([[3.0, -1.0]]), noise)[0] == pytest.approx(3.0, abs=1e-12)
    locations, noises = rng.normal(size=(50, 4)), rng.gamma(2.0, 1.0, (50, 1))
    point = parts["point"](locations, noises)
    assert quantile._cdf(point, locations, noises, q).mean(axis=0) == pytest.approx(q, abs=1e-12)
    outcome = pickle.loads(pickle.dumps(Outcome(np.asarray, **parts)))
    assert outcome.point(locations, noises) == pytest.approx(point)  # a fit holding it pickles


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda X, y: fit_twin(QuantileRegressor(quantile=1.5), X, y), "quantile"),
        (lambda X, y: quantile.check_quantile(X, 0.0, 1.0, True), "quantile must be in"),
        (lambda X, y: quantile.check_quantile(X, 0.5, -1.0, True), "alpha must be"),
        (
            lambda X, y: fit_twin(QuantileRegressor(alpha=0.0), np.column_stack([X, 2 * X]), y),
            "linearly independent",
        ),
        (lambda X, y: fit_twin(QuantileRegressor(alpha=0.0), X[:4], y[:4]), "rows"),
        (
            lambda X, y: twin_cli.make_estimator(twin_cli.Config(estimator="ridge", quantile=0.5)),
            "--quantile is for quantile",
        ),
        (
            lambda X, y: twin_cli.make_estimator(
                twin_cli.Config(estimator="quantile", quantile=1.0)
            ),
            "quantile must be in",
        ),
    ],
    ids=[
        "quantile_1.5",
        "quantile_0",
        "negative_alpha",
        "collinear_flat",
        "too_few_rows",
        "cli_not_quantile",
        "cli_quantile_1",
    ],
)
def test_bad_settings_fail_with_one_line(rng, make, message):
    X, y = rng.standard_normal((20, 2)), rng.standard_normal(20)
    with pytest.raises(DataError, match=message) as error:
        make(X, y)
    assert "\n" not in str(error.value)


def test_command_makes_the_quantile_regressor():
    config = twin_cli.Config(estimator="quantile", alpha=0.01, quantile=0.9)
    estimator = twin_cli.make_estimator(config)
    assert isinstance(estimator, QuantileRegressor)
    assert (estimator.quantile, estimator.alpha) == (0.9, 0.01)


def log_marginal_posterior(draws, X, y, *, q, alpha) -> np.ndarray:
    """``-(n + m) log(n O)`` at each draw (intercept first): the posterior with sigma integrated out."""
    n, p = X.shape
    out = []
    for chunk in np.array_split(draws, max(1, len(draws) // 1000)):
        r = y - chunk[:, :1] - chunk[:, 1:] @ X.T
        loss = np.where(r >= 0, q * r, (q - 1) * r).sum(axis=1)
        total = loss + n * alpha * np.abs(chunk[:, 1:]).sum(axis=1)
        out.append(-(n + (p if alpha > 0 else 0)) * np.log(total))
    return np.concatenate(out)


@pytest.mark.extended  # about 25 s each (most of it nutpie's compilation)
@pytest.mark.parametrize("q", QUANTILES)
def test_nuts_posterior_on_diabetes_matches_importance_sampling(diabetes, q):
    """BayesianTwin(QuantileRegressor) on diabetes: the MAP is the estimator's, NUTS's checks pass, and its
    means and SDs agree with self-normalized importance sampling of the marginal posterior written in NumPy
    (a Student-t proposal, 100,000 draws); the point prediction is the predictive draws' q-quantile."""
    X, y, alpha = diabetes.X, diabetes.y, 1e-3
    twin = BayesianTwin(QuantileRegressor(quantile=q, alpha=alpha), draws=2000, seed=5).fit(X, y)
    failed = {k: v for k, v in twin.twin_.checks.items() if not v["passed"]}
    assert not failed
    np.testing.assert_allclose(twin.coef_, twin.estimator_.coef_, rtol=1e-6, atol=1e-9)
    draws = twin.twin_.draws
    proposal = scipy.stats.multivariate_t(draws.mean(0), 1.5**2 * np.cov(draws.T), df=5)
    sample = proposal.rvs(100_000, random_state=np.random.default_rng(0))
    log_weights = log_marginal_posterior(sample, X, y, q=q, alpha=alpha) - proposal.logpdf(sample)
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    assert (
        1.0 / np.sum(weights**2) > 5_000
    )  # measured about 12,700: the proposal covers the posterior
    mean = weights @ sample
    sd = np.sqrt(weights @ (sample - mean) ** 2)
    mcse_is = np.sqrt(weights**2 @ (sample - mean) ** 2)
    import arviz_stats as azs

    mcse_nuts = np.asarray(azs.mcse(draws.reshape(2, -1, draws.shape[1]), method="mean"))
    z = np.abs(draws.mean(0) - mean) / np.sqrt(mcse_nuts**2 + mcse_is**2)
    assert z.max() < 4.0  # 4 MCSE over 11 coefficients: fails by chance about once in 1,400 runs
    assert (
        np.abs(draws.std(0, ddof=1) / sd - 1.0).max() < 0.10
    )  # 2 x 2,000 draws: at 2 x 1,000 one SD ratio read 1.09
    rows = X[:5]
    predictive = twin.sample_posterior_predictive(rows, n=40_000, seed=1)
    share = np.mean(predictive <= twin.predict(rows), axis=0)
    assert np.abs(share - q).max() < 4 * np.sqrt(q * (1 - q) / 40_000)  # 4 binomial SEs
