"""The one-vs-rest RidgeClassifier twin (models.ridge_classifier; the "ridge_classifier_ovr" kind): one linear twin
per class on its codes -1/+1, at the shared alpha."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import RidgeClassifier, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments import twin as twin_cli
from models.bayesian_twin import BayesianTwin
from models.diagnostics import relative_error
from models.ridge_classifier import ClassPosteriors, class_coefficient_index
from models.twin import fit_twin

FEW_DRAWS = dict(draws=100, chains=1)  # exact posteriors: the draws are not what these tests check
SPECIES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris():
    """iris with text labels (3 classes, 4 features)."""
    X, y = load_iris(return_X_y=True)
    return X, SPECIES[y]


def _sklearn_layout(estimator) -> np.ndarray:
    """``[intercept_ (K), coef_ (K x p, class by class)]``: scikit-learn's own numbers, as the twin lays them out."""
    return np.concatenate([estimator.intercept_, estimator.coef_.ravel()])


@pytest.mark.parametrize("load", [load_iris, load_wine], ids=["iris", "wine"])
def test_map_is_ridge_classifiers_coef_and_intercept_on_real_data(load):
    X, y = load(return_X_y=True)
    fit = fit_twin(RidgeClassifier(alpha=1.0), X, y, **FEW_DRAWS)
    assert fit.kind == "ridge_classifier_ovr" and fit.classes == (0, 1, 2)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    estimator = RidgeClassifier(alpha=1.0).fit(X, y)
    # The twin's Newton MAP on the closed form against scikit-learn's Ridge solver (Cholesky): both exact
    # linear algebra (measured 7e-15 on iris and 3e-15 on wine, whose columns are 1e4 apart in scale).
    assert relative_error(fit.map_coef, _sklearn_layout(estimator)) <= 1e-8
    assert fit.names[:3] == ("intercept[0]", "intercept[1]", "intercept[2]")
    assert "one-vs-rest on 3 classes" in fit.label and "misspecified" in fit.label
    assert "K decision functions" in fit.noise_note and "not independent" in fit.noise_note


def _closed_form_ridge(X, codes, alpha):
    """The conjugate Ridge posterior of one code column, from the normal equations (not the SVD the twin
    uses): mean ``(intercept, beta)``, Student-t covariance and degrees of freedom ``n - 1``."""
    n, p = X.shape
    x_mean, y_mean = X.mean(axis=0), codes.mean()
    Xc, yc = X - x_mean, codes - y_mean
    A_inv = np.linalg.inv(Xc.T @ Xc + alpha * np.eye(p))
    beta = A_inv @ Xc.T @ yc
    penalized_rss = np.sum((yc - Xc @ beta) ** 2) + alpha * beta @ beta
    # Jeffreys' prior; the prior's sigma**-p adds back the p coefficients' degrees of freedom.
    df = n - 1
    scale = np.empty((p + 1, p + 1))
    scale[0, 0] = 1.0 / n + x_mean @ A_inv @ x_mean
    scale[0, 1:] = scale[1:, 0] = -A_inv @ x_mean
    scale[1:, 1:] = A_inv
    cov = penalized_rss / df * scale * df / (df - 2.0)
    return np.r_[y_mean - x_mean @ beta, beta], cov, df


def test_each_class_posterior_is_the_closed_form_ridge_posterior_on_its_codes(iris):
    X, labels = iris
    alpha = 2.0
    fit = fit_twin(RidgeClassifier(alpha=alpha), X, labels, **FEW_DRAWS)
    index = class_coefficient_index(3, X.shape[1], fit_intercept=True)
    for k, species in enumerate(SPECIES):
        mean, cov, df = _closed_form_ridge(X, np.where(labels == species, 1.0, -1.0), alpha)
        posterior = fit.class_posteriors()[k]
        # The normal equations (cond 140 on iris) against the SVD: agree to ~1e-13; 1e-10 leaves room.
        np.testing.assert_allclose(posterior.mean, mean, rtol=1e-10)
        np.testing.assert_allclose(posterior.cov, cov, rtol=1e-10)
        assert posterior.df == df
        np.testing.assert_allclose(fit.exact.cov[np.ix_(index[k], index[k])], cov, rtol=1e-10)
    # Independent classes: no covariance between one class's coefficients and another's.
    assert np.all(fit.exact.cov[np.ix_(index[0], index[1:].ravel())] == 0.0)


def test_decision_function_draws_match_the_exact_posterior(iris):
    X, labels = iris
    fit = fit_twin(RidgeClassifier(alpha=1.0), X, labels, draws=2000, chains=2, seed=3)
    rows = X[::30]
    # Independent exact draws of each class's decision function, shape (4000, rows, classes).
    draws = fit._class_linear_predictor_draws(rows)
    exact_mean = fit.class_decision_function(rows)
    np.testing.assert_allclose(
        exact_mean, RidgeClassifier(alpha=1.0).fit(X, labels).decision_function(rows), rtol=1e-8
    )  # exact linear algebra on both sides
    design = np.column_stack([np.ones(len(rows)), rows])
    exact_sd = np.column_stack(
        [
            np.sqrt(np.einsum("ij,jk,ik->i", design, posterior.cov, design))
            for posterior in fit.class_posteriors()
        ]
    )
    n = len(draws)
    z = np.abs(draws.mean(axis=0) - exact_mean) / (exact_sd / np.sqrt(n))
    # 15 z-scores of independent draws, each past 4.5 by chance about once in 150,000.
    assert z.max() < 4.5, z
    # The SD of 4,000 draws has a relative standard error of about 1 / sqrt(2 * 4000) = 1.1%: 5% is 4.5 of them.
    np.testing.assert_allclose(draws.std(axis=0, ddof=1), exact_sd, rtol=0.05)


def test_class_posteriors_draw_one_chi_square_per_class(rng):
    """Two classes with Student-t (df 5) coefficients: their draws are independent. A chi-square shared by both
    (one multivariate Student-t) would correlate their magnitudes: the correlation of log|t| is then about
    0.09, against 0 for independent classes."""
    posterior = ClassPosteriors(
        ("a[0]", "a[1]"), np.zeros(2), np.eye(2), 5.0, np.array([2.5, 2.5]), np.array([1.0, 1.0])
    )
    draws = posterior.draws(rng, 40_000)
    magnitude = np.log(np.abs(draws))
    # 40,000 draws: the correlation's standard error is 0.005; 0.025 is 5 of them, 0.09 is 18.
    assert abs(np.corrcoef(magnitude.T)[0, 1]) < 0.025
    # The t(5) marginal: its 97.5% quantile is 2.571 (standard error of the empirical one about 0.03).
    np.testing.assert_allclose(np.quantile(draws, 0.975, axis=0), 2.571, atol=0.12)


def test_class_weight_and_sample_weight_as_ridge_classifier_weights_rows(iris, rng):
    X, labels = iris
    weights = rng.uniform(0.5, 1.5, len(labels))
    estimator = make_pipeline(
        StandardScaler(), RidgeClassifier(alpha=3.0, class_weight={"setosa": 4.0})
    )
    fit = fit_twin(estimator, X, labels, sample_weight=weights, **FEW_DRAWS)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    assert fit.map_rel_error <= 1e-8  # exact linear algebra on both sides


def test_ridge_classifier_cv_twin_is_at_its_chosen_alpha():
    X, y = load_wine(return_X_y=True)
    fit = fit_twin(RidgeClassifierCV(alphas=(0.1, 1.0, 10.0)), X, y, **FEW_DRAWS)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    assert f"alpha={fit.estimator.alpha_:g}" in fit.label
    # Its leave-one-out (GCV) eigen solver against the twin's Newton MAP: 3.5e-11 measured on wine.
    assert fit.map_rel_error <= 1e-8


def test_bayesian_twin_predicts_the_largest_decision_function_without_probabilities(iris):
    X, labels = iris
    twin = BayesianTwin(RidgeClassifier(alpha=1.0), **FEW_DRAWS).fit(X, labels)
    estimator = RidgeClassifier(alpha=1.0).fit(X, labels)
    assert twin.coef_.shape == (3, 4)
    # Each class's own intercept (not centered as the multinomial's): exact linear algebra on both sides.
    np.testing.assert_allclose(twin.intercept_, estimator.intercept_, rtol=1e-8)
    np.testing.assert_allclose(twin.coef_, estimator.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(twin.predict(X), estimator.predict(X))
    decision = estimator.decision_function(X)
    np.testing.assert_allclose(twin.decision_function(X), decision, rtol=1e-8, atol=1e-12)
    # Gaussians on the -1/+1 codes give no class probabilities.
    assert not hasattr(twin, "predict_proba")
    interval = twin.predict_interval(X[:5])
    assert interval.shape == (5, 3, 2)
    assert np.all((interval[..., 0] < decision[:5]) & (decision[:5] < interval[..., 1]))
    new = twin.sample_posterior_predictive(X[:3], n=200, seed=1)
    assert new.shape == (200, 3) and set(np.unique(new)) <= set(SPECIES)
    # Row 0 is a clear setosa (decision functions 0.95 against -0.75 and -1.2): most new labels say so.
    assert np.mean(new[:, 0] == "setosa") > 0.5


@pytest.mark.extended  # an end-to-end run with figures: about 5 s
def test_cli_ridge_classifier_on_three_classes_reports_each_decision_function(iris, tmp_path):
    X, labels = iris
    path = tmp_path / "iris.csv"
    features = [f"f{j}" for j in range(4)]
    pd.DataFrame(X, columns=features).assign(species=labels).to_csv(path, index=False)
    out = tmp_path / "out"
    argv = ["--data", str(path), "--target", "species", "--estimator", "ridge_classifier"]
    assert twin_cli.main([*argv, "--alpha", "2", "--fast", "--out", str(out)]) == 0
    table = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    assert "intercept[versicolor]" in table.index and "f0[virginica]" in table.index
    assert relative_error(table["map"], table.estimator) <= 1e-8  # exact linear algebra
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 3 * len(X)  # one row per (row, class)
    # The codes each class's decision function is fitted to: +1 for the row's class, -1 for the others.
    assert set(predictions.observed) == {-1.0, 1.0}
    assert (predictions.groupby("row")["observed"].sum() == -1.0).all()
    metadata = json.loads((out / "metadata.json").read_text())
    assert "one-vs-rest" in metadata["estimator"] and "misspecified" in metadata["estimator"]
    assert "K decision functions" in metadata["noise"]
