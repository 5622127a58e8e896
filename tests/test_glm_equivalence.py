import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from experiments import _cli, glm_equivalence
from models import glm_data
from models.diagnostics import relative_error

METRICS = [
    "logistic_max_rel_err_map_precise",
    "logistic_max_rel_err_map_default",
    "poisson_max_rel_err_map_precise",
    "poisson_max_rel_err_map_default",
]


def check_fast_run(folder, metadata):
    """The fast run's paths: both families on their main data sets, find_MAP on each, MAP = scikit-learn."""
    assert set(METRICS) <= set(metadata["metrics"])
    assert {"standardization", "reference"} <= set(metadata)
    assert metadata["config"]["family"] is None and metadata["config"]["data"] == "bundled"
    path = pd.read_csv(folder / "path.csv")
    assert list(path.columns[:4]) == ["dataset", "family", "penalty", "feature"]
    assert {"sklearn", "sklearn_lbfgs", "map_default", "map_precise"} <= set(path.columns)
    # The fast run leaves out the extra counts (weighted counts, linnerud).
    assert set(path.dataset) == {"breast_cancer", "counts"}
    assert path.map_default.notna().all()  # find_MAP runs on the first data set of each family
    for (dataset, penalty), fit in path.groupby(["dataset", "penalty"]):
        # The target (newton-cholesky at tol=1e-12 stops ~1e-11 from the mode).
        assert relative_error(fit.map_precise, fit.sklearn) <= 1e-6, (dataset, penalty)
        assert list(fit.feature)[0] == "intercept"


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
    user = read_csv(tables["binary"], "y")
    data = glm_data.from_table(user, "logistic", np.random.default_rng(config.seed))
    assert data.feature_names == ("a", "b")
    assert len(data.y) + len(data.y_test) == 40
    np.testing.assert_allclose(data.X.mean(axis=0), 0.0, atol=1e-12)  # training statistics
    table = glm_equivalence.path_table(data, config.logistic_path, config, default_map=False)
    assert set(table.feature) == {"intercept", "a", "b"}
    assert table.map_default.isna().all()
    errors = glm_equivalence.fit_errors(table)
    assert errors.map_precise.max() <= 1e-9  # newton-cholesky at tol=1e-12 (see test_glm)


@pytest.mark.slow  # compiles the twin and runs find_MAP twice: about 10 s here
def test_user_table_run_records_its_family_and_fits_only_the_table(tmp_path, tables):
    out = tmp_path / "out"
    argv = ["--data", str(tables["binary"]), "--target", "y", "--family", "logistic"]
    assert glm_equivalence.main([*argv, "--path", "0.1,10", "--out", str(out)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["config"]["family"] == "logistic"
    assert metadata["config"]["data"] == "binary.csv"
    assert metadata["config"]["logistic_path"] == [0.1, 10.0]
    assert set(metadata["metrics"]) >= {"logistic_max_rel_err_map_precise", "n_path_fits"}
    assert not any(name.startswith("poisson") for name in metadata["metrics"])
    path = pd.read_csv(out / "path.csv")
    assert set(path.dataset) == {"binary"} and sorted(set(path.penalty)) == [0.1, 10.0]
