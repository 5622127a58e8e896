"""Hostile input: no silent wrong answer, no traceback, one clear line, results that survive a crash.

Each test here failed before its fix (the robustness issue's list): a wrong answer given silently, a traceback
where one line belongs, or a reasonable input refused.
"""

import fcntl
import json
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import xarray as xr
from sklearn.linear_model import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    MultiTaskLasso,
    PoissonRegressor,
    Ridge,
    TweedieRegressor,
)
from sklearn.pipeline import Pipeline

from experiments import _cli, glm_equivalence, ridge_equivalence
from experiments import inspect as inspect_cli
from experiments import twin as twin_cli
from models import data as datasets
from models import glm_data
from models.data import DataError
from models.fit import sample_nuts_retrying
from models.linear import SUFFSTAT_ROWS, likelihood_for
from models.results import read_posterior, result_set, write_csv
from models.twin import fit_twin

SHORT = dict(draws=200, tune=200, chains=2)
"""NUTS settings for tests of the MAP and of the plumbing (the posterior is checked elsewhere)."""


@pytest.fixture
def table(rng):
    n = 40
    X = pd.DataFrame(rng.standard_normal((n, 3)), columns=["a", "b", "c"])
    eta = X.to_numpy() @ np.array([1.0, -0.5, 0.2])
    return X, eta + rng.standard_normal(n), eta


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ---- silent wrong answers -------------------------------------------------------------------------------


def test_predict_matches_dataframe_columns_by_name(table):
    X, y, _ = table
    twin = fit_twin(Ridge(alpha=1.0), X, y)
    expected = twin.predict(X)
    reordered = twin.predict(X[["c", "a", "b"]].assign(extra=1.0))
    pd.testing.assert_frame_equal(reordered, expected)
    with pytest.raises(DataError, match="lack column.*c") as error:
        twin.predict(X[["a", "b"]])
    one_line(error)
    with pytest.raises(DataError, match="NaN or infinite.*row 2"):
        twin.predict(X.mask(np.isin(X.index, [2])[:, None] & np.ones((1, 3), bool)))


def test_zero_weights_leave_their_rows_out(table):
    X, y, _ = table
    weights = np.ones(len(y))
    weights[:5] = 0.0
    weighted = fit_twin(Ridge(alpha=1.0), X, y, sample_weight=weights)
    dropped = fit_twin(Ridge(alpha=1.0), X.iloc[5:], y[5:])
    assert all(check["passed"] for check in weighted.checks.values())
    # Zero weights drop out of every sum: rounding only (measured bitwise equal).
    np.testing.assert_allclose(weighted.summary(), dropped.summary(), rtol=1e-12)


@pytest.mark.parametrize(
    "estimator",
    [
        pytest.param(Lasso(alpha=0.1, tol=1e-10, max_iter=100_000), id="Lasso"),
        pytest.param(LogisticRegression(C=1.0, tol=1e-10), id="logistic"),
        pytest.param(
            PoissonRegressor(alpha=0.1, solver="newton-cholesky", tol=1e-10), id="Poisson"
        ),
    ],
)
def test_zero_weights_in_sampled_twins_keep_the_map(estimator, table, rng):
    X, y, eta = table
    if isinstance(estimator, LogisticRegression):
        y = (eta + rng.logistic(size=len(y)) > 0).astype(float)
    elif isinstance(estimator, PoissonRegressor):
        y = rng.poisson(np.exp(eta / 2)).astype(float)
    weights = np.ones(len(y))
    weights[:6] = 0.0
    fit = fit_twin(estimator, X, y, sample_weight=weights, **SHORT)
    assert fit.checks["map_vs_reference"]["passed"], fit.checks
    assert fit.checks["map_vs_estimator"]["passed"], fit.checks
    assert fit.draws.std(axis=0).min() > 0  # a posterior, not a point


def write_table(frame: pd.DataFrame, path, **kwargs):
    frame.to_csv(path, **kwargs)
    return path


def test_a_saved_index_column_is_dropped_and_an_unnamed_column_refused(table, tmp_path, capsys):
    X, y, _ = table
    frame = X.assign(y=y)
    read = datasets.read_csv(write_table(frame, tmp_path / "index.csv"), "y")
    assert read.feature_names == ("a", "b", "c")
    assert "dropped the unnamed first column" in capsys.readouterr().err
    path = tmp_path / "unnamed.csv"
    path.write_text(frame.to_csv(index=False).replace("a,b,c,y", "a,,c,y", 1))
    with pytest.raises(DataError, match="column\\(s\\) 2 have no name") as error:
        datasets.read_csv(path, "y")
    one_line(error)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "0", "--rows", "4"], "leaves 0 residual degrees of freedom"),
        (["--alpha", "0", "--collinear"], "linearly independent columns \\(rank 3 < 4"),
        (["--alpha", "0", "--rows", "3"], "linearly independent columns \\(4 features for 3"),
    ],
)
def test_least_squares_without_a_finite_posterior_is_refused(args, message, table):
    X, y, _ = table
    if "--collinear" in args:
        X = X.assign(d=X.a + X.b)
    if "--rows" in args:
        rows = int(args[args.index("--rows") + 1])
        X = X.assign(d=X.a**2) if rows == 3 else X
        X, y = X.iloc[:rows], y[:rows]
    with pytest.raises(DataError, match=message) as error:
        fit_twin(Ridge(alpha=0.0), X, y)
    one_line(error)


# ---- one line where a traceback was -------------------------------------------------------------------


@pytest.fixture
def csv_path(table, tmp_path):
    X, y, _ = table
    return write_table(X.assign(y=y), tmp_path / "table.csv", index=False)


def run_cli(main, argv, capsys):
    try:
        code = _cli.run(main, [str(a) for a in argv])
    except SystemExit as exit:  # argparse's own errors: one line, exit code 2
        code = exit.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.strip().splitlines()[-1] if captured.err.strip() else ""


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("seed", "--seed: must be in \\[0, 2\\*\\*32\\), got -1"),
        ("out_file", "exists and is not a folder"),
        ("out_under_file", "is a file, not a folder"),
        ("huge_y", "values beyond 1e\\+100.*column\\(s\\) y"),
        ("huge_alpha", "alpha = 1e\\+300 is beyond"),
        ("inf_y", "infinite values in column\\(s\\) y"),
        ("folder", "is a folder, not a CSV file"),
        ("header_only", "a header but no rows"),
        ("semicolon", "looks ';'-delimited"),
        ("binary", "not a readable CSV table"),
        ("alpha_text", "alpha.*'abc'|invalid float value"),
    ],
)
def test_twin_command_bad_input_is_one_line_before_any_fit(
    case, message, table, csv_path, tmp_path, capsys
):
    X, y, _ = table
    out = tmp_path / "out"
    data, flags = csv_path, ["--alpha", "1"]
    if case == "seed":
        flags += ["--seed", "-1"]
    elif case == "out_file":
        out = tmp_path / "file"
        out.write_text("x")
    elif case == "out_under_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "sub"
    elif case == "huge_y":
        data = write_table(X.assign(y=y * 1e300), tmp_path / "huge.csv", index=False)
    elif case == "huge_alpha":
        flags = ["--alpha", "1e300"]
    elif case == "inf_y":
        data = write_table(
            X.assign(y=np.where(np.arange(len(y)) == 3, np.inf, y)), tmp_path / "i.csv", index=False
        )
    elif case == "folder":
        data = tmp_path / "folder.csv"
        data.mkdir()
    elif case == "header_only":
        data = tmp_path / "header.csv"
        data.write_text("a,b,c,y\n")
    elif case == "semicolon":
        data = write_table(X.assign(y=y), tmp_path / "semi.csv", index=False, sep=";")
    elif case == "binary":
        data = tmp_path / "binary.csv"
        data.write_bytes(bytes(range(256)) * 10)
    elif case == "alpha_text":
        flags = ["--alpha", "abc"]
    code, last = run_cli(
        twin_cli.main, ["--data", data, "--target", "y", "--out", out, *flags], capsys
    )
    assert code == 2 and re.search(message, last), last
    assert not (out / "metadata.json").exists()


def test_negative_values_reach_the_option_own_check(capsys, tmp_path, csv_path):
    argv = ["--fast", "--data", csv_path, "--target", "y", "--family", "logistic", "--path", "-1,1"]
    code, last = run_cli(glm_equivalence.main, [*argv, "--out", tmp_path / "o"], capsys)
    expected = "error: C must be finite and > 0, got -1 (every point of a path is a Normal prior's variance)"
    assert code == 2 and last == expected, last


def test_inspect_plots_a_wide_matrix_valued_posterior_with_a_text_variable(tmp_path, rng, capsys):
    posterior = xr.Dataset(
        {
            "beta": (("chain", "draw", "feature"), rng.standard_normal((2, 50, 45))),
            "W": (("chain", "draw", "i", "j"), rng.standard_normal((2, 50, 2, 3))),
            "label": (("chain", "draw"), np.full((2, 50), "x")),
        }
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 50), bool))})
    path = tmp_path / "posterior.nc"
    xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats}).to_netcdf(
        path, engine="h5netcdf"
    )
    code = _cli.run(inspect_cli.main, [str(path), "--plots", str(tmp_path / "plots")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "left out non-numeric variable(s) label" in err
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "forest.png",
        "pair.png",
        "rank.png",
        "trace.png",
    ]
    flat = inspect_cli.flattened(read_posterior(path))
    assert inspect_cli.n_scalars(flat) == 45 + 6
    assert list(flat["W"]["W_index"].values) == ["0,0", "0,1", "0,2", "1,0", "1,1", "1,2"]
    assert inspect_cli.n_scalars(inspect_cli.first_scalars(flat, 40)) == 40


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (Ridge(alpha="abc"), "alpha must be a number, got 'abc'"),
        (Pipeline([("nothing", "passthrough")]), "no estimator"),
        (MultiTaskLasso(), "one coefficient vector per target"),
        (TweedieRegressor(power=0.5), r"power 0.5 in \(0, 1\): no distribution"),
        (Ridge(alpha=0.0), "constant column.*k"),
    ],
)
def test_api_bad_settings_are_one_line(estimator, message, table):
    X, y, _ = table
    with pytest.raises(DataError, match=message) as error:
        fit_twin(estimator, X.assign(k=1.0), y)
    one_line(error)


# ---- reasonable input that was refused ----------------------------------------------------------------


class MyRidge(Ridge):
    """A user's subclass, with nothing changed."""


@pytest.mark.parametrize(
    "prepare",
    [
        pytest.param(lambda X, y: (LinearRegression(), X, y), id="LinearRegression"),
        pytest.param(lambda X, y: (MyRidge(alpha=2.0), X, y), id="subclass"),
        pytest.param(lambda X, y: (Ridge(alpha=2.0), X, y[:, None]), id="y_n_by_1"),
        pytest.param(
            lambda X, y: (Ridge(alpha=2.0), scipy.sparse.csr_matrix(X.to_numpy()), y), id="sparse_X"
        ),
        pytest.param(lambda X, y: (Ridge(alpha=2.0), X.astype(object), y), id="object_columns"),
        pytest.param(lambda X, y: (Ridge(alpha=2.0), X.assign(k=1.0), y), id="constant_column"),
    ],
)
def test_reasonable_linear_inputs_are_accepted(prepare, table):
    X, y, _ = table
    estimator, features, target = prepare(X, y)
    fit = fit_twin(estimator, features, target)
    assert all(check["passed"] for check in fit.checks.values()), fit.checks
    if isinstance(estimator, LinearRegression):  # least squares: the exact mean is OLS
        ols = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0]
        np.testing.assert_allclose(fit.exact.mean, ols, rtol=1e-10)  # two lstsq solves: 1.6e-15


@pytest.mark.extended  # about 25 s each: make test-all, keeping make test within 5 minutes
def test_string_labels_and_cross_validated_estimators(table, rng):
    X, y, eta = table
    labels = np.where(eta + rng.logistic(size=len(y)) > 0, "yes", "no")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = [
            (LogisticRegression(C=1.0, tol=1e-10), labels),
            (LogisticRegressionCV(Cs=3, solver="newton-cholesky", tol=1e-10), labels),
            (ElasticNetCV(l1_ratio=[0.5, 0.9], tol=1e-10, max_iter=100_000), y),
            (
                TweedieRegressor(
                    power=1, alpha=0.1, link="log", solver="newton-cholesky", tol=1e-10
                ),
                rng.poisson(np.exp(eta / 2)).astype(float),
            ),
        ]
        for estimator, target in cases:
            fit = fit_twin(estimator, X, target, **SHORT)
            assert fit.checks["map_vs_reference"]["passed"], (estimator, fit.checks)
            if isinstance(estimator, LogisticRegression):
                assert fit.positive_class == "yes"


def test_glm_equivalence_takes_any_two_labels_as_the_twin_does(table, rng):
    X, _, eta = table
    labels = np.where(eta + rng.logistic(size=len(eta)) > 0, 3.0, 1.0)
    user = datasets.Dataset("t", X.to_numpy(), labels, ("a", "b", "c"), 1.0)
    problem = glm_data.from_table(user, "logistic", np.random.default_rng(0))
    assert set(np.unique(problem.y)) == {0.0, 1.0}
    assert set(np.unique(problem.y_test)) == {0.0, 1.0}


def test_least_squares_is_left_off_the_ridge_path_where_it_has_no_posterior(table):
    X, y, _ = table
    ok = datasets.Dataset("t", X.to_numpy(), y, ("a", "b", "c"), 1.0)
    assert ridge_equivalence.least_squares_exists(ok)
    constant = ok._replace(X=np.column_stack([ok.X, np.ones(len(y))]))
    assert not ridge_equivalence.least_squares_exists(constant)
    wide = ok._replace(X=ok.X[:4], y=y[:4])
    assert not ridge_equivalence.least_squares_exists(wide)


# ---- results that survive a crash ----------------------------------------------------------------------


def test_result_set_replaces_the_whole_folder_or_nothing(tmp_path):
    out = tmp_path / "exp"
    with result_set(out) as folder:
        write_csv(pd.DataFrame({"a": [1]}), folder / "old.csv")
        write_csv(pd.DataFrame({"a": [1]}), folder / "stale.csv")
    (out / "user_table").mkdir()
    (out / "user_table" / "keep.csv").write_text("a\n1\n")

    with pytest.raises(KeyboardInterrupt), result_set(out) as folder:
        write_csv(pd.DataFrame({"a": [2]}), folder / "old.csv")
        raise KeyboardInterrupt
    assert pd.read_csv(out / "old.csv").a.item() == 1  # the old set, whole
    assert (out / "stale.csv").exists()

    with result_set(out) as folder:
        write_csv(pd.DataFrame({"a": [3]}), folder / "old.csv")
    assert sorted(p.name for p in out.iterdir()) == ["old.csv", "user_table"]  # stale file gone
    assert pd.read_csv(out / "old.csv").a.item() == 3
    assert (out / "user_table" / "keep.csv").exists()  # another table's results kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # no staging or lock left


def test_a_second_writer_is_refused_with_one_line(tmp_path):
    out = tmp_path / "exp"
    with open(tmp_path / ".exp.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DataError, match="another run is writing there now") as error:
            with result_set(out):
                pass
    one_line(error)
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused_before_any_fit(tmp_path, csv_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    argv = ["--data", csv_path, "--target", "y", "--alpha", "1", "--out", folder / "x"]
    code, last = run_cli(twin_cli.main, argv, capsys)
    assert code == 2 and "is not writable" in last, last


# ---- sampling that adapts before it reports divergences -----------------------------------------------


def test_a_run_with_divergences_is_sampled_again_with_smaller_steps():
    import pymc as pm

    from models.fit import compile_nuts

    with pm.Model() as funnel:  # Neal's funnel: divergences at nutpie's default step size
        log_scale = pm.Normal("log_scale", 0.0, 3.0)
        pm.Normal("x", 0.0, pm.math.exp(log_scale / 2), shape=4)
    idata, note = sample_nuts_retrying(compile_nuts(funnel), seed=1, draws=300, tune=300)
    assert re.fullmatch(
        r"\d+ divergent transitions at target_accept 0.8: sampled again at 0.95", note
    )
    first = int(note.split()[0])
    assert int(idata["sample_stats"]["diverging"].sum()) < first


@pytest.mark.extended  # about 25 s each: make test-all, keeping make test within 5 minutes
def test_a_large_table_is_fitted_through_sufficient_statistics(tmp_path, rng, capsys):
    """Above SUFFSTAT_ROWS rows the path uses the O(p**2) likelihood; its MAP still equals Ridge and the
    exact posterior to the experiment's 1e-8."""
    n = SUFFSTAT_ROWS + 2_000
    X = rng.standard_normal((n, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(
        y=X @ [1.0, -0.5, 0.2] + rng.standard_normal(n)
    )
    path = write_table(frame, tmp_path / "big.csv", index=False)
    table = datasets.read_csv(path, "y")
    assert likelihood_for(len(table.y)) == "suffstat"
    argv = ["--fast", "--data", path, "--target", "y", "--out", tmp_path / "out"]
    code, _ = run_cli(ridge_equivalence.main, argv, capsys)
    checks = json.loads((tmp_path / "out" / "metadata.json").read_text())["checks"]
    assert code == 0 and checks["precise_map_vs_ridge"]["passed"], checks


@pytest.mark.parametrize("target", ["constant", "exact"])
def test_a_target_without_noise_is_refused_under_the_scale_free_prior(target):
    """Jeffreys' noise prior needs residuals: a constant or exactly fitted y gets one line, no posterior."""
    X = np.random.default_rng(0).standard_normal((30, 3))
    y = np.full(30, 2.0) if target == "constant" else X @ [1.0, 2.0, 3.0] + 1.0
    with pytest.raises(DataError, match="fitted exactly") as error:
        fit_twin(Ridge(alpha=0.0 if target == "exact" else 1.0).fit(X, y), X, y)
    one_line(error)


@pytest.mark.parametrize("rows", [2, 3])
def test_too_few_rows_for_finite_posterior_sds_are_refused_at_any_alpha(rows):
    """Jeffreys' prior with alpha > 0: a Student-t with n - 1 degrees of freedom, finite SDs beyond 2."""
    X = np.arange(rows, dtype=float)[:, None]
    y = np.array([0.3, 1.9, 4.2][:rows])
    with pytest.raises(DataError, match="finite only with more than 2") as error:
        fit_twin(Ridge(alpha=1.0), X, y)
    one_line(error)
    fit = fit_twin(Ridge(alpha=1.0), np.arange(4.0)[:, None], np.array([0.3, 1.9, 4.2, 5.1]))
    assert np.all(np.isfinite(fit.exact.sd))  # 3 degrees of freedom: finite


def test_an_elasticnet_setting_that_is_no_number_gets_one_line(table):
    X, y, _ = table
    with pytest.raises(DataError) as error:
        fit_twin(ElasticNet(l1_ratio=None), X, y)
    one_line(error)
