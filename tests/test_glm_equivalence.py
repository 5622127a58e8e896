import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import run_fast

from experiments import _cli, glm_equivalence

METRICS = [
    "logistic_max_rel_err_map_precise",
    "logistic_max_rel_err_map_default",
    "poisson_max_rel_err_map_precise",
    "poisson_max_rel_err_map_default",
    "max_abs_mean_minus_map_in_sd",
]


def test_standardization_uses_the_training_rows_statistics(rng):
    train, test = rng.normal(3.0, 2.0, (50, 3)), rng.normal(3.0, 2.0, (20, 3))
    train_z, test_z = glm_equivalence.standardize(train, test)
    np.testing.assert_allclose(train_z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train_z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(test_z, (test - train.mean(axis=0)) / train.std(axis=0), rtol=1e-12)


def test_separable_data_is_linearly_separable(rng):
    x, y = glm_equivalence.separable_data(rng)
    assert x[y == 0].max() < x[y == 1].min()


@pytest.mark.slow
def test_fast_run_writes_every_result_and_passes_its_checks(tmp_path):
    metadata = run_fast(glm_equivalence.main, tmp_path)
    assert set(METRICS) <= set(metadata["metrics"])
    path = pd.read_csv(tmp_path / "path.csv")
    assert list(path.columns[:4]) == ["dataset", "family", "penalty", "feature"]
    assert {"sklearn", "sklearn_lbfgs", "map_default", "map_precise"} <= set(path.columns)
    assert set(path.dataset) == {
        "breast_cancer",
        "counts",
    }  # the fast run leaves out the extra counts
    predictive = pd.read_csv(tmp_path / "predictive.csv")
    assert len(predictive) == glm_equivalence.FAST.predictive_cases
    assert {"predict_proba", "posterior_mean", "posterior_median", "q05", "q95"} <= set(predictive)
    for name in [
        "nuts.csv",
        "separation.csv",
        "unpenalized.csv",
        "path.png",
        "map_error.png",
        "map_mean_median.png",
        "predictive.png",
        "separation.png",
        "posterior_logistic.nc",
        "posterior_poisson.nc",
    ]:
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.fixture
def tables(tmp_path, rng):
    X = rng.standard_normal((40, 2))
    binary = (X[:, 0] + rng.logistic(size=40) > 0).astype(int)
    counts = rng.poisson(np.exp(0.5 * X[:, 1]))
    frames = {
        "three_classes": pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": np.arange(40) % 3}),
        "negative": pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": counts - 3}),
        "fractional": pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": counts + 0.5}),
        "binary": pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": binary}),
        "counts": pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": counts}),
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


@pytest.mark.parametrize(
    ("table", "extra", "expected"),
    [
        ("three_classes", ["--family", "logistic"], "must be binary 0/1"),
        ("negative", ["--family", "poisson"], "counts must be >= 0"),
        ("fractional", ["--family", "poisson"], "counts must be integers"),
        ("binary", ["--family", "logistic", "--path", "1,0"], "C must be finite and > 0"),
        ("binary", ["--family", "logistic", "--path", "1,-2"], "C must be finite and > 0"),
        ("counts", ["--family", "poisson", "--path", "0.1,-1"], "alpha must be finite and >= 0"),
        ("binary", ["--family", "logistic", "--solver", "liblinear"], "penalizes the intercept"),
        ("binary", [], "--data, --target and --family go together"),
        ("binary", ["--family", "logistic", "--path", "a,b"], "comma-separated numbers"),
    ],
)
def test_bad_input_gets_one_line_error_exit_2_and_writes_nothing(
    tmp_path, capsys, tables, table, extra, expected
):
    out = tmp_path / "out"
    argv = ["--data", str(tables[table]), "--target", "y", "--out", str(out), *extra]
    assert _cli.run(glm_equivalence.main, argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow  # a fresh interpreter importing PyMC: about 10 s here
def test_command_line_exit_code_is_2_on_bad_input(tmp_path, tables):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.glm_equivalence",
            "--data",
            str(tables["negative"]),
            "--target",
            "y",
            "--family",
            "poisson",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_user_table_becomes_a_standardized_problem_with_its_column_names(tables):
    """--data/--target/--family without the sampler: the table's columns, split and scaled, fit exactly."""
    from models.data import read_csv

    config = glm_equivalence.replace(glm_equivalence.FAST, logistic_path=(0.1, 10.0))
    rngs = np.random.default_rng(config.seed).spawn(2)
    user = read_csv(tables["binary"], "y")
    [problem] = glm_equivalence.make_problems(config, *rngs, user=user, family="logistic")
    assert problem.feature_names == ("a", "b")
    assert len(problem.y) + len(problem.y_test) == 40
    np.testing.assert_allclose(problem.X.mean(axis=0), 0.0, atol=1e-12)  # training statistics
    table, _ = glm_equivalence.path_table(problem._replace(default_map=False), config)
    assert set(table.feature) == {"intercept", "a", "b"}
    errors = glm_equivalence.fit_errors(table)
    assert errors.map_precise.max() <= 1e-9  # newton-cholesky at tol=1e-12 (see test_glm)
