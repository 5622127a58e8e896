"""The RidgeClassifier twin (models.registry's "ridge_classifier" kind): the Ridge twin on classes coded -1/+1."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import Ridge, RidgeClassifier, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments import twin as twin_cli
from models.bayesian_twin import BayesianTwin
from models.data import DataError
from models.diagnostics import relative_error
from models.exact import linear_posterior
from models.twin import fit_twin

FEW_DRAWS = dict(draws=100, chains=1)  # exact posteriors: the draws are not what these tests check


@pytest.fixture(scope="module")
def cancer():
    """breast_cancer with text labels: "malignant" sorts after "benign", so it is classes_[1] (code +1)."""
    X, y = load_breast_cancer(return_X_y=True)
    return X, np.array(["malignant", "benign"])[y]


def test_ridge_classifier_map_is_ridge_on_signed_codes_and_says_it_is_misspecified(cancer):
    X, labels = cancer
    fit = fit_twin(RidgeClassifier(alpha=1.0), X, labels, **FEW_DRAWS)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    codes = np.where(labels == "malignant", 1.0, -1.0)
    ridge = Ridge(alpha=1.0, solver="svd").fit(X, codes)  # the independent reference
    coef = np.r_[ridge.intercept_, ridge.coef_]
    estimator = np.r_[np.ravel(fit.estimator.intercept_), np.ravel(fit.estimator.coef_)]
    # Exact linear algebra on every side (scikit-learn's Ridge solvers against the twin's Newton MAP).
    assert relative_error(fit.map_coef, estimator) <= 1e-8
    assert relative_error(fit.map_coef, coef) <= 1e-8
    exact = linear_posterior(X, codes, ridge_alpha=1.0)
    np.testing.assert_allclose(fit.exact.sd, exact.sd, rtol=1e-10)  # the same closed form
    assert fit.positive_class == "malignant"
    assert "misspecified" in fit.label and "decision function" in fit.noise_note
    predictions = fit.predict(X[:20])
    decision = fit.estimator.decision_function(X[:20])
    np.testing.assert_allclose(predictions["estimator"], decision, rtol=1e-12)  # the same function
    np.testing.assert_allclose(predictions["mean"], decision, rtol=1e-8, atol=1e-12)


def test_balanced_class_weight_counts_rows_not_sample_weights_as_ridge_classifier_does(cancer, rng):
    X, labels = cancer
    # Weights that shift the classes' weighted shares: "balanced" from weighted counts (as LogisticRegression
    # computes it) would then give other class weights than RidgeClassifier's count of rows.
    weights = np.where(labels == "malignant", 3.0, 1.0) * rng.uniform(0.5, 1.5, len(labels))
    estimator = make_pipeline(
        StandardScaler(), RidgeClassifier(alpha=10.0, class_weight="balanced")
    )
    fit = fit_twin(estimator, X, labels, sample_weight=weights, **FEW_DRAWS)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    assert fit.map_rel_error <= 1e-8  # exact linear algebra on both sides


def test_ridge_classifier_cv_twin_is_at_its_chosen_alpha(cancer):
    X, labels = cancer
    fit = fit_twin(RidgeClassifierCV(alphas=(0.1, 1.0, 10.0)), X[:, :10], labels, **FEW_DRAWS)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    assert f"alpha={fit.estimator.alpha_:g}" in fit.label
    # Its leave-one-out (GCV) solver against the twin's Newton MAP: 7e-10 seen on all 30 columns.
    assert fit.map_rel_error <= 1e-8


def test_bayesian_twin_predicts_ridge_classifiers_classes_without_probabilities(cancer):
    X, labels = cancer
    twin = BayesianTwin(RidgeClassifier(alpha=1.0), **FEW_DRAWS).fit(X, labels)
    estimator = RidgeClassifier(alpha=1.0).fit(X, labels)
    np.testing.assert_array_equal(twin.predict(X), estimator.predict(X))
    decision = estimator.decision_function(X)
    np.testing.assert_allclose(twin.decision_function(X), decision, rtol=1e-8, atol=1e-12)
    assert not hasattr(twin, "predict_proba")  # a Gaussian on -1/+1 gives no class probabilities
    new = twin.sample_posterior_predictive(X[:3], n=50, seed=1)
    assert new.shape == (50, 3) and set(np.unique(new)) <= {"benign", "malignant"}


def test_ridge_classifier_with_one_class_fails_with_one_line(cancer):
    """Two classes: this twin; 3 or more: the one-vs-rest twin (tests/test_ridge_classifier_ovr.py); one class
    is still refused."""
    X, _ = cancer
    with pytest.raises(
        DataError, match=r"exactly 2 classes, got 1 \(one class leaves nothing"
    ) as error:
        fit_twin(RidgeClassifier(), X, np.zeros(len(X)))
    assert "\n" not in str(error.value)


@pytest.mark.extended  # an end-to-end run with figures: about 5 s
def test_cli_ridge_classifier_reports_the_decision_function(cancer, tmp_path):
    X, labels = cancer
    path = tmp_path / "cancer.csv"
    pd.DataFrame(X[:, :5], columns=[f"f{j}" for j in range(5)]).assign(label=labels).to_csv(
        path, index=False
    )
    out = tmp_path / "out"
    argv = ["--data", str(path), "--target", "label", "--estimator", "ridge_classifier"]
    assert twin_cli.main([*argv, "--alpha", "2", "--fast", "--out", str(out)]) == 0
    table = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    assert relative_error(table["map"], table.estimator) <= 1e-8  # exact linear algebra
    predictions = pd.read_csv(out / "predictions.csv")
    assert set(predictions.observed) == {-1.0, 1.0}  # the codes the decision function is fitted to
    metadata = json.loads((out / "metadata.json").read_text())
    assert "misspecified" in metadata["estimator"] and "decision function" in metadata["noise"]
