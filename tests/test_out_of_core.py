"""The out-of-core benchmark (experiments/out_of_core.py): its flags, its disk check and the content of its
fast run. Its library pieces are tested with their modules (tests/test_streaming.py, tests/test_measure.py)."""

import json
import re
from types import SimpleNamespace

import pandas as pd
import pytest

from experiments import _cli, out_of_core
from models.data import DataError


def test_too_little_disk_fails_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(out_of_core.shutil, "disk_usage", lambda _: SimpleNamespace(free=1_000))
    with pytest.raises(
        DataError, match=r"0\.0 GB free .* needs about 0\.2 GB: set TMPDIR"
    ) as error:
        out_of_core.write_table(tmp_path, out_of_core.Config(n_rows=10_000_000, n_features=1))
    assert "\n" not in str(error.value)
    assert not list(tmp_path.iterdir())  # refused before writing anything


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rows", "abc"], "--rows must be a number"),
        (["--rows", "0"], "--rows must be a whole number >= 1"),
        (["--features", "2.5"], "--features must be a whole number >= 1"),
        (["--rows", "5", "--features", "3"], "must exceed the features \\+ 3"),
    ],
)
def test_bad_sizes_fail_with_one_line_exit_2(flags, message, tmp_path, capsys):
    code = _cli.run(out_of_core.main, [*flags, "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert re.search(message, error)


def test_sizes_are_read_from_flags():
    class Args:
        rows, features, rows_per_file = "1e7", "20", "2e7"

    config, _ = out_of_core.read_options(Args, out_of_core.Config())
    # rows_per_file is capped at the table's rows.
    assert (config.n_rows, config.n_features, config.rows_per_file) == (10**7, 20, 10**7)


def check_fast_run(folder, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it, in ``make test-all``)."""
    steps = pd.read_csv(folder / "out_of_core.csv").set_index(["where", "step"])
    timings = pd.read_csv(folder / "timings" / "out_of_core.csv").set_index(["where", "step"])
    expected = [
        ("process", "raw_scan"),
        ("process", "pass"),
        ("cluster", "raw_scan"),
        ("cluster", "pass"),
        ("process", "posterior"),
    ]
    assert list(steps.index) == list(timings.index) == expected
    assert (timings.seconds > 0).all()
    # Worker memory is measured on both cluster steps (Linux), nowhere else.
    assert steps.worker_peak_rise_bytes.notna().tolist() == [False, False, True, True, False]
    assert (steps.worker_peak_bytes.dropna() > 0).all() and (steps.process_peak_bytes > 0).all()
    metrics = metadata["metrics"]
    assert metrics["n_rows"] == out_of_core.FAST.n_rows and metrics["n_files"] == 4
    # Timing metrics go to timings/timings.json, apart from metadata.json (same-seed runs differ there).
    timing = json.loads((folder / "timings" / "timings.json").read_text())["metrics"]
    for name in (
        "pass_speedup_vs_raw_scan",
        "cluster_pass_speedup_vs_raw_scan",
        "seconds_to_posterior",
    ):
        assert timing[name] > 0 and name not in metrics
    assert all(check["passed"] for check in metadata["checks"].values())
    assert {
        "cluster_vs_process_statistics",
        "read_vs_generated_statistics",
        "map_vs_exact_mean",
    } <= set(metadata["checks"])
