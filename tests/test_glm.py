import numpy as np
import pymc as pm
import pytest
import scipy.stats
from scipy.special import digamma, polygamma
from sklearn.linear_model import LogisticRegression

from models import penalties
from models.data import DataError
from models.diagnostics import convergence, mean_z_scores, relative_error, sd_ratio
from models.fit import PreciseMAP, coefficients, compile_nuts, posterior_coefficients, sample_nuts
from models.glm import (
    logistic_posterior_grid,
    logistic_reference,
    logistic_regression,
    poisson_reference,
    poisson_regression,
    validate_glm,
)

C_PATH = np.logspace(-3, 3, 7)
ALPHA_PATH = np.logspace(-4, 1, 6)


@pytest.fixture(scope="module")
def glm_data():
    """A logistic and a count data set sharing one design (n = 120, p = 5), and Gamma(2, 1/2) weights."""
    rng = np.random.default_rng(11)
    n, p = 120, 5
    X = rng.standard_normal((n, p)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    coef = rng.normal(0.0, 0.5, size=p)
    eta = 0.4 + X @ coef
    return {
        "X": X,
        "binary": (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-eta))).astype(float),
        "counts": rng.poisson(np.exp(0.3 * eta)).astype(float),
        "weights": rng.gamma(2.0, 0.5, size=n),
    }


def test_validation_accepts_good_data_and_returns_unit_weights(glm_data):
    X, y, weights = validate_glm(
        glm_data["X"], glm_data["binary"], family="logistic", logistic_C=1.0
    )
    assert X.dtype == float and y.dtype == float
    np.testing.assert_array_equal(weights, np.ones(len(y)))


# Each variant is a new graph: its first Hessian compile took 5-10 s here, so all but one are slow.
@pytest.mark.parametrize(
    ("weighted", "fit_intercept"),
    [
        (False, True),
        pytest.param(True, True, marks=pytest.mark.slow),
        pytest.param(False, False, marks=pytest.mark.slow),
        pytest.param(True, False, marks=pytest.mark.slow),
    ],
)
def test_precise_map_matches_logistic_regression_across_C(glm_data, weighted, fit_intercept):
    X, y = glm_data["X"], glm_data["binary"]
    w = glm_data["weights"] if weighted else None
    model = logistic_regression(X, y, logistic_C=1.0, sample_weight=w, fit_intercept=fit_intercept)
    precise_map = PreciseMAP(model)  # compiled once for the whole path
    for C in C_PATH:
        pm.set_data({"logistic_C": C}, model=model)
        reference = logistic_reference(
            X, y, logistic_C=C, sample_weight=w, fit_intercept=fit_intercept
        )
        # newton-cholesky at tol=1e-12 stops within ~1e-11 of the optimum (measured); 1e-9 leaves room.
        assert relative_error(coefficients(precise_map()), reference) <= 1e-9, C


@pytest.mark.parametrize("weighted", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_precise_map_matches_poisson_regressor_across_alpha(glm_data, weighted):
    X, y = glm_data["X"], glm_data["counts"]
    w = glm_data["weights"] if weighted else None
    model = poisson_regression(X, y, poisson_alpha=1.0, sample_weight=w)
    precise_map = PreciseMAP(model)
    for alpha in ALPHA_PATH:
        pm.set_data({"poisson_alpha": alpha}, model=model)
        reference = poisson_reference(X, y, poisson_alpha=alpha, sample_weight=w)
        assert relative_error(coefficients(precise_map()), reference) <= 1e-9, alpha  # as above


def test_zero_alpha_is_a_flat_prior_whose_map_is_the_unpenalized_fit(glm_data):
    X, y = glm_data["X"], glm_data["counts"]
    model = poisson_regression(X, y, poisson_alpha=0.0)
    assert "poisson_alpha" not in model.named_vars
    reference = poisson_reference(X, y, poisson_alpha=0.0)
    # newton-cholesky at tol=1e-12 as on the paths above: measured 2e-16 here.
    assert relative_error(coefficients(PreciseMAP(model)()), reference) <= 1e-9


def prior_logp(model, beta):
    """The log-density of ``beta`` under the model's prior, with the model's current data."""
    point = {"intercept": 0.0, "beta": beta}
    return model.compile_logp(vars=[model["beta"]], jacobian=False)(point)


def test_builders_use_the_prior_scale_of_the_penalty_dictionary(glm_data, rng):
    X, w = glm_data["X"], glm_data["weights"]
    beta = rng.normal(size=X.shape[1])
    logistic = logistic_regression(X, glm_data["binary"], logistic_C=1.0)
    poisson = poisson_regression(X, glm_data["counts"], poisson_alpha=1.0, sample_weight=w)
    for C in (0.01, 7.0):
        pm.set_data({"logistic_C": C}, model=logistic)
        sigma = penalties.logistic_prior_sigma(logistic_C=C)
        expected = scipy.stats.norm.logpdf(beta, 0.0, sigma).sum()
        assert prior_logp(logistic, beta) == pytest.approx(expected, rel=1e-12)  # same formula
    for alpha in (1e-3, 2.0):
        pm.set_data({"poisson_alpha": alpha}, model=poisson)
        sigma = penalties.poisson_prior_sigma(poisson_alpha=alpha, n_samples=w.sum())
        expected = scipy.stats.norm.logpdf(beta, 0.0, sigma).sum()
        assert prior_logp(poisson, beta) == pytest.approx(expected, rel=1e-12)  # same formula


@pytest.mark.parametrize("family", ["logistic", "poisson"])
def test_integer_weights_equal_replicated_rows(glm_data, family, rng):
    """Weight 2 on a row is the same posterior as that row twice (prior included: n is sum(w))."""
    X = glm_data["X"]
    y = glm_data["binary" if family == "logistic" else "counts"]
    w = rng.integers(1, 4, size=len(y)).astype(float)
    builder = logistic_regression if family == "logistic" else poisson_regression
    penalty = {"logistic_C": 0.5} if family == "logistic" else {"poisson_alpha": 0.05}
    weighted = builder(X, y, **penalty, sample_weight=w)
    replicated = builder(
        np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int)), **penalty
    )
    point = {"intercept": 0.3, "beta": rng.normal(0.0, 0.3, size=X.shape[1])}
    logp_weighted = weighted.compile_logp(jacobian=False)(point)
    logp_replicated = replicated.compile_logp(jacobian=False)(point)
    assert logp_weighted == pytest.approx(logp_replicated, rel=1e-12)  # the same sums, reordered


def test_pointwise_log_likelihood_is_weighted_bernoulli(glm_data, rng):
    """The observed ``y`` keeps a pointwise log-likelihood: ``w_i log p(y_i | theta)``."""
    X, y, w = glm_data["X"], glm_data["binary"], glm_data["weights"]
    point = {"intercept": -0.2, "beta": rng.normal(0.0, 0.3, size=X.shape[1])}
    eta = point["intercept"] + X @ point["beta"]
    plain = scipy.stats.bernoulli.logpmf(y, 1.0 / (1.0 + np.exp(-eta)))
    for weights, expected in [(None, plain), (w, w * plain)]:
        model = logistic_regression(X, y, logistic_C=1.0, sample_weight=weights)
        pointwise = model.compile_fn(model.logp(vars=[model["y"]], sum=False)[0])(point)
        np.testing.assert_allclose(pointwise, expected, rtol=1e-10)  # log1p(exp) vs scipy's log
    # Unweighted, the likelihood is PyMC's own Bernoulli (posterior predictive, LOO work as usual).
    assert type(logistic_regression(X, y, logistic_C=1.0)["y"].owner.op).__name__ == "BernoulliRV"


def test_liblinear_is_not_the_twin_it_penalizes_the_intercept(glm_data):
    """The reason the validation gives is real: liblinear's fit is measurably off the MAP."""
    X, y = glm_data["X"], glm_data["binary"]
    fit = LogisticRegression(C=0.05, solver="liblinear", tol=1e-12, max_iter=10_000).fit(X, y)
    liblinear = np.concatenate([fit.intercept_, fit.coef_.ravel()])
    # Measured 0.47: the penalized intercept moves the fit far beyond any solver tolerance.
    assert relative_error(liblinear, logistic_reference(X, y, logistic_C=0.05)) > 1e-2


BAD_INPUTS = [
    ({"family": "logistic", "y": "three_classes"}, "must be binary 0/1"),
    ({"family": "logistic", "y": "one_class"}, "needs both classes"),
    ({"family": "poisson", "y": "negative"}, "counts must be >= 0"),
    ({"family": "poisson", "y": "zeros"}, "all zero"),
    ({"family": "logistic", "logistic_C": 0.0}, r"^C must be > 0 \(inf: no penalty\), got 0$"),
    ({"family": "logistic", "logistic_C": -1.0}, r"^C must be > 0 \(inf: no penalty\), got -1$"),
    ({"family": "logistic", "logistic_C": np.nan}, r"^C must be > 0 \(inf: no penalty\), got nan$"),
    ({"family": "poisson", "poisson_alpha": -0.1}, "^alpha must be finite and >= 0, got -0.1$"),
    ({"family": "logistic", "solver": "liblinear"}, "penalizes the intercept"),
    ({"family": "logistic", "solver": "sgd"}, "unknown solver"),
    (
        {"family": "logistic", "sample_weight": "negative"},
        "^data: sample weights must be finite, >= 0 and not all zero, got -[0-9.e+-]+ in row 0$",
    ),
    (
        {"family": "logistic", "sample_weight": "short"},
        "^data: sample weights need one value per row",
    ),
    ({"family": "gamma"}, "unknown family"),
]


@pytest.mark.parametrize(("case", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_raises_one_line_data_error(glm_data, case, message):
    n = len(glm_data["binary"])
    targets = {
        "three_classes": np.arange(n) % 3,
        "one_class": np.ones(n),
        "negative": -glm_data["counts"] - 1,
        "zeros": np.zeros(n),
    }
    weights = {"negative": -glm_data["weights"], "short": glm_data["weights"][:-1]}
    case = dict(case)
    y = targets.get(case.pop("y", None), glm_data["binary"])
    if "sample_weight" in case:
        case["sample_weight"] = weights[case["sample_weight"]]
    with pytest.raises(DataError, match=message) as error:
        validate_glm(glm_data["X"], y, **case)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("builder", [logistic_regression, poisson_regression])
def test_builders_reject_bad_penalties(glm_data, builder):
    kwargs = {"logistic_C": -1.0} if builder is logistic_regression else {"poisson_alpha": -1.0}
    y = glm_data["binary"] if builder is logistic_regression else glm_data["counts"]
    with pytest.raises(DataError):
        builder(glm_data["X"], y, **kwargs)


def intercept_only_data(k: int, n: int):
    """A zero feature column: the likelihood is free of beta and the intercept has a closed form."""
    return np.zeros((n, 1)), np.r_[np.ones(k), np.zeros(n - k)]


def test_grid_posterior_matches_the_closed_form_of_an_intercept_only_model():
    """With x = 0, p = logit^-1(b) ~ Beta(k, n - k) under a flat b: E b = psi(k) - psi(n - k),
    Var b = psi'(k) + psi'(n - k); beta keeps its N(0, C) prior."""
    X, y = intercept_only_data(7, 20)
    grid = logistic_posterior_grid(X[:, 0], y, logistic_C=2.0)
    exact_mean = [digamma(7) - digamma(13), 0.0]
    exact_sd = [np.sqrt(polygamma(1, 7) + polygamma(1, 13)), np.sqrt(2.0)]
    np.testing.assert_allclose(grid.mean, exact_mean, atol=1e-9)  # quadrature: ~1e-15 measured
    np.testing.assert_allclose(grid.sd, exact_sd, rtol=1e-9)  # as the mean: 7e-16 measured
    np.testing.assert_allclose(grid.median[1], 0.0, atol=1e-6)  # interpolated CDF, symmetric
    assert grid.edge < 1e-12  # the box grows until its border is below exp(-32) = 1e-14: 3e-18


def test_grid_posterior_on_separable_data_is_converged_and_peaks_at_the_map():
    rng = np.random.default_rng(5)
    x = np.r_[rng.uniform(-2.0, -0.3, 10), rng.uniform(0.3, 2.0, 10)]
    y = np.repeat([0.0, 1.0], 10)
    coarse = logistic_posterior_grid(x, y, logistic_C=100.0, n_grid=801)
    fine = logistic_posterior_grid(x, y, logistic_C=100.0, n_grid=1601)
    np.testing.assert_allclose(coarse.mean, fine.mean, rtol=1e-8)  # grid-converged moments
    np.testing.assert_allclose(coarse.sd, fine.sd, rtol=1e-8)  # as the mean: 1.4e-16 measured
    step = np.array([a[1] - a[0] for a in fine.axes])
    map_ = logistic_reference(x[:, None], y, logistic_C=100.0)
    assert np.all(np.abs(fine.mode - map_) <= step)  # the grid's argmax is the MAP, to a grid step
    # On separable data the posterior mean of the slope lies far beyond its mode.
    assert (fine.mean[1] - map_[1]) / fine.sd[1] > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("family", ["logistic", "poisson"])
def test_nuts_matches_the_closed_form_posterior_of_weighted_intercept_only_models(family, rng):
    """NUTS on the weighted twin vs exact moments, in MCSE units. x = 0 leaves beta at its prior.

    logistic: as above with k -> sum of the weights of the ones, n - k -> of the zeros.
    poisson: exp(b) ~ Gamma(S, N), S = sum w y, N = sum w: E b = psi(S) - log N, Var b = psi'(S);
    beta ~ N(0, 1 / (N alpha)).
    """
    n = 40
    if family == "logistic":
        X, y = intercept_only_data(15, n)
    else:
        X, y = np.zeros((n, 1)), rng.poisson(2.0, size=n).astype(float)
    # Weights that grow with y: ignoring them would move the intercept by many MCSEs.
    weights = rng.gamma(2.0, 0.5, size=n) * (0.5 + y)
    if family == "logistic":
        model = logistic_regression(X, y, logistic_C=2.0, sample_weight=weights)
        ones, zeros = weights[y == 1].sum(), weights[y == 0].sum()
        exact_mean = [digamma(ones) - digamma(zeros), 0.0]
        exact_sd = [np.sqrt(polygamma(1, ones) + polygamma(1, zeros)), np.sqrt(2.0)]
    else:
        model = poisson_regression(X, y, poisson_alpha=0.01, sample_weight=weights)
        S, N = weights @ y, weights.sum()
        exact_mean = [digamma(S) - np.log(N), 0.0]
        exact_sd = [
            np.sqrt(polygamma(1, S)),
            penalties.poisson_prior_sigma(poisson_alpha=0.01, n_samples=N),
        ]
    idata = sample_nuts(compile_nuts(model), seed=3, draws=1000, tune=1000)
    draws = posterior_coefficients(idata)
    assert not convergence(idata).failures()
    assert np.all(mean_z_scores(draws, exact_mean) < 4)  # 4 MCSE: fails by chance ~1 in 15,000
    # The SD of 2,000 draws with ESS >= 400 is within ~7% at 2 SE; 15% leaves room.
    np.testing.assert_allclose(sd_ratio(draws, exact_sd), 1.0, atol=0.15)
