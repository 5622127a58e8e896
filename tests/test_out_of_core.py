"""The out-of-core benchmark (experiments/out_of_core.py): its table, its helpers and the content of its fast run."""

import json
import math
import os
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from experiments import _cli, out_of_core
from models import streaming
from models.data import DataError

SMALL = out_of_core.Config(
    n_rows=2_500, n_features=3, rows_per_file=1_000, write_rows=300, block_rows=256
)


def test_table_is_written_block_by_block_and_reads_back_to_the_generated_statistics(tmp_path):
    paths, generated = out_of_core.write_table(tmp_path, SMALL)
    # 2,500 rows in files of 1,000: the last file holds the rest.
    assert [p.name for p in paths] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    columns = [*out_of_core.feature_names(3), "y"]
    assert streaming.scan_files(paths, columns) == SMALL.n_rows == generated.n_rows
    read = streaming.stream_statistics(
        [str(p) for p in paths], target="y", block_rows=SMALL.block_rows
    )
    assert read.feature_names == ("x0", "x1", "x2")
    bound = out_of_core.rounding_bound(SMALL.block_rows, SMALL.n_rows, len(paths))
    write_bound = out_of_core.rounding_bound(SMALL.write_rows, SMALL.n_rows, len(paths))
    # Other blocks (300 rows as generated, 256 as read), the same rows: each within its bound of exact.
    assert out_of_core.statistics_gap(read, generated) <= bound + write_bound


def test_the_same_seed_writes_the_same_table_and_another_seed_another(tmp_path):
    first, second, third = (tmp_path / name for name in ("a", "b", "c"))
    for folder, seed in ((first, 1), (second, 1), (third, 2)):
        folder.mkdir()
        out_of_core.write_table(folder, replace(SMALL, seed=seed))
    read = [pd.read_parquet(folder / "part-00001.parquet") for folder in (first, second, third)]
    pd.testing.assert_frame_equal(read[0], read[1])
    assert not read[0].equals(read[2])


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


def test_ridge_from_statistics_is_scikit_learns_ridge(rng):
    X = rng.normal(size=(300, 4)) * [1.0, 5.0, 0.2, 3.0] + [2.0, -1.0, 0.0, 10.0]
    y = 1.0 + X @ [0.5, -0.3, 2.0, 0.1] + rng.normal(size=300)
    stats = streaming.stream_statistics((X, y), block_rows=64)
    ridge = Ridge(alpha=3.0, solver="cholesky").fit(X, y)
    expected = np.concatenate([[ridge.intercept_], ridge.coef_])
    # Two direct solves of the same 4 x 4 system (condition ~1e3): agreement to ~1e-13.
    np.testing.assert_allclose(
        out_of_core.ridge_from_statistics(stats, 3.0), expected, rtol=1e-10, atol=1e-12
    )


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux peak memory only")
def test_peak_memory_of_a_process_by_pid_sees_an_allocation():
    pid = os.getpid()
    baseline = out_of_core.reset_process_peak(pid)
    block = np.ones(50_000_000 // 8)  # 50 MB, touched
    rise = out_of_core.process_peak(pid) - baseline
    del block
    # The allocation itself, give or take the interpreter's own few MB.
    assert 40e6 <= rise <= 80e6


def test_rounding_bound_is_the_modules_formula():
    # (b + 3 ceil(log2 K) + 3) u, plus 2 u for the means; K = 100 blocks + 1 per file.
    assert out_of_core.rounding_bound(100, 10_000, 3) == (
        100 + 3 * math.ceil(math.log2(103)) + 5
    ) * (2.0**-53)


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
