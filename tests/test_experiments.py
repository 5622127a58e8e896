import importlib
import pkgutil
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import run_fast

import experiments
from experiments import BENCHMARKS, EXPERIMENTS, TOOLS, _cli, ridge_equivalence


def test_every_experiment_module_is_registered():
    modules = {
        m.name for m in pkgutil.iter_modules(experiments.__path__) if not m.name.startswith("_")
    }
    assert modules == set(EXPERIMENTS) | set(BENCHMARKS) | set(TOOLS) | {"priorlab"}  # the command
    assert not set(EXPERIMENTS) & set(BENCHMARKS)


def test_listing_names_every_experiment(capsys):
    from experiments.__main__ import main

    assert main(["--names"]) == 0
    assert capsys.readouterr().out.split() == list(EXPERIMENTS)


def write_table(path, frame):
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def good_table(rng):
    X = rng.standard_normal((30, 3))
    return pd.DataFrame(
        {
            "age": X[:, 0],
            "dose": X[:, 1],
            "weight": X[:, 2],
            "response": X @ [1.0, -2.0, 0.5] + rng.standard_normal(30),
        }
    )


def bad_tables(good):
    nan = good.copy()
    nan.loc[3, "dose"] = np.nan
    inf = good.copy()
    inf.loc[3, "dose"] = np.inf
    text = good.copy()
    text["site"] = "north"
    return {
        "missing values in column(s) dose": (nan, "response"),
        "infinite values in column(s) dose": (inf, "response"),
        "non-numeric column(s) site": (text, "response"),
        "no column named 'outcome'": (good, "outcome"),
        "at least 2 rows": (good.iloc[:1], "response"),
    }


@pytest.mark.parametrize("expected", list(bad_tables(pd.DataFrame({"a": [1.0], "dose": [1.0]}))))
def test_bad_tables_get_one_line_error_and_exit_2(tmp_path, capsys, good_table, expected):
    frame, target = bad_tables(good_table)[expected]
    table = write_table(tmp_path / "table.csv", frame)
    out = tmp_path / "out"
    argv = ["--data", str(table), "--target", target, "--out", str(out)]
    assert _cli.run(ridge_equivalence.main, argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--data", "nowhere.csv", "--target", "y"], "no such file"),
        (["--data", "EMPTY", "--target", "y"], "the file is empty"),
        (["--data", "GOOD", "--target", "response", "--alphas", "1,-1"], "finite and >= 0"),
        (["--data", "GOOD"], "--data and --target go together"),
    ],
)
def test_bad_arguments_get_one_line_error_and_exit_2(tmp_path, capsys, good_table, argv, expected):
    (tmp_path / "empty.csv").write_text("")
    good = write_table(tmp_path / "good.csv", good_table)
    argv = [{"EMPTY": str(tmp_path / "empty.csv"), "GOOD": str(good)}.get(a, a) for a in argv]
    out = tmp_path / "out"
    assert _cli.run(ridge_equivalence.main, argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert not out.exists()


def test_command_line_exit_code_is_2_on_bad_input(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.ridge_equivalence",
            "--data",
            str(tmp_path / "x.csv"),
            "--target",
            "y",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr


@pytest.mark.slow
def test_user_table_runs_with_its_column_names(tmp_path, good_table):
    table = write_table(tmp_path / "trial.csv", good_table)
    argv = [
        "--data",
        str(table),
        "--target",
        "response",
        "--alphas",
        "0,1",
    ]
    run_fast(ridge_equivalence.main, tmp_path, *argv)
    path = pd.read_csv(tmp_path / "path.csv")
    assert set(path.feature) == {"intercept", "age", "dose", "weight"}
    assert sorted(set(path.alpha)) == [0.0, 1.0]


SLOW_SMOKE_RUNS = set(BENCHMARKS)
"""Fast runs left to ``make test-all``: the speed benchmarks' (compilation-bound, minutes even when fast)."""


def written_in_docstring(module) -> list[str]:
    """The file names an experiment's docstring says it writes (its ``Writes`` section)."""
    doc = module.__doc__
    section = doc[doc.index("Writes") : doc.index("\nRun")]
    return re.findall(r"``([A-Za-z0-9_]+\.(?:csv|png|nc|json))``", section)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.extended) if name in SLOW_SMOKE_RUNS else name
        for name in [*EXPERIMENTS, *BENCHMARKS]
    ],
)
def test_fast_run_writes_what_its_docstring_says_and_passes_its_checks(name, tmp_path):
    """Every registered experiment and benchmark, at ``--fast``: the shell's checks (:func:`run_fast`), every
    file its docstring lists, its findings, and the content checks of ``tests/test_<name>.py``'s
    ``check_fast_run``, where it has one. Registering a module without a working fast run fails here."""
    module = importlib.import_module(f"experiments.{name}")
    if name == "jax_samplers":  # an optional extra: reported as a skip where it is not installed
        for package in ("jax", "numpyro", "blackjax"):
            pytest.importorskip(package, reason="pip install -e '.[jax]' to run the JAX samplers")
    metadata = run_fast(module.main, tmp_path)
    listed = written_in_docstring(module)
    assert "metadata.json" in listed
    missing = [file for file in listed if not (tmp_path / file).is_file()]
    assert not missing, f"{name}'s docstring lists files its fast run did not write: {missing}"
    assert all((tmp_path / file).stat().st_size > 0 for file in listed)
    assert metadata["figures"] and all(f in listed for f in metadata["figures"])
    assert 2 <= len(metadata["findings"]) <= 4
    assert all(sentence.endswith(".") for sentence in metadata["findings"])
    try:
        tests = importlib.import_module(f"test_{name}")
    except ModuleNotFoundError:
        return
    if hasattr(tests, "check_fast_run"):
        tests.check_fast_run(tmp_path, metadata)
