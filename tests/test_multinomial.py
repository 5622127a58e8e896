"""The multinomial LogisticRegression twin (models.multinomial) through fit_twin and BayesianTwin."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.special
import statsmodels.api as sm
from sklearn import datasets
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments import twin as twin_cli
from models import multinomial
from models.bayesian_twin import BayesianTwin
from models.data import DataError
from models.diagnostics import relative_error
from models.fit import PreciseMAP, coefficients
from models.twin import fit_twin, unstandardize


def standardized_map(X, y, *, logistic_C, sample_weight=None):
    """The twin's precise MAP in standardized coordinates, mapped back to ``X``'s (as fit_twin does)."""
    center, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0.0] = 1.0  # digits' blank pixels
    n_classes = np.unique(y).size
    model = multinomial.multinomial_logistic_regression(
        (X - center) / scale,
        y,
        logistic_C=logistic_C,
        feature_scale=scale,
        sample_weight=sample_weight,
    )
    back = multinomial.blockwise(unstandardize(center, scale, True), n_classes, True)
    return back @ coefficients(PreciseMAP(model)())


@pytest.mark.parametrize(
    "solver", ["lbfgs", "newton-cg", "newton-cholesky", "sag", "saga", "saga-l1", "unpenalized"]
)
def test_scikit_learn_reports_sum_zero_intercepts(solver):
    """The identification the twin copies: every solver's intercepts sum to zero (and without a penalty its
    weights too, per feature), so centering the estimator's intercepts changes nothing."""
    X, y = datasets.load_wine(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    settings = {
        "saga-l1": {"solver": "saga", "l1_ratio": 1.0},
        "unpenalized": {"solver": "newton-cholesky", "C": np.inf},
    }.get(solver, {"solver": solver})
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # sag/saga stop at max_iter: their zero sum holds throughout
        fit = LogisticRegression(max_iter=2000, **settings).fit(X, y)
    # Rounding of sums of 3 intercepts of size ~1 after a few thousand updates (sag/saga): 1e-12.
    assert abs(fit.intercept_.sum()) <= 1e-12
    if solver == "unpenalized":
        assert np.abs(fit.coef_.sum(axis=0)).max() <= 1e-12


def test_blockwise_maps_every_class_and_centers_the_intercepts(rng):
    K, p = 4, 3
    T = unstandardize(rng.standard_normal(p), rng.uniform(0.5, 2.0, p), True)
    coef = rng.standard_normal(K * (p + 1))
    mapped = multinomial.blockwise(T, K, True) @ coef
    intercept, W = multinomial.split(coef, p, True)
    per_class = np.column_stack([intercept, W]) @ T.T  # row k: T @ [b_k, w_k]
    expected = np.concatenate([per_class[:, 0] - per_class[:, 0].mean(), per_class[:, 1:].ravel()])
    np.testing.assert_allclose(mapped, expected, rtol=1e-13)  # the same arithmetic, reordered


def test_builder_refuses_targets_that_are_not_three_or_more_class_indices():
    X = np.random.default_rng(0).standard_normal((6, 2))
    for y, message in [
        ([0, 1, 0, 1, 0, 1], "3 or more classes"),
        ([0, 1, 3, 0, 1, 3], "class index 2 has no row"),
        ([0, 1, 2, 0, 1, 2.5], "class indices"),
    ]:
        with pytest.raises(DataError, match=message):
            multinomial.multinomial_logistic_regression(X, np.array(y), logistic_C=1.0)


@pytest.mark.parametrize(
    ("name", "logistic_C"),
    [
        ("iris", 1.0),
        pytest.param("wine", 0.5, marks=pytest.mark.extended),
        pytest.param("digits", 0.1, marks=pytest.mark.extended),  # 10 x 64 weights: ~1 min
    ],
)
def test_map_matches_tight_newton_refit(name, logistic_C, rng):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    # wine with sample weights (the weighted likelihood), the others without
    weights = rng.gamma(2.0, 0.5, size=len(y)) if name == "wine" else None
    twin = standardized_map(X, y, logistic_C=logistic_C, sample_weight=weights)
    reference = multinomial.multinomial_reference(
        X, y, logistic_C=logistic_C, sample_weight=weights
    )
    # Newton (newton-cholesky, tol=1e-12) against the twin's Newton MAP: measured 9e-13 (iris), 6e-15
    # (wine); the registry's tolerance is 1e-6.
    assert relative_error(twin, reference) <= 1e-10


@pytest.mark.extended
def test_unpenalized_map_matches_statsmodels_mnlogit():
    """anes96 (944 voters, 7 party identifications): at ``C = inf`` the twin's MAP is MNLogit's maximum
    likelihood. MNLogit fixes class 0's coefficients at zero; the twin's contrasts with class 0 are its
    parameters, and the class probabilities agree whatever the identification."""
    data = sm.datasets.anes96.load_pandas().data
    X = data[["logpopul", "selfLR", "age", "educ", "income"]].to_numpy(dtype=float)
    y = data["PID"].to_numpy(dtype=int)
    mnlogit = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-14, disp=0)
    intercept, W = multinomial.split(standardized_map(X, y, logistic_C=np.inf), X.shape[1], True)
    full = np.column_stack([intercept, W])
    # Two Newton solutions of one smooth problem: measured 3e-16 (contrasts), 7e-16 (probabilities).
    assert relative_error((full[1:] - full[0]).T.ravel(), np.ravel(mnlogit.params)) <= 1e-10
    probability = scipy.special.softmax(X @ W.T + intercept, axis=1)
    np.testing.assert_allclose(probability, mnlogit.predict(sm.add_constant(X)), atol=1e-10)
    np.testing.assert_allclose(
        W.sum(axis=0), 0.0, atol=1e-12
    )  # the flat weights on the sum-zero plane


@pytest.fixture(scope="module")
def iris():
    X, y = datasets.load_iris(return_X_y=True, as_frame=True)
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


@pytest.mark.extended
def test_iris_twin_converges_and_its_map_is_the_refit(iris):
    """Default NUTS settings (2 x 2,000 draws): the registry's R-hat, ESS and divergence checks."""
    X, labels = iris
    estimator = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12)
    fit = fit_twin(estimator, X, labels, seed=1)
    assert fit.kind == "multinomial"
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    assert fit.checks["map_vs_reference"]["value"] <= 1e-6
    posterior = fit.idata["posterior"]
    assert dict(posterior["beta"].sizes) == {"chain": 2, "draw": 2000, "class": 3, "feature": 4}
    # The draws keep scikit-learn's identification: intercepts summing to zero.
    np.testing.assert_allclose(posterior["intercept"].sum("class"), 0.0, atol=1e-9)
    assert fit.names[:4] == (
        "intercept[setosa]",
        "intercept[versicolor]",
        "intercept[virginica]",
        "sepal length (cm)[setosa]",
    )


@pytest.mark.extended
def test_bayesian_twin_predicts_class_probabilities(iris):
    X, labels = iris
    twin = BayesianTwin(
        LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12), draws=300, tune=300
    ).fit(X, labels)
    assert twin.coef_.shape == (3, 4) and twin.intercept_.shape == (3,)
    np.testing.assert_allclose(twin.coef_, twin.estimator_.coef_, rtol=1e-8)  # Newton vs Newton
    proba = twin.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    # The posterior mean of a probability is not the plug-in at the MAP, but near it on iris (separable
    # classes apart from versicolor / virginica): 0.1 leaves room for 600 draws' Monte Carlo error.
    assert np.abs(proba - twin.estimator_.predict_proba(X)).max() < 0.1
    np.testing.assert_array_equal(twin.predict(X), twin.classes_[proba.argmax(axis=1)])
    assert twin.score(X, labels) > 0.9
    assert twin.decision_function(X).shape == (150, 3)
    interval = twin.predict_interval(X.iloc[:2])
    assert interval.shape == (2, 3, 2) and np.all(interval[..., 0] <= proba[:2])
    assert set(np.unique(twin.sample_posterior_predictive(X, n=20))) <= set(twin.classes_)
    table = twin.twin_.predict(X.iloc[:2])
    assert list(table.index.get_level_values("class")[:3]) == list(twin.classes_)


@pytest.mark.extended
def test_elastic_net_map_is_certified_with_saga_zeros(iris):
    X, labels = iris
    X = pd.DataFrame(
        (X - X.mean()) / X.std(), columns=X.columns
    )  # saga converges on scaled columns
    estimator = LogisticRegression(C=0.5, l1_ratio=0.5, solver="saga", tol=1e-10, max_iter=100_000)
    fit = fit_twin(estimator, X, labels, seed=2, draws=300, tune=300)
    assert fit.reference_rel_error is None  # certified by the subgradient conditions instead
    # The active-set MAP: measured 1.6e-12 on unscaled iris.
    assert fit.checks["map_kkt_violation"]["value"] <= 1e-9, fit.checks
    zero = fit.map_coef == 0.0
    assert zero.sum() >= 1
    np.testing.assert_array_equal(zero, fit.estimator_coef == 0.0)
    y = np.searchsorted(fit.classes, labels)
    moved, rounding = multinomial.multinomial_kkt_violation(
        fit.map_coef + 0.01, X.to_numpy(), y, None, logistic_C=0.5, l1_ratio=0.5, fit_intercept=True
    )
    assert moved > 1e-3 > rounding  # the certificate can fail: 0.01 away it is clearly violated


@pytest.mark.extended
def test_cli_logistic_on_three_classes_writes_per_class_predictions(iris, tmp_path):
    X, labels = iris
    path = tmp_path / "iris.csv"
    X.assign(species=labels).to_csv(path, index=False)
    out = tmp_path / "out"
    argv = ["--data", str(path), "--target", "species", "--estimator", "logistic", "--C", "1"]
    assert twin_cli.main([*argv, "--fast", "--out", str(out)]) == 0
    table = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    assert table.index[0] == "intercept[setosa]" and len(table) == 3 + 3 * 4
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 150 * 3
    np.testing.assert_allclose(predictions.groupby("row")["mean"].sum(), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(predictions.groupby("row")["observed"].sum(), 1.0)


@pytest.mark.parametrize(
    "estimator",
    [
        make_pipeline(
            StandardScaler(),
            LogisticRegressionCV(
                Cs=4, cv=3, class_weight="balanced", solver="newton-cholesky", tol=1e-12
            ),
        ),
        pytest.param(
            LogisticRegression(
                C=0.5,
                fit_intercept=False,
                class_weight={0: 1.0, 1: 3.0, 2: 0.5},
                solver="newton-cholesky",
                tol=1e-12,
                max_iter=1000,
            ),
            marks=pytest.mark.extended,  # a second compile (~16 s) kept out of make test's budget
        ),
    ],
    ids=["scaled LogisticRegressionCV balanced", "no intercept, class_weight dict"],
)
def test_settings_users_combine_keep_the_map_the_estimators(estimator):
    """Class weights (balanced: from row counts; a dict), a cross-validated C, a scaler in front and no
    intercept, on wine's 3 classes with sample weights: the twin's MAP is the estimator's and its tight refit's.
    1e-6: the registry's multinomial tolerance (Newton at tol 1e-12 and the precise MAP agree to ~1e-10; a
    misread weight or C moves the MAP by far more). Few draws: the MAP is what is checked here."""
    X, y = datasets.load_wine(return_X_y=True, as_frame=True)
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, y.size)
    fit = fit_twin(estimator, X, y, sample_weight=sample_weight, draws=50, tune=50, chains=1)
    assert fit.kind == "multinomial"
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    intercepts = 3 if final.fit_intercept else 0
    assert len(fit.names) == intercepts + 3 * X.shape[1]
    for check in ("map_vs_estimator", "map_vs_reference"):
        assert fit.checks[check]["value"] <= 1e-6, fit.checks[check]
