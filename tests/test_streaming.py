"""Streaming sufficient statistics (models/streaming.py) and the Ridge twin on them."""

import math
import re
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from experiments import twin as twin_cli
from models import streaming
from models.data import DataError
from models.diagnostics import relative_error
from models.exact import linear_posterior
from models.linear import sufficient_statistics
from models.streaming import stream_statistics

UNIT_ROUNDOFF = 2.0**-53


def entry_error(comoment, reference) -> float:
    """``max |C - C_ref| / sqrt(C_jj C_kk)``: each entry's error on the scale of its columns' spreads."""
    spread = np.sqrt(np.diag(reference))
    return float(np.max(np.abs(comoment - reference) / np.outer(spread, spread)))


def in_memory(X, y, w=None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means and centered co-moments of ``(X, y)`` by NumPy on the whole table (two passes)."""
    D = np.column_stack([X, y])
    w = np.ones(len(y)) if w is None else w
    mean = w @ D / w.sum()
    centered = D - mean
    return mean, (centered * w[:, None]).T @ centered


@pytest.fixture
def badly_scaled(rng):
    """Columns on scales 1e-3 ... 1e3, one of them 1e6 + N(0, 1): ``mean / sd = 1e6``."""
    X = rng.normal(size=(200, 3)) * [1e-3, 1.0, 1e3] + [0.0, 1e6, -5.0]
    y = X @ [1e3, 2.0, 1e-3] + rng.normal(size=200)
    return X, y


@pytest.fixture
def table(rng):
    """A moderately conditioned table with weights, as a DataFrame with a text column streaming must skip."""
    n = 240
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 1.0]
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["y"] = 3.0 + X @ [1.0, -0.2, 4.0] + rng.normal(size=n)
    frame["w"] = rng.gamma(2.0, 0.5, size=n)
    frame["note"] = "text"
    return frame


def write_parts(frame, folder, suffix, parts=3):
    folder.mkdir(exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), parts)):
        path = folder / f"part-{i}{suffix}"
        if suffix == ".parquet":
            frame.iloc[part].to_parquet(path, index=False)
        else:
            frame.iloc[part].to_csv(path, index=False)
    return str(folder / f"part-*{suffix}")


@pytest.mark.parametrize("block_rows", [7, 64])
def test_comoments_within_the_rounding_bound_on_a_badly_scaled_table(badly_scaled, block_rows):
    X, y = badly_scaled
    rows = [[Fraction(v) for v in row] for row in np.column_stack([X, y])]
    k, n = X.shape[1] + 1, len(rows)
    mean = [sum(row[j] for row in rows) / n for j in range(k)]
    exact = np.array(
        [
            [float(sum((row[i] - mean[i]) * (row[j] - mean[j]) for row in rows)) for j in range(k)]
            for i in range(k)
        ]
    )
    blocks = math.ceil(n / block_rows)
    # The module's worst-case bound (b + 3 ceil(log2 K) + 3) u; the second-order term is ~1e-17 here.
    bound = (block_rows + 3 * math.ceil(math.log2(blocks)) + 3) * UNIT_ROUNDOFF
    streamed = stream_statistics((X, y), block_rows=block_rows)
    assert entry_error(streamed.comoment, exact) <= bound
    # The means: the same bound on the scale of each column's spread, plus their own rounding.
    mean = np.array([float(m) for m in mean])
    spread = np.sqrt(np.diag(exact) / n)
    assert np.all(np.abs(streamed.mean - mean) <= bound * spread + 2 * UNIT_ROUNDOFF * np.abs(mean))
    # The table is hard: the uncentered X^T X of models.linear misses the bound many times over (1.2e-4).
    raw = sufficient_statistics(X, y)
    gram = np.block([[raw["xtwx"], raw["xtwy"][:, None]], [raw["xtwy"][None, :], raw["ytwy"]]])
    uncentered = gram[1:, 1:] - np.outer(gram[0, 1:], gram[0, 1:]) / n
    assert entry_error(uncentered, exact) > 1e3 * bound


def test_blocks_merge_in_any_order_to_the_in_memory_statistics(rng, badly_scaled):
    X, y = badly_scaled
    w = rng.gamma(2.0, 0.5, size=len(y))
    w[::17] = 0.0  # rows of weight zero carry nothing
    blocks = list(streaming.array_blocks(X, y, w, block_rows=13))
    forward = streaming.reduce_statistics(blocks)
    shuffled = streaming.reduce_statistics([blocks[i] for i in rng.permutation(len(blocks))])
    running = blocks[-1]
    for block in reversed(blocks[:-1]):
        running = block.merge(running)
    mean, comoment = in_memory(X[w > 0], y[w > 0], w[w > 0])
    for stats in (forward, shuffled, running):
        assert stats.n_rows == np.count_nonzero(w)
        assert stats.weight_sum == pytest.approx(w.sum(), rel=1e-14)  # sums of 200 positive numbers
        assert stats.sum_log_weight == pytest.approx(np.log(w[w > 0]).sum(), rel=1e-12)
        # <= 1e-10 against NumPy's own rounding on the whole table (both are ~1e-15 from exact).
        assert entry_error(stats.comoment, comoment) <= 1e-10
        np.testing.assert_allclose(stats.mean, mean, rtol=1e-14)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_parquet_and_csv_files_stream_to_the_in_memory_statistics(table, tmp_path, suffix):
    pattern = write_parts(table, tmp_path / "parts", suffix)
    features = ["a", "b", "c"]
    # Only the named columns are read: the text column "note" would be refused if it were.
    streamed = stream_statistics(pattern, target="y", features=features, weights="w", block_rows=50)
    reference = stream_statistics(
        (table[features].to_numpy(), table.y.to_numpy()), sample_weight=table.w.to_numpy()
    )
    mean, comoment = in_memory(table[features].to_numpy(), table.y.to_numpy(), table.w.to_numpy())
    assert streamed.feature_names == tuple(features) and streamed.n_rows == len(table)
    # Both within ~1e-15 of exact (CSV is written with every digit and read back exactly).
    assert entry_error(streamed.comoment, comoment) <= 1e-10
    assert entry_error(streamed.comoment, reference.comoment) <= 1e-10
    np.testing.assert_allclose(streamed.mean, mean, rtol=1e-12)


@pytest.mark.slow
def test_dask_collections_and_a_scheduler_stream_to_the_in_memory_statistics(table, tmp_path):
    import dask.array as da
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    numeric = table.drop(columns="note")
    pattern = write_parts(numeric, tmp_path / "parts", ".parquet")
    X, y = numeric[["a", "b", "c", "w"]].to_numpy(), numeric.y.to_numpy()
    _, comoment = in_memory(X, y)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        on_cluster = stream_statistics(pattern, target="y", scheduler=cluster.scheduler_address)
        with Client(cluster):
            frame = stream_statistics(dd.from_pandas(numeric, npartitions=3), target="y")
            arrays = stream_statistics(
                (da.from_array(X, chunks=(70, 2)), da.from_array(y, chunks=50))
            )
    for stats in (on_cluster, frame, arrays):
        assert stats.n_rows == len(y)
        assert entry_error(stats.comoment, comoment) <= 1e-10  # the same sums, another order
    assert on_cluster.feature_names == frame.feature_names == ("a", "b", "c", "w")


def _bad_source(case, table, tmp_path):
    """A pattern or list of files and the target for one bad case."""
    folder = tmp_path / case
    pattern = write_parts(table.drop(columns="note"), folder, ".parquet")
    if case == "missing_file":
        return [str(folder / "part-0.parquet"), str(folder / "absent.parquet")], "y"
    if case == "no_match":
        return str(folder / "nothing-*.parquet"), "y"
    if case == "schemas_differ":
        table.drop(columns=["note", "c"]).to_parquet(folder / "part-9.parquet", index=False)
    if case == "formats_mixed":
        table.to_csv(folder / "extra.csv", index=False)
        return [str(folder / "part-0.parquet"), str(folder / "extra.csv")], "y"
    if case == "text_column":
        pattern = write_parts(table, folder, ".csv")
    if case == "missing_values":
        broken = table.drop(columns="note")
        broken.loc[5, "b"] = np.nan
        pattern = write_parts(broken, folder, ".csv")
    if case == "not_a_table":
        (folder / "notes.txt").write_text("a,b\n")
        return str(folder / "notes.txt"), "y"
    return pattern, "absent" if case == "missing_target" else "y"


BAD_SOURCES = [
    ("missing_file", r"absent\.parquet: no such file"),
    ("no_match", r"no file matches"),
    ("schemas_differ", r"part-9\.parquet: columns differ .*missing: c"),
    ("formats_mixed", r"mix Parquet and CSV"),
    ("text_column", r"non-numeric column\(s\) note"),
    ("missing_values", r"missing, infinite or huge .* column\(s\) b"),
    ("not_a_table", r"must be \.parquet or \.csv"),
    ("missing_target", r"no target column named 'absent'"),
]


@pytest.mark.parametrize(("case", "message"), BAD_SOURCES, ids=[c for c, _ in BAD_SOURCES])
def test_bad_sources_fail_with_one_line(case, message, table, tmp_path):
    source, target = _bad_source(case, table, tmp_path)
    with pytest.raises(DataError, match=message) as error:
        stream_statistics(source, target=target)
    assert "\n" not in str(error.value)


def test_unreachable_scheduler_fails_with_one_line(table, tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "SCHEDULER_TIMEOUT_SECONDS", 1.0)
    pattern = write_parts(table.drop(columns="note"), tmp_path / "parts", ".parquet")
    # Port 9 (discard) has no dask scheduler listening.
    with pytest.raises(DataError, match=r"--scheduler tcp://127.0.0.1:9: cannot connect") as error:
        stream_statistics(pattern, target="y", scheduler="tcp://127.0.0.1:9")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_twin_on_streamed_statistics_matches_ridge_and_the_exact_posterior(
    table, fit_intercept
):
    X, y, w = table[["a", "b", "c"]].to_numpy(), table.y.to_numpy(), table.w.to_numpy()
    stats = stream_statistics((X, y), sample_weight=w, block_rows=37)
    twin = streaming.ridge_twin(stats, ridge_alpha=2.5, fit_intercept=fit_intercept, draws=10)
    ridge = Ridge(alpha=2.5, fit_intercept=fit_intercept, solver="svd").fit(X, y, sample_weight=w)
    reference = np.r_[ridge.intercept_, ridge.coef_] if fit_intercept else ridge.coef_
    # Newton on the statistics against an SVD of the rows: exact linear algebra both (measured ~1e-14).
    assert relative_error(twin.map_coef, reference) <= 1e-8
    assert all(check["passed"] for check in twin.checks.values())
    exact = linear_posterior(X, y, ridge_alpha=2.5, sample_weight=w, fit_intercept=fit_intercept)
    assert twin.exact.df == exact.df and twin.names[-3:] == ("x0", "x1", "x2")
    # The same closed form through a square root of the statistics (cond(X^T X) ~ 1e4 here).
    assert relative_error(twin.exact.mean, exact.mean) <= 1e-10
    assert relative_error(twin.exact.cov, exact.cov) <= 1e-10
    assert twin.exact.noise_rate == pytest.approx(exact.noise_rate, rel=1e-10)


@pytest.mark.extended
def test_nuts_on_streamed_statistics_matches_the_exact_posterior(table):
    X, y = table[["a", "b", "c"]].to_numpy(), table.y.to_numpy()
    stats = stream_statistics((X, y), block_rows=64)
    twin = streaming.ridge_twin(stats, ridge_alpha=2.5, nuts=True, draws=1000, tune=1000, seed=3)
    # Convergence, and every posterior mean within 5 MCSE of the exact one (ridge_twin's own checks).
    assert all(check["passed"] for check in twin.checks.values()), twin.checks


def test_command_streams_parquet_parts_for_the_ridge_twin(table, tmp_path, capsys):
    pattern = write_parts(table.drop(columns="note"), tmp_path / "data", ".parquet")
    out = tmp_path / "out"
    argv = ["--data", pattern, "--target", "y", "--weights", "w", "--alpha", "2.5", "--fast"]
    assert twin_cli._cli.run(twin_cli.main, [*argv, "--out", str(out)]) == 0
    assert "all 1 checks passed" in capsys.readouterr().out
    coefficients = pd.read_csv(out / "coefficients.csv", index_col="coefficient")
    X, y, w = table[["a", "b", "c"]].to_numpy(), table.y.to_numpy(), table.w.to_numpy()
    ridge = Ridge(alpha=2.5, solver="svd").fit(X, y, sample_weight=w)
    # Exact linear algebra on statistics read from Parquet without loss.
    assert relative_error(coefficients["map"], np.r_[ridge.intercept_, ridge.coef_]) <= 1e-8
    assert list(coefficients.index) == ["intercept", "a", "b", "c"]
    assert (out / "posterior.nc").stat().st_size > 0 and (out / "metadata.json").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--estimator", "lasso"], r"only the Ridge twin streams, for now"),
        (["--target", "absent"], r"no target column named 'absent'"),
        (["--scheduler", "tcp://127.0.0.1:9"], r"--scheduler tcp://127.0.0.1:9: cannot connect"),
    ],
)
def test_command_refuses_bad_streamed_runs_with_one_line_exit_2(
    flags, message, table, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(streaming, "SCHEDULER_TIMEOUT_SECONDS", 1.0)
    pattern = write_parts(table.drop(columns="note"), tmp_path / "data", ".parquet")
    out = tmp_path / "out"
    argv = ["--data", pattern, "--target", "y", *flags, "--fast", "--out", str(out)]
    assert twin_cli._cli.run(twin_cli.main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and re.search(message, error), error
    assert not out.exists()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("collinear_flat_prior", r"needs linearly independent columns"),
        ("three_rows", r"3 rows leave 2 degrees of freedom"),
    ],
)
def test_ridge_twin_refuses_what_the_statistics_cannot_answer(case, message, rng):
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=100)
    if case == "collinear_flat_prior":
        stats, alpha = stream_statistics((np.column_stack([X, X[:, 0] - X[:, 2]]), y)), 0.0
    else:
        stats, alpha = stream_statistics((X[:3], y[:3])), 1.0
    with pytest.raises(DataError, match=message):
        streaming.ridge_twin(stats, ridge_alpha=alpha)


# The out-of-core benchmark's pieces (experiments/out_of_core.py) ---------------------------------------

SIMULATED = dict(
    seed=20261130, n_rows=2_500, n_features=3, rows_per_file=1_000, write_rows=300, noise_sd=2.0
)


def test_simulated_table_is_written_block_by_block_and_reads_back_to_the_generated_statistics(
    tmp_path,
):
    paths, generated = streaming.write_simulated_table(tmp_path, **SIMULATED)
    # 2,500 rows in files of 1,000: the last file holds the rest.
    assert [p.name for p in paths] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert generated.feature_names == ("x0", "x1", "x2")
    assert streaming.scan_files(paths, ["x0", "x1", "x2", "y"]) == 2_500 == generated.n_rows
    read = stream_statistics([str(p) for p in paths], target="y", block_rows=256)
    assert read.feature_names == ("x0", "x1", "x2")
    # Other blocks (300 rows as generated, 256 as read), the same rows: each within its bound of exact,
    # with at most n / b whole blocks and one partial block per file.
    bound = streaming.rounding_bound(256, math.ceil(2_500 / 256) + 3)
    write_bound = streaming.rounding_bound(300, math.ceil(2_500 / 300) + 3)
    assert streaming.statistics_gap(read, generated) <= bound + write_bound
    # The gap sees other rows: two files of three are far outside the bound.
    fewer = stream_statistics([str(p) for p in paths[:2]], target="y")
    assert streaming.statistics_gap(fewer, generated) > 1e6 * (bound + write_bound)


def test_the_same_seed_writes_the_same_simulated_table_and_another_seed_another(tmp_path):
    first, second, third = (tmp_path / name for name in ("a", "b", "c"))
    for folder, seed in ((first, 1), (second, 1), (third, 2)):
        folder.mkdir()
        streaming.write_simulated_table(folder, **(SIMULATED | {"seed": seed}))
    read = [pd.read_parquet(folder / "part-00001.parquet") for folder in (first, second, third)]
    pd.testing.assert_frame_equal(read[0], read[1])
    assert not read[0].equals(read[2])


def test_rounding_bound_is_the_modules_formula():
    # (b + 3 ceil(log2 K) + 3) u, plus 2 u for the means' own rounding.
    assert streaming.rounding_bound(100, 103) == (100 + 3 * math.ceil(math.log2(103)) + 5) * (
        2.0**-53
    )


def test_ridge_direct_solve_is_scikit_learns_ridge(rng):
    X = rng.normal(size=(300, 4)) * [1.0, 5.0, 0.2, 3.0] + [2.0, -1.0, 0.0, 10.0]
    y = 1.0 + X @ [0.5, -0.3, 2.0, 0.1] + rng.normal(size=300)
    stats = streaming.stream_statistics((X, y), block_rows=64)
    ridge = Ridge(alpha=3.0, solver="cholesky").fit(X, y)
    expected = np.concatenate([[ridge.intercept_], ridge.coef_])
    # Two direct solves of the same 4 x 4 system (condition ~1e3): agreement to ~1e-13.
    np.testing.assert_allclose(
        streaming.ridge_direct_solve(stats, 3.0), expected, rtol=1e-10, atol=1e-12
    )


@pytest.mark.slow
def test_raw_scan_on_a_local_cluster_reads_every_row_of_every_file(tmp_path):
    paths, _ = streaming.write_simulated_table(tmp_path, **SIMULATED)
    with streaming.local_cluster(1) as client:
        assert streaming.scan_files(paths, ["x0", "y"], block_rows=256, client=client) == 2_500
        assert len(client.scheduler_info()["workers"]) == 1


def test_read_ahead_keeps_the_order_and_raises_where_the_failure_is():
    def items():
        yield from range(5)
        raise DataError("block 5 is broken")

    seen = []
    with pytest.raises(DataError, match="block 5 is broken"):
        for item in streaming.read_ahead(items()):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_parquet_batches_convert_as_pandas_would(tmp_path, rng):
    """Integers, booleans and floats go to NumPy column by column, as pandas' ``to_numpy(float)`` would;
    a null is a missing value, and a text column is refused by name, as before."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 500
    table = pa.table(
        {
            "count": pa.array(rng.integers(-1000, 1000, size=n)),
            "flag": pa.array(rng.random(n) < 0.5),
            "x": pa.array(rng.normal(size=n)),
            "y": pa.array(rng.normal(size=n)),
            "w": pa.array(rng.gamma(2.0, size=n)),
        }
    )
    pq.write_table(table, tmp_path / "ok.parquet")
    features = ("count", "flag", "x")
    blocks = list(
        streaming.file_block_arrays(tmp_path / "ok.parquet", features, "y", "w", block_rows=128)
    )
    frame = table.to_pandas()
    np.testing.assert_array_equal(
        np.vstack([block for block, _, _ in blocks]),
        frame[[*features, "y"]].to_numpy(dtype=float),
    )
    np.testing.assert_array_equal(np.concatenate([w for _, w, _ in blocks]), frame.w.to_numpy())
    with_null = table.set_column(2, "x", pa.array([None, *rng.normal(size=n - 1)]))
    pq.write_table(with_null, tmp_path / "null.parquet")
    with pytest.raises(DataError, match=r"missing, infinite or huge .* column\(s\) x"):
        streaming.stream_statistics(tmp_path / "null.parquet", target="y", features=features)
    text = table.append_column("note", pa.array(["a"] * n))
    pq.write_table(text, tmp_path / "text.parquet")
    with pytest.raises(DataError, match=r"non-numeric column\(s\) note"):
        streaming.stream_statistics(tmp_path / "text.parquet", target="y", features=["x", "note"])
