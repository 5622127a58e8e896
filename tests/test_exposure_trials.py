"""Poisson rates with exposure and binomial successes out of trials (issue 18, item 7).

A Poisson twin on ``y = count / exposure`` with ``sample_weight = exposure`` has the MAP of ``PoissonRegressor``
fitted the same way and of a Poisson GLM with offset ``log(exposure)`` (statsmodels, an independent
implementation, on its bundled ``cancer`` data: deaths and population per county); a target whose counts are not
whole is the same objective as a quasi-likelihood, said in the label. Binomial successes out of trials as
weighted 0/1 rows give the MAP of statsmodels' binomial GLM on ``(successes, failures)`` (R's ``glm``) on
``star98``. The command takes ``--exposure`` and ``--trials``, and refuses their misuse in one line.
"""

import json
import re

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression, PoissonRegressor

from experiments import twin as twin_cli
from models import glm, registry
from models.data import DataError
from models.diagnostics import relative_error
from models.fit import PreciseMAP, coefficients
from models.twin import MAP_COMPILE_MODE


@pytest.fixture(scope="module")
def cancer():
    """statsmodels' ``cancer``: breast cancer deaths and population of 301 counties; the feature is the
    log population (in units of 10,000), whose coefficient says whether the rate per person changes with
    county size."""
    frame = sm.datasets.cancer.load_pandas().data
    counts = frame["cancer"].to_numpy(dtype=float)
    population = frame["population"].to_numpy(dtype=float)
    return np.log(population / 1e4)[:, None], counts, population


def _precise_map(model):
    # Python implementations, no C code to compile (1 s against 9-12 s here); the Poisson log-density has no
    # term that underflows without the C backend's rewrites (the Bernoulli one does, from eta of about 37).
    return PreciseMAP(model, mode=MAP_COMPILE_MODE)


def test_poisson_likelihood_says_counts_exposure_or_quasi():
    exposure = np.array([0.5, 2.0, 4.0])
    counts = np.array([3.0, 0.0, 7.0])
    assert glm.poisson_likelihood(counts) == "counts"
    assert (
        glm.poisson_likelihood(counts, exposure) == "counts"
    )  # whole y: weights multiply, as before
    assert glm.poisson_likelihood(counts / exposure, exposure) == "exposure"
    assert glm.poisson_likelihood(counts / exposure) == "quasi"  # a rate without its exposure
    assert glm.poisson_likelihood((counts + 0.5) / exposure, exposure) == "quasi"
    # A zero exposure makes no count of its row (PoissonRegressor ignores it; the twin drops it).
    assert glm.poisson_likelihood(counts / exposure, exposure * [1, 1, 0]) == "quasi"


def test_poisson_reading_says_which_likelihood():
    Z = np.zeros((3, 1))
    exposure = np.array([0.5, 2.0, 4.0])
    counts = np.array([3.0, 1.0, 7.0])
    labels = {
        likelihood: registry.read_poisson(PoissonRegressor(alpha=0.5), Z, y, w).label
        for likelihood, y, w in [
            ("counts", counts, None),
            ("exposure", counts / exposure, exposure),
            ("quasi", counts + 0.25, None),
        ]
    }
    assert labels["counts"] == "PoissonRegressor(alpha=0.5)"
    assert "Poisson likelihood of the whole counts" in labels["exposure"]
    assert (
        "quasi-likelihood" in labels["quasi"]
        and "not a proper Bayesian posterior" in labels["quasi"]
    )


@pytest.mark.slow
def test_exposure_map_equals_poisson_regressor_and_statsmodels_offset(cancer):
    """Whole counts: the twin observes the counts (Poisson, offset log exposure); its MAP is the estimator's
    on the rates weighted by the exposure, and statsmodels' Poisson GLM with the offset."""
    X, counts, population = cancer
    rates = counts / population
    model = glm.poisson_regression(X, rates, poisson_alpha=0.0, sample_weight=population)
    np.testing.assert_array_equal(
        model["y_observed"].get_value(), counts
    )  # the counts are observed
    twin_map = coefficients(_precise_map(model)())
    estimator = glm.poisson_reference(X, rates, poisson_alpha=0.0, sample_weight=population)
    offset = sm.GLM(
        counts, sm.add_constant(X), family=sm.families.Poisson(), offset=np.log(population)
    ).fit(tol=1e-14)
    # Newton (twin) against Newton (newton-cholesky, IRLS): both reach the optimum to ~1e-16 here.
    assert relative_error(twin_map, estimator) <= 1e-6
    assert relative_error(twin_map, offset.params) <= 1e-6
    # Penalized: the prior scale uses the sum of the exposures, as scikit-learn's 1 / sum(w) does.
    model = glm.poisson_regression(X, rates, poisson_alpha=1e-4, sample_weight=population)
    precise_map = _precise_map(model)
    for alpha in (1e-6, 1e-4, 1e-2):
        pm.set_data({"poisson_alpha": alpha}, model=model)
        estimator = glm.poisson_reference(X, rates, poisson_alpha=alpha, sample_weight=population)
        assert relative_error(coefficients(precise_map()), estimator) <= 1e-6, alpha  # as above


@pytest.mark.slow
def test_quasi_likelihood_map_equals_poisson_regressor(cancer):
    """Counts that are not whole (half a death added to each county): the same objective, as a
    quasi-likelihood on the rates as given; the MAP is still the estimator's."""
    X, counts, population = cancer
    rates = (counts + 0.5) / population
    assert glm.poisson_likelihood(rates, population) == "quasi"
    model = glm.poisson_regression(X, rates, poisson_alpha=1e-4, sample_weight=population)
    np.testing.assert_array_equal(model["y_observed"].get_value(), rates)  # not rounded down
    estimator = glm.poisson_reference(X, rates, poisson_alpha=1e-4, sample_weight=population)
    # Newton against Newton, as above.
    assert relative_error(coefficients(_precise_map(model)()), estimator) <= 1e-6


def test_binomial_rows_are_a_success_row_and_a_failure_row_weighted_by_their_counts():
    X = np.array([[1.0], [2.0], [3.0]])
    rows = glm.binomial_rows(X, successes=[2, 0, 5], trials=[3, 4, 5])
    np.testing.assert_array_equal(rows.y, [1, 1, 0, 0])  # zero-weight rows left out
    np.testing.assert_array_equal(rows.sample_weight, [2, 5, 1, 4])
    np.testing.assert_array_equal(rows.source_row, [0, 2, 0, 1])
    np.testing.assert_array_equal(rows.X[:, 0], [1, 3, 1, 2])
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=[10, 11, 12])
    assert list(glm.binomial_rows(frame, [2, 0, 5], [3, 4, 5]).X.index) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("successes", "trials", "message"),
    [
        ([0.5, 1, 1], [1, 2, 2], "successes must be whole numbers"),
        ([3, 1, 1], [2, 2, 2], "successes must be whole numbers from 0 to the trials"),
        ([1, 1, 1], [2, 0, 2], "trials must be whole numbers >= 1"),
        ([0, 0, 0], [2, 2, 2], "at least one success and one failure"),
        ([1, 1], [2, 2], "one value per row"),
    ],
)
def test_binomial_rows_refuse_bad_counts_in_one_line(successes, trials, message):
    with pytest.raises(DataError, match=message) as error:
        glm.binomial_rows(np.zeros((3, 1)), successes, trials)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_binomial_rows_map_equals_statsmodels_binomial_glm_on_star98():
    """Successes out of trials (star98: students above and below the national median per school): the
    logistic twin without penalty on the weighted 0/1 rows has the MAP of LogisticRegression(C=inf) on
    them and of statsmodels' binomial GLM on (successes, failures), R's glm."""
    star98 = sm.datasets.star98.load_pandas()
    X = star98.exog.iloc[:, :6].to_numpy()  # the main effects LOWINC ... AVYRSEXP; no interactions
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    above, below = star98.endog["NABOVE"].to_numpy(), star98.endog["NBELOW"].to_numpy()
    rows = glm.binomial_rows(X, above, above + below)
    model = glm.logistic_regression(
        rows.X, rows.y, logistic_C=np.inf, sample_weight=rows.sample_weight
    )
    # The default C backend: its stabilized log(1 - sigmoid) (MAP_COMPILE_MODE's underflows for large eta).
    twin_map = coefficients(PreciseMAP(model)())
    estimator = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    estimator.fit(rows.X, rows.y, sample_weight=rows.sample_weight)
    binomial = sm.GLM(
        np.column_stack([above, below]), sm.add_constant(X), family=sm.families.Binomial()
    ).fit(tol=1e-14)
    # Newton against Newton (newton-cholesky at tol=1e-12; IRLS at tol=1e-14).
    assert relative_error(twin_map, binomial.params) <= 1e-6
    sklearn_coef = np.concatenate([estimator.intercept_, estimator.coef_.ravel()])
    assert relative_error(sklearn_coef, binomial.params) <= 1e-6


@pytest.fixture
def rates_table(tmp_path):
    """40 rows: a count over an exposure (Poisson, log rate 0.2 + 0.4 a), and successes out of trials."""
    rng = np.random.default_rng(3)
    n = 40
    frame = pd.DataFrame({"a": rng.standard_normal(n), "b": rng.standard_normal(n)})
    frame["years"] = rng.uniform(0.5, 4.0, n)
    frame["claims"] = rng.poisson(frame.years * np.exp(0.2 + 0.4 * frame.a))
    frame["tested"] = rng.integers(5, 30, n)
    frame["passed"] = rng.binomial(frame.tested, 1.0 / (1.0 + np.exp(-0.3 - 0.8 * frame.b)))
    frame["share"] = frame.passed / frame.tested
    path = tmp_path / "rates.csv"
    frame.to_csv(path, index=False)
    return frame, path


RATE_MISUSE = [
    (["--target", "claims", "--exposure", "years"], "--exposure is for --estimator poisson"),
    (["--estimator", "poisson", "--target", "passed", "--trials", "tested"], "--trials is for"),
    (
        ["--estimator", "poisson", "--target", "claims", "--exposure", "years", "--weights", "a"],
        "sets the sample weights itself",
    ),
    (["--estimator", "poisson", "--target", "claims", "--exposure", "a"], "must be > 0"),
    (["--estimator", "poisson", "--target", "claims", "--exposure", "nope"], "no exposure column"),
    (["--estimator", "poisson", "--target", "claims", "--exposure", "claims"], "is the target"),
    (
        ["--estimator", "logistic", "--target", "share", "--trials", "tested"],
        "holds proportions .*multiply them by the trials column",
    ),
    (
        ["--estimator", "logistic", "--target", "share"],
        "got a fraction .*--trials COLUMN",
    ),
    (
        ["--estimator", "logistic", "--target", "tested", "--trials", "passed"],  # swapped
        "trials must be whole numbers >= 1",
    ),
]


@pytest.mark.parametrize(("flags", "message"), RATE_MISUSE, ids=[m for _, m in RATE_MISUSE])
def test_cli_misuse_of_exposure_and_trials_is_one_line_exit_2(
    flags, message, rates_table, tmp_path, capsys
):
    _, path = rates_table
    out = tmp_path / "out"
    argv = ["--data", str(path), "--out", str(out), *flags]
    code = twin_cli._cli.run(twin_cli.main, argv)
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and re.search(message, error), error
    assert not out.exists()


@pytest.mark.slow
def test_cli_poisson_with_exposure_runs_end_to_end(rates_table, tmp_path):
    frame, path = rates_table
    out = tmp_path / "exposure"
    argv = ["--data", str(path), "--formula", "claims ~ a + b", "--exposure", "years"]
    argv += ["--estimator", "poisson", "--alpha", "0.01", "--fast", "--out", str(out)]
    twin_cli.main(argv)  # the exit code also counts a fast run's Monte Carlo checks
    metadata = json.loads((out / "metadata.json").read_text())
    assert "Poisson likelihood of the whole counts" in metadata["estimator"]
    assert metadata["checks"]["map_vs_reference"]["passed"]
    table = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    assert list(table.index) == ["intercept", "a", "b"]
    estimator = PoissonRegressor(alpha=0.01, solver="newton-cholesky", tol=1e-12)
    estimator.fit(frame[["a", "b"]], frame.claims / frame.years, sample_weight=frame.years)
    # The estimator refitted here at tol=1e-12 against the twin's Newton MAP.
    assert relative_error(table["map"], [estimator.intercept_, *estimator.coef_]) <= 1e-6
    predictions = pd.read_csv(out / "predictions.csv")
    np.testing.assert_allclose(predictions.observed, frame.claims / frame.years, rtol=1e-12)
    # A new rate's interval narrows with the exposure: a count over more years varies less per year.
    width = (predictions.predictive_q95 - predictions.predictive_q5) / predictions["mean"]
    long, short = frame.years > 3.0, frame.years < 1.0
    assert width[long].mean() < width[short].mean()


@pytest.mark.slow
def test_cli_logistic_with_trials_runs_end_to_end(rates_table, tmp_path):
    frame, path = rates_table
    out = tmp_path / "trials"
    argv = ["--data", str(path), "--formula", "passed ~ a + b", "--trials", "tested"]
    argv += ["--estimator", "logistic", "--C", "inf", "--fast", "--out", str(out)]
    twin_cli.main(argv)
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["checks"]["map_vs_reference"]["passed"]
    table = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    binomial = sm.GLM(
        np.column_stack([frame.passed, frame.tested - frame.passed]),
        sm.add_constant(frame[["a", "b"]].to_numpy()),
        family=sm.families.Binomial(),
    ).fit(tol=1e-14)
    # No penalty: the twin's Newton MAP against statsmodels' IRLS on (successes, failures), R's glm.
    assert relative_error(table["map"], binomial.params) <= 1e-6
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == len(frame)  # one row per table row, not per expanded row
    np.testing.assert_allclose(predictions.observed, frame.passed / frame.tested, rtol=1e-12)
