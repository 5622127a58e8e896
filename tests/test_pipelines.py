"""Any fitted pipeline: transformer steps are a fixed feature map; the twin's MAP is the final step's fit."""

import re
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
from models.registry import KINDS
from models.twin import fit_twin

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
    """MAP vs the final step refitted tightly: <= 1e-8 for Ridge, <= 1e-6 otherwise (the registry's tolerance)."""
    frame, targets = table
    pipeline = make_pipeline(encoded(), FINAL_STEPS[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = fit_twin(pipeline, frame, targets[kind], **SHORT)
    assert fit.checks["map_vs_reference"]["value"] <= KINDS[kind].tolerance
    assert fit.checks["map_vs_estimator"]["passed"]
    final = fit.estimator[-1]
    # Final steps fitted at tol 1e-10 to 1e-12: measured at most 6e-7 relative over the four kinds; atol
    # for coefficients at or near 0.
    np.testing.assert_allclose(fit.map_coef[1:], final.coef_.ravel(), rtol=1e-5, atol=1e-6)
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
    assert fit.checks["map_vs_reference"]["value"] <= KINDS["ridge"].tolerance
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


# ---- the command on a table with text columns, a formula and weights ----------------------------------


@pytest.fixture
def csv_with_text(table, tmp_path):
    frame, targets = table
    frame = frame.assign(y=targets["ridge"], w=np.linspace(0.5, 2.0, len(frame)))
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return frame, path


def run_twin(argv, capsys):
    from experiments import _cli, twin

    code = _cli.run(twin.main, [str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def test_command_one_hot_encodes_text_columns_with_weights(csv_with_text, tmp_path, capsys):
    frame, path = csv_with_text
    out = tmp_path / "out"
    code, _ = run_twin(["--data", path, "--target", "y", "--weights", "w", "--out", out], capsys)
    assert code == 0
    coefficients = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    assert list(coefficients.index) == [
        "intercept",
        "region_east",
        "region_north",
        "region_south",
        "x1",
        "x2",
    ]
    design = pd.get_dummies(frame.region, dtype=float).join(frame[["x1", "x2"]])
    ridge = Ridge(alpha=1.0).fit(design, frame.y, sample_weight=frame.w)
    # Exact linear algebra on both sides (the registry's Ridge tolerance): measured 1.5e-13.
    np.testing.assert_allclose(coefficients["map"].iloc[1:], ridge.coef_, rtol=1e-8)


def test_command_builds_the_design_from_a_formula(csv_with_text, tmp_path, capsys):
    frame, path = csv_with_text
    out = tmp_path / "out"
    argv = ["--data", path, "--formula", "y ~ x1 + C(region) + x1:x2", "--out", out]
    code, _ = run_twin(argv, capsys)
    assert code == 0
    coefficients = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    assert list(coefficients.index) == [
        "intercept",
        "x1",
        "C(region)[T.north]",
        "C(region)[T.south]",
        "x1:x2",
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--formula", "y ~ x1 + nope"], "--formula 'y ~ x1 \\+ nope': .*nope"),
        (["--formula", "y ~ x1 +"], "--formula 'y ~ x1 \\+'"),
        (["--formula", "~ x1"], "needs one response on the left"),
        (["--target", "y", "--weights", "nope"], "no weight column named 'nope'"),
        (["--target", "y", "--dates"], "column\\(s\\) day hold dates"),
        (["--target", "nope"], "no column named 'nope'"),
    ],
)
def test_command_bad_formula_column_or_dates_exit_2_nothing_written(
    flags, message, csv_with_text, tmp_path, capsys
):
    frame, path = csv_with_text
    if "--dates" in flags:
        flags = [f for f in flags if f != "--dates"]
        frame.assign(day=pd.date_range("2024-01-01", periods=len(frame)).astype(str)).to_csv(
            path, index=False
        )
    out = tmp_path / "out"
    code, err = run_twin(["--data", path, *flags, "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not out.exists()
