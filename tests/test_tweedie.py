"""The GammaRegressor and TweedieRegressor twins: densities, the MAP against scikit-learn, the posterior."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.special
import scipy.stats
import statsmodels.api as sm
from glum._distribution import TweedieDistribution
from sklearn.datasets import load_diabetes
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor

from models import registry
from models.bayesian_twin import BayesianTwin
from models.data import DataError
from models.diagnostics import relative_error
from models.fit import PreciseMAP, coefficients
from models.tweedie import (
    log_density,
    series_log_a,
    simulated_insurance,
    tweedie_logp,
    tweedie_reference,
    tweedie_regression,
    validate_tweedie,
)
from models.twin import MAP_COMPILE_MODE, fit_twin

SERIES_POWERS = (1.1, 1.5, 1.9)
# (mu, phi) from a small mean with little dispersion to an insurance-like scale (mean 1,000)
MEAN_DISPERSION = ((1.0, 1.0), (0.1, 0.3), (30.0, 5.0), (1000.0, 200.0))


@pytest.fixture(scope="module")
def diabetes_standardized():
    X, y = load_diabetes(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


@pytest.fixture(scope="module")
def insurance():
    X, y, _ = simulated_insurance(np.random.default_rng(1), n=300)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def poisson_gamma_mixture(y, mu, phi, power):
    """The compound Poisson-Gamma density by its definition: a Poisson(lambda) number of Gamma(a, s) claims,
    summed over the number of claims (scipy.stats), independently of the Dunn-Smyth series."""
    rate = mu ** (2 - power) / (phi * (2 - power))
    shape, scale = (2 - power) / (power - 1), phi * (power - 1) * mu ** (power - 1)
    claims = np.arange(1, 5000)
    terms = scipy.stats.poisson.logpmf(claims, rate) + scipy.stats.gamma.logpdf(
        y, claims * shape, scale=scale
    )
    return scipy.special.logsumexp(terms)


@pytest.mark.parametrize("power", SERIES_POWERS)
def test_series_density_matches_poisson_gamma_definition(power):
    for mu, phi in MEAN_DISPERSION:
        for y in (0.01 * mu, 0.5 * mu, 3.0 * mu):
            ours = log_density(np.array([y]), mu, phi, power)[0]
            # 1e-12: two double-precision sums of the same positive terms (measured <= 8e-14)
            assert abs(ours - poisson_gamma_mixture(y, mu, phi, power)) < 1e-12


@pytest.mark.parametrize("power", SERIES_POWERS)
def test_series_density_integrates_to_one_with_mean_mu(power):
    """The point mass at zero plus the integral of the density over y > 0 is 1, and the mean is mu.

    Gauss-Legendre quadrature (20 nodes on each of 400 pieces) in ``s = log y``, where the density's
    ``y**(a - 1)`` singularity at 0 (``a = (2 - p) / (p - 1)``, the claims' Gamma shape) becomes a decay
    ``exp(a s)``: from ``40 / a + 30`` below ``log mu`` to 60 SDs and 60 claim sizes above the mean.
    """
    nodes, node_weights = np.polynomial.legendre.leggauss(20)
    for mu, phi in MEAN_DISPERSION:
        claim_shape, claim_scale = (2 - power) / (power - 1), phi * (power - 1) * mu ** (power - 1)
        top = mu + 60.0 * (np.sqrt(phi * mu**power) + (claim_shape + 1.0) * claim_scale)
        edges = np.linspace(np.log(mu) - 40.0 / claim_shape - 30.0, np.log(top), 401)
        half = np.diff(edges)[:, None] / 2
        s = ((edges[:-1] + edges[1:])[:, None] / 2 + half * nodes).ravel()
        ds = (half * node_weights).ravel()
        y = np.exp(s)
        density_dy = np.exp(log_density(y, mu, phi, power)) * y * ds
        at_zero = np.exp(log_density(0.0, mu, phi, power))
        # a smooth, decaying integrand on short pieces: quadrature error far below 1e-8 (measured <= 3.4e-14)
        assert abs(at_zero + density_dy.sum() - 1.0) < 1e-8
        assert abs((y * density_dy).sum() / mu - 1.0) < 1e-8


def test_series_sum_leaves_out_nothing():
    """The window sum equals the sum over every term from j = 1 with ten times as many terms."""
    y, phi = np.array([0.01, 1.0, 50.0, 5000.0]), np.array([0.3, 1.0, 5.0, 200.0])
    for power in SERIES_POWERS:
        wide = series_log_a(y, phi, power, max_terms=20_000)
        np.testing.assert_allclose(series_log_a(y, phi, power), wide, rtol=1e-14, atol=1e-14)


def test_log_likelihood_matches_glum(insurance):
    """glum's Tweedie log-likelihood on the insurance table (exact zeros), every power with a twin.

    At power 1.5 glum's series and ours agree to rounding; at other powers in (1, 2) glum's own series is
    slightly truncated (per row up to 2e-6 from the Poisson-Gamma definition, which ours meets to 1e-13,
    see test_series_density_matches_poisson_gamma_definition), so there the sum is compared at 2e-8.
    """
    _, y = insurance
    mu = np.full(len(y), y.mean())
    for power, rtol in ((0.0, 1e-12), (1.5, 1e-12), (1.2, 2e-8), (1.8, 2e-8)):
        phi = np.mean((y - mu) ** 2 / mu**power)
        ours = log_density(y, mu, phi, power).sum()
        theirs = TweedieDistribution(power).log_likelihood(y, mu, dispersion=phi)
        assert abs(ours - theirs) <= rtol * abs(theirs), power
    positive, mean = y[y > 0], np.full(int((y > 0).sum()), y[y > 0].mean())
    for power in (2.0, 3.0):
        phi = np.mean((positive - mean) ** 2 / mean**power)
        ours = log_density(positive, mean, phi, power).sum()
        theirs = TweedieDistribution(power).log_likelihood(positive, mean, dispersion=phi)
        assert abs(ours - theirs) <= 1e-12 * abs(theirs), power  # closed forms: rounding


def test_exact_densities_match_scipy():
    y, mu, phi = np.array([0.3, 1.0, 7.0]), np.array([1.0, 2.0, 5.0]), 0.4
    expected = {
        0.0: scipy.stats.norm.logpdf(y, mu, np.sqrt(phi)),
        2.0: scipy.stats.gamma.logpdf(y, 1 / phi, scale=phi * mu),
        3.0: scipy.stats.invgauss.logpdf(y, mu * phi, scale=1 / phi),
    }
    for power, reference in expected.items():
        np.testing.assert_allclose(log_density(y, mu, phi, power), reference, rtol=1e-13)


def test_pytensor_density_matches_numpy():
    """The model's density (the series in a window around its largest term) against the NumPy one."""
    value, mu, phi = pt.vector("value"), pt.vector("mu"), pt.scalar("phi")
    y = np.array([0.0, 0.01, 0.7, 3.0, 40.0, 2500.0])
    mu_values = np.array([1.0, 0.2, 1.0, 2.5, 30.0, 900.0])
    for power in (0.0, *SERIES_POWERS, 2.0, 3.0):
        f = pytensor.function([value, mu, phi], tweedie_logp(value, mu, phi, power))
        rows = slice(None) if power < 2 else slice(1, None)  # y = 0 has no density at p >= 2
        for dispersion in (0.3, 4.0, 150.0):
            ours = f(y[rows], mu_values[rows], dispersion)
            expected = log_density(y[rows], mu_values[rows], dispersion, power)
            np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def _map_and_reference(X, y, **setting):
    model = tweedie_regression(X, y, **setting)
    values = PreciseMAP(model, mode=MAP_COMPILE_MODE)()
    return values, tweedie_reference(X, y, **setting)


@pytest.mark.parametrize(
    "setting",
    [
        {"power": 2.0, "link": "log", "tweedie_alpha": 1e-2},
        {"power": 2.0, "link": "identity", "tweedie_alpha": 1e-3},
        {"power": 0.0, "link": "identity", "tweedie_alpha": 1e-2},
        {"power": 0.0, "link": "log", "tweedie_alpha": 1e-2},
        {"power": 3.0, "link": "log", "tweedie_alpha": 1e-2},
    ],
    ids=lambda s: f"p{s['power']:g}-{s['link']}-a{s['tweedie_alpha']:g}",
)
def test_map_matches_tweedie_regressor_on_diabetes(diabetes_standardized, setting):
    X, y = diabetes_standardized
    values, reference = _map_and_reference(X, y, **setting)
    # Newton to the rounding level against newton-cholesky at tol=1e-12 (measured <= 6e-11)
    assert relative_error(coefficients(values), reference) < 1e-6
    assert values["dispersion"] > 0


def test_weighted_map_matches_gamma_regressor(diabetes_standardized):
    """Sample weights multiply the log-density, and their sum is the prior's n, as scikit-learn weighs the
    deviance (``sum_i w_i d_i / (2 sum_i w_i)``)."""
    X, y = diabetes_standardized
    weights = np.random.default_rng(4).gamma(2.0, 0.5, size=len(y))
    setting = {"power": 2.0, "link": "log", "tweedie_alpha": 1e-2, "sample_weight": weights}
    values, reference = _map_and_reference(X, y, **setting)
    assert relative_error(coefficients(values), reference) < 1e-6  # as above


def test_map_in_coefficients_is_sklearn_at_any_dispersion(diabetes_standardized):
    """With the dispersion fixed far from its mode, the mode in the coefficients is still GammaRegressor's."""
    X, y = diabetes_standardized
    setting = {"power": 2.0, "link": "log", "tweedie_alpha": 1e-2}
    reference = tweedie_reference(X, y, **setting)
    for dispersion in (1e-3, 30.0):  # the MAP's is 0.17
        fixed = tweedie_regression(X, y, **setting, dispersion=dispersion)
        values = PreciseMAP(fixed, mode=MAP_COMPILE_MODE)()
        assert "dispersion" not in values
        assert relative_error(coefficients(values), reference) < 1e-6  # as above


def test_map_matches_gamma_glm_of_statsmodels_on_scotland():
    """An independent implementation on real data: statsmodels' Gamma GLM (log link, IRLS) on the Scotland
    referendum table, unpenalized (alpha = 0: the flat-prior twin)."""
    data = sm.datasets.scotland.load_pandas()
    X, y = data.exog.to_numpy(float), data.endog.to_numpy(float)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    family = sm.families.Gamma(link=sm.families.links.Log())
    glm = sm.GLM(y, sm.add_constant(X), family=family).fit(tol=1e-14, maxiter=1000)
    model = tweedie_regression(X, y, power=2.0, link="log", tweedie_alpha=0.0)
    values = PreciseMAP(model, mode=MAP_COMPILE_MODE)()
    # IRLS at tol=1e-14 against Newton: both at the rounding level of a 32-row fit
    assert relative_error(coefficients(values), glm.params) < 1e-8


@pytest.mark.parametrize(
    ("power", "link", "y_change", "message"),
    [
        (0.5, "log", None, r"power 0.5 in \(0, 1\): no distribution"),
        (-1.0, "identity", None, "extreme stable"),
        (2.5, "log", None, "positive stable"),
        (1.0, "identity", None, "Poisson twin has the log link only"),
        (2.0, "log", "zero", "needs y > 0"),
        (3.0, "log", "negative", "needs y > 0"),
        (1.5, "log", "negative", "needs y >= 0"),
        (1.5, "log", "all_zero", "all zero"),
    ],
)
def test_settings_without_a_twin_are_refused_in_one_line(power, link, y_change, message):
    X, y = np.arange(12.0).reshape(6, 2), np.array([0.0, 1.0, 2.0, 0.0, 3.0, 1.0])
    y = {None: y + 1, "zero": y, "negative": y - 1, "all_zero": 0 * y}[y_change]
    with pytest.raises(DataError, match=message) as error:
        validate_tweedie(X, y, power=power, link=link)
    assert "\n" not in str(error.value)


def test_registry_matches_gamma_tweedie_and_poisson():
    assert registry.match(GammaRegressor()).name == "gamma"
    assert registry.match(TweedieRegressor(power=1.5)).name == "tweedie"
    assert registry.match(TweedieRegressor(power=0.0)).name == "tweedie"
    assert registry.match(TweedieRegressor(power=1.0, link="log")).name == "poisson"
    assert registry.match(PoissonRegressor()).name == "poisson"


def test_fit_twin_refuses_tweedie_power_in_zero_one_in_one_line():
    X = pd.DataFrame({"a": np.arange(8.0), "b": np.arange(8.0) ** 2})
    with pytest.raises(DataError, match=r"in \(0, 1\)") as error:
        fit_twin(TweedieRegressor(power=0.5), X, np.arange(1.0, 9.0))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "power",
    [
        pytest.param(1.2, marks=pytest.mark.extended),
        1.5,
        pytest.param(1.8, marks=pytest.mark.extended),
    ],
)
def test_series_map_matches_tweedie_regressor_on_insurance_table(insurance, power):
    """Compound Poisson-Gamma twins (exact zeros in y): 4 s each here once PyTensor's cache is warm (95 s
    cold), so one power runs in the fast suite."""
    X, y = insurance
    assert np.mean(y == 0) > 0.5
    values, reference = _map_and_reference(X, y, power=power, link="log", tweedie_alpha=1e-3)
    assert relative_error(coefficients(values), reference) < 1e-6  # measured <= 2e-16


@pytest.mark.extended
def test_gamma_twin_posterior_on_diabetes_converges():
    """GammaRegressor's twin end to end: MAP checks, then NUTS (2 x 1000 draws) in standardized coordinates.

    Measured: MAP 2.5e-13 from the reference, R-hat 1.003, bulk ESS 2,638, no divergences (compile 125 s)."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    estimator = GammaRegressor(alpha=1e-3, solver="newton-cholesky", tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_twin(estimator, X, y, seed=1, draws=1000, tune=1000)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    assert fit.noise_draws is not None and np.all(fit.noise_draws > 0)
    interval = fit.predict(X.iloc[:5])
    assert np.all(interval["predictive_q5"] < interval["mean"])
    assert np.all(interval["mean"] < interval["predictive_q95"])


@pytest.mark.extended
def test_compound_poisson_twin_as_estimator_converges_and_predicts_zeros():
    """TweedieRegressor(power=1.5) through BayesianTwin on an insurance-like table (two thirds exact zeros).

    Measured with fit_twin on 500 rows: MAP 1.5e-16 from the reference, R-hat 1.006, bulk ESS 2,801, no
    divergences (compile 106 s, NUTS 97 s)."""
    X, y, names = simulated_insurance(np.random.default_rng(1), n=300)
    X = pd.DataFrame(X, columns=list(names))
    estimator = TweedieRegressor(power=1.5, alpha=1e-3, solver="newton-cholesky", tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = BayesianTwin(estimator, draws=1000, seed=2).fit(X, y)
    assert all(check["passed"] for check in twin.twin_.checks.values()), twin.twin_.checks
    new = twin.sample_posterior_predictive(X.iloc[:20], n=2000, seed=3)
    # The model's probability of a zero, exp(-mu**0.5 / (0.5 phi)), averaged over the posterior draws.
    design = np.column_stack([np.ones(20), X.iloc[:20].to_numpy()])
    mu = np.exp(twin.twin_.draws @ design.T)
    zero = np.exp(-np.sqrt(mu) / (0.5 * twin.twin_.noise_draws[:, None] ** 2)).mean()
    # 2,000 draws each sharing one posterior draw over the 20 rows: the share's SD is at most
    # sqrt(0.25 / 2000) = 0.011, so 0.05 is over 4.5 SDs
    assert abs(np.mean(new == 0.0) - zero) < 0.05
    assert 0.4 < zero < 0.9  # about the share of zeros in y (0.67)
    low, high = twin.predict_interval(X.iloc[:20], kind="observation").T
    assert np.all(low == 0.0) and np.all(high > 0.0)


@pytest.mark.parametrize("power, link", [(1.5, "log"), (2.0, "log"), (0.0, "identity")])
def test_the_outcome_pickles_and_draws_the_same_after(power, link):
    """A Tweedie twin's fit holds its outcome (BayesianTwin pickles its fit): the restored outcome gives the
    same means, variances and, from the same generator state, the same draws."""
    outcome = registry.tweedie_outcome(power, link)
    restored = pickle.loads(pickle.dumps(outcome))
    eta, noise = np.linspace(-1.0, 1.0, 7), 0.8
    mean = outcome.mean(eta)
    np.testing.assert_array_equal(restored.mean(eta), mean)
    np.testing.assert_array_equal(restored.variance(mean, noise), noise**2 * np.abs(mean) ** power)
    draws = outcome.draw(np.random.default_rng(3), mean, noise)
    np.testing.assert_array_equal(restored.draw(np.random.default_rng(3), mean, noise), draws)
    # The identity link's nonpositive means draw NaN only where power > 0 needs a positive mean.
    assert np.isnan(draws).any() == (power > 0 and link == "identity")
