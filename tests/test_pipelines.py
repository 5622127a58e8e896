"""Any fitted pipeline: transformer steps are a fixed feature map; the twin's MAP is the final step's fit."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import Lasso, LogisticRegression, PoissonRegressor, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    PolynomialFeatures,
    SplineTransformer,
    StandardScaler,
)

from models.data import DataError
from models.twin import MAP_TOLERANCE, fit_twin

SHORT = dict(draws=200, tune=200, chains=2)


@pytest.fixture(scope="module")
def table():
    """120 rows: two numeric columns on different scales and a text column with three levels."""
    rng = np.random.default_rng(7)
    n = 120
    frame = pd.DataFrame(
        {
            "x1": rng.standard_normal(n),
            "x2": 10.0 * rng.standard_normal(n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    effect = frame.region.map({"north": 0.5, "south": -0.5, "east": 0.0}).to_numpy()
    eta = frame.x1.to_numpy() - 0.05 * frame.x2.to_numpy() + effect
    targets = {
        "ridge": eta + rng.standard_normal(n),
        "lasso": eta + rng.standard_normal(n),
        "logistic": (eta + rng.logistic(size=n) > 0).astype(int),
        "poisson": rng.poisson(np.exp(eta / 2)).astype(float),
    }
    return frame, targets


def encoded():
    return make_column_transformer((OneHotEncoder(), ["region"]), (StandardScaler(), ["x1", "x2"]))


FINAL_STEPS = {
    "ridge": Ridge(alpha=1.0),
    "lasso": Lasso(alpha=0.05, tol=1e-12, max_iter=100_000),
    "logistic": LogisticRegression(C=1.0, tol=1e-10),
    "poisson": PoissonRegressor(alpha=0.01, solver="newton-cholesky", tol=1e-12),
}


@pytest.mark.parametrize("kind", list(FINAL_STEPS))
def test_encoded_pipeline_map_is_the_final_step(kind, table):
    """MAP vs the final step refitted tightly: <= 1e-8 for Ridge, <= 1e-6 otherwise (MAP_TOLERANCE)."""
    frame, targets = table
    pipeline = make_pipeline(encoded(), FINAL_STEPS[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = fit_twin(pipeline, frame, targets[kind], **SHORT)
    assert fit.checks["map_vs_reference"]["value"] <= MAP_TOLERANCE[kind]
    assert fit.checks["map_vs_estimator"]["passed"]
    final = fit.estimator[-1]
    np.testing.assert_allclose(fit.map_coef[1:], final.coef_.ravel(), rtol=1e-3, atol=1e-6)
    expected = ("intercept", *fit.estimator[:-1].get_feature_names_out())
    assert fit.names == expected
    assert "coefficients on the transformed features" in fit.label
    predictions = fit.predict(frame.iloc[:5])  # raw rows, text column included
    assert np.all(np.isfinite(predictions[["estimator", "mean"]].to_numpy()))


@pytest.mark.parametrize(
    "features",
    [
        pytest.param(
            make_column_transformer((PolynomialFeatures(2), ["x1", "x2"])), id="polynomial"
        ),
        pytest.param(
            make_column_transformer(
                (SplineTransformer(n_knots=4), ["x1"]), ("passthrough", ["x2"])
            ),
            id="spline",
        ),
    ],
)
def test_basis_expansions_are_twins_on_the_expanded_design(features, table):
    frame, targets = table
    fit = fit_twin(make_pipeline(features, Ridge(alpha=1.0)), frame, targets["ridge"])
    assert fit.checks["map_vs_reference"]["value"] <= MAP_TOLERANCE["ridge"]
    assert len(fit.names) == 1 + len(fit.estimator[:-1].get_feature_names_out())


def test_a_step_without_transform_is_refused_with_one_line(table):
    frame, targets = table
    pipeline = make_pipeline(Ridge(), Ridge())
    with pytest.raises(
        DataError, match="pipeline step 'ridge-1' \\(Ridge\\).*no transform"
    ) as error:
        fit_twin(pipeline, frame[["x1", "x2"]], targets["ridge"])
    assert "\n" not in str(error.value)


def test_least_squares_on_dummies_and_an_intercept_is_refused(table):
    """Three one-hot columns and an intercept: collinear, so alpha = 0 has no posterior."""
    frame, targets = table
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["region"])), Ridge(alpha=0.0)
    )
    with pytest.raises(DataError, match="linearly independent columns"):
        fit_twin(pipeline, frame, targets["ridge"])
    unnamed = make_pipeline(FunctionTransformer(np.tanh), Ridge(alpha=1.0))
    fit = fit_twin(unnamed, frame[["x1", "x2"]], targets["ridge"])
    assert fit.checks["map_vs_reference"]["passed"]
