"""The ARDRegression twin (models.registry's "ard" kind): the exact posterior at the fitted lambda_ and alpha_."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import ARDRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments import twin as twin_cli
from models.bayesian_twin import BayesianTwin
from models.data import DataError
from models.diagnostics import relative_error
from models.twin import fit_twin

FEW_DRAWS = dict(draws=100, chains=1)  # exact posteriors: the draws are not what these tests check


@pytest.fixture(scope="module")
def gallery():
    """The design of scikit-learn's ARD gallery example (``examples/linear_model/plot_ard.py``): 100 rows, 100
    features of which 10 are informative, noise SD 8."""
    X, y, _ = make_regression(
        n_samples=100, n_features=100, n_informative=10, noise=8, coef=True, random_state=42
    )
    return X, y


@pytest.fixture
def sparse_signal(rng):
    """80 rows, 8 features of which 3 carry signal: ARD's default threshold prunes some of the others."""
    X = rng.standard_normal((80, 8))
    y = 1.0 + X[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.5 * rng.standard_normal(80)
    return X, y


@pytest.mark.parametrize(
    ("threshold_lambda", "n_pruned"), [(1e4, 0), (1e3, 42)], ids=["default", "prunes"]
)
def test_ard_posterior_mean_is_coef_and_covariance_is_sigma(threshold_lambda, n_pruned, gallery):
    X, y = gallery
    fit = fit_twin(ARDRegression(threshold_lambda=threshold_lambda), X, y, **FEW_DRAWS)
    ard = fit.estimator
    kept = ard.lambda_ < threshold_lambda
    assert int((~kept).sum()) == n_pruned  # the gallery design at these thresholds (deterministic)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    # scikit-learn's last update is the exact posterior at its final lambda_ and alpha_, computed by other
    # linear algebra (a Cholesky/Woodbury inverse against the twin's SVD): both exact to rounding.
    coef = np.concatenate([[ard.intercept_], ard.coef_])
    assert relative_error(fit.exact.mean, coef) <= 1e-8
    assert relative_error(fit.map_coef, coef) <= 1e-8
    kept_cov = fit.exact.cov[1:, 1:][np.ix_(kept, kept)]
    assert relative_error(kept_cov, ard.sigma_) <= 1e-8
    # A pruned feature: coefficient exactly 0 with no spread, in the MAP, the posterior and its draws.
    assert np.all(fit.map_coef[1:][~kept] == 0.0)
    assert np.all(fit.exact.sd[1:][~kept] == 0.0)
    assert np.all(fit.draws[:, 1:][:, ~kept] == 0.0)
    assert fit.noise_sigma == pytest.approx(1.0 / np.sqrt(ard.alpha_), rel=1e-15)
    assert (f"{n_pruned} of 100 features pruned" in fit.label) == (n_pruned > 0)


def test_ard_predictive_sd_adds_the_intercepts_uncertainty_to_ards_own(sparse_signal, rng):
    X, y = sparse_signal
    twin = BayesianTwin(ARDRegression(), **FEW_DRAWS).fit(X, y)
    ard = twin.estimator_
    kept = ard.lambda_ < ard.threshold_lambda
    assert 0 < kept.sum() < 8  # the data prune some features, not all
    X_new = rng.standard_normal((5, 8))
    mean, sd = twin.predict(X_new, return_std=True)
    ard_mean, ard_sd = ard.predict(X_new, return_std=True)
    np.testing.assert_allclose(mean, ard_mean, rtol=1e-10)  # the same posterior mean, exactly
    # ARD's own SD is x[kept] sigma_ x[kept]' + 1 / alpha_ on the raw x: it leaves out the intercept (flat
    # prior), whose posterior adds 1 / (n alpha_) and centers x: the twin's SD is that, exactly.
    centered = (X_new - X.mean(axis=0))[:, kept]
    spread = np.einsum("ij,jk,ik->i", centered, ard.sigma_, centered)
    expected = np.sqrt(spread + 1.0 / (len(X) * ard.alpha_) + 1.0 / ard.alpha_)
    np.testing.assert_allclose(sd, expected, rtol=1e-10)  # closed forms on both sides
    assert np.all(np.abs(sd - ard_sd) > 1e-6 * ard_sd)  # and ARD's own differs


def test_ard_pipeline_predicts_as_the_fitted_pipeline(sparse_signal):
    X, y = sparse_signal
    pipeline = make_pipeline(StandardScaler(), ARDRegression())
    fit = fit_twin(pipeline, X, y, **FEW_DRAWS)
    ard = fit.estimator[-1]
    pruned = ard.lambda_ >= ard.threshold_lambda
    assert pruned.any()
    assert np.all(fit.map_coef[1:][pruned] == 0.0)
    np.testing.assert_allclose(  # exact linear algebra, mapped back through the scaler
        fit.predict(X)["mean"], fit.estimator.predict(X), rtol=1e-10
    )


def test_ard_refuses_sample_weights_in_one_line(sparse_signal):
    X, y = sparse_signal
    weights = np.ones(len(y))
    with pytest.raises(DataError, match="ARDRegression.fit refused.*sample_weight"):
        fit_twin(ARDRegression(), X, y, sample_weight=weights)
    with pytest.raises(DataError, match="no sample weights"):
        fit_twin(ARDRegression().fit(X, y), X, y, sample_weight=weights)


@pytest.mark.extended  # an end-to-end run with figures: about 5 s
def test_cli_ard_runs_end_to_end(sparse_signal, tmp_path):
    X, y = sparse_signal
    path = tmp_path / "table.csv"
    pd.DataFrame(X, columns=[f"f{j}" for j in range(8)]).assign(y=y).to_csv(path, index=False)
    argv = ["--data", str(path), "--target", "y", "--estimator", "ard", "--fast"]
    assert twin_cli.main([*argv, "--out", str(tmp_path / "ard")]) == 0
    table = pd.read_csv(tmp_path / "ard" / "coefficients.csv", index_col="coefficient")
    assert relative_error(table["map"], table.estimator) <= 1e-8  # exact linear algebra
    assert (table.loc[table.estimator == 0.0, "posterior_sd"] == 0.0).all()
    metadata = json.loads((tmp_path / "ard" / "metadata.json").read_text())
    assert "features pruned" in metadata["estimator"]


def test_cli_ard_refuses_a_penalty_flag_in_one_line(tmp_path, capsys):
    argv = ["--data", str(tmp_path / "unread.csv"), "--target", "y", "--estimator", "ard"]
    code = twin_cli._cli.run(twin_cli.main, [*argv, "--alpha", "1", "--out", str(tmp_path / "x")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "ard fits its own prior" in error, error
    assert not (tmp_path / "x").exists()
