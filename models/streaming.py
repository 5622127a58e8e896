"""Streaming sufficient statistics: the linear twin's data summarized block by block, from any source.

The Gaussian likelihood of the linear twin (:mod:`models.linear`) depends on the data only through the
weighted means of the columns and their centered co-moments,

``W = sum w_i``, ``mean = sum w_i d_i / W``, ``C = sum w_i (d_i - mean)(d_i - mean)^T``, ``d_i = (x_i, y_i)``,

with the row count ``n`` and ``sum log w_i``. :class:`SufficientStatistics` holds them for one block of rows;
:meth:`SufficientStatistics.merge` combines two blocks exactly (the pairwise update of Chan, Golub and LeVeque,
1979), so blocks can be summarized anywhere (a loop over Parquet batches, CSV chunks, dask workers) and reduced
in any order. :func:`stream_statistics` is the one entry point for NumPy arrays, Parquet or CSV files, dask
collections and a dask.distributed scheduler.

Error bound
    Each block is summarized in two passes (its mean, then products of the centered rows, with the mean's own
    rounding corrected); blocks are merged in a balanced binary tree (:func:`reduce_statistics`) on offsets
    from each block's own mean. With ``u = 2**-53``, ``b`` rows per block and ``K`` blocks, each co-moment
    entry is off by at most about ``(b + 3 ceil(log2 K) + 3) u sqrt(C_jj C_kk)`` (a worst case; rounding
    errors of random sign add up to about its square root) plus a second-order term ``O(b u**2 (mean_j /
    sd_j)**2 C_jj)`` [Chan, Golub & LeVeque 1983, "Algorithms for computing the sample variance", for the
    variance; the same argument per entry]. The first term does not depend on the columns' means: a column
    measured as ``1e6 + noise`` keeps its co-moments to about ``b u`` relative, where the uncentered ``X^T X``
    of :func:`models.linear.sufficient_statistics` loses ``(mean / sd)**2 u`` (1.2e-4 on the tests' table,
    200 rows at ``mean / sd = 1e6``, where the streamed entries are 1.6e-16 from exact with 7-row blocks
    against a bound of 2.8e-15), and the textbook merge of rounded means ``u mean / sd`` (1.1e-11 there).
    ``tests/test_streaming.py`` checks the bound on that table against exact rational arithmetic.
    :func:`rounding_bound` states it (the means' own rounding added) in the units of :func:`statistics_gap`,
    the distance between two summaries of the same rows.

Bad sources (missing files, schemas that differ between files, a missing target column, non-numeric or
missing values, an unreachable scheduler) raise :class:`models.data.DataError` with one line. pyarrow and dask
are imported only where a source needs them. Parquet record batches go to NumPy column by column, without
pandas. ``experiments/out_of_core.py`` times a pass over Parquet files against pyarrow's own scan of the same
columns (:func:`scan_files`), here and on a dask cluster, on a seeded table of :func:`write_simulated_table`.
"""

import glob
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from models.data import LARGEST_VALUE, DataError, check_sample_weight

__all__ = [
    "BLOCK_ROWS",
    "TABLE_SUFFIXES",
    "UNIT_ROUNDOFF",
    "rounding_bound",
    "statistics_gap",
    "SufficientStatistics",
    "reduce_statistics",
    "array_blocks",
    "expand_paths",
    "file_columns",
    "table_columns",
    "frame_arrays",
    "file_block_arrays",
    "file_arrays",
    "file_blocks",
    "files_statistics",
    "read_ahead",
    "scan_files",
    "simulated_truth",
    "write_simulated_table",
    "SCHEDULER_TIMEOUT_SECONDS",
    "connect",
    "local_cluster",
    "dask_statistics",
    "stream_statistics",
    "square_root_rows",
    "ridge_posterior",
    "ridge_direct_solve",
    "StreamedRidge",
    "ridge_model",
    "ridge_twin",
]

BLOCK_ROWS = 65_536
"""Rows per block: ``65,536 x (p + 1)`` doubles (5 MiB at p = 10) and a per-block error term ``b u`` of about
7e-12 relative (see the module's error bound)."""

TABLE_SUFFIXES = (".parquet", ".csv")

UNIT_ROUNDOFF = 2.0**-53
"""``u``, the unit roundoff of float64."""


def rounding_bound(block_rows: int, blocks: int) -> float:
    """The module's worst-case error bound ``(b + 3 ceil(log2 K) + 3) u`` for ``K = blocks`` blocks of at
    most ``b = block_rows`` rows, plus the means' own rounding ``2 u``: a bound on the
    :func:`statistics_gap` of the reduced statistics from exact ones."""
    return (block_rows + 3 * math.ceil(math.log2(blocks)) + 5) * UNIT_ROUNDOFF


def statistics_gap(a: "SufficientStatistics", b: "SufficientStatistics") -> float:
    """How far two summaries of the same rows differ, in the units of the module's error bound: the larger
    of ``max |C_a - C_b| / sqrt(C_jj C_kk)`` (co-moments on their columns' spreads) and
    ``max |mean_a - mean_b| / (sd + |mean|)`` (means on their spreads plus their own size), ``b``'s spreads
    and means."""
    spread = np.sqrt(np.diag(b.comoment))
    comoment = np.max(np.abs(a.comoment - b.comoment) / np.outer(spread, spread))
    sd = spread / math.sqrt(b.weight_sum)
    mean = np.max(np.abs(a.mean - b.mean) / (sd + np.abs(b.mean)))
    return float(max(comoment, mean))


@dataclass(frozen=True, eq=False)
class SufficientStatistics:
    """Weighted means and centered co-moments of the columns ``(x_1, ..., x_p, y)`` of a block of rows.

    Attributes
    ----------
    feature_names : tuple of str
    n_rows : int
        Rows with positive weight.
    weight_sum : float
        ``W = sum w_i`` (``n_rows`` without weights).
    sum_log_weight : float
        ``sum log w_i``: the Gaussian log-likelihood's normalizing term.
    shift, offset : ndarray, shape (p + 1,)
        The weighted column means (the response last) are ``shift + offset``: ``shift`` is a block's first-pass
        mean, ``offset`` what its second pass and later merges add. Merges work on the offsets, which are
        small where the means are large, so the means' rounding (``u |mean|``) does not enter the co-moments.
    comoment : ndarray, shape (p + 1, p + 1)
        ``sum w_i (d_i - mean)(d_i - mean)^T``, the response last.
    """

    feature_names: tuple[str, ...]
    n_rows: int
    weight_sum: float
    sum_log_weight: float
    shift: np.ndarray
    offset: np.ndarray
    comoment: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Weighted column means, the response last."""
        return self.shift + self.offset

    @classmethod
    def from_arrays(cls, X, y, sample_weight=None, *, feature_names=None, source: str = "data"):
        """The statistics of one block (two passes over it; rows of weight zero carry nothing).

        Raises
        ------
        DataError
            Non-finite or huge values, negative or non-finite weights, mismatched lengths.
        """
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or y.ndim != 1 or len(y) != len(X):
            raise DataError(f"{source}: X must be 2-D and y 1-D with the same number of rows")
        if feature_names is None:
            feature_names = [f"x{j}" for j in range(X.shape[1])]
        return cls.from_block(
            np.column_stack([X, y]), sample_weight, feature_names=feature_names, source=source
        )

    @classmethod
    def from_block(cls, block, sample_weight=None, *, feature_names, source: str = "data"):
        """The statistics of one block given as one float array ``(x_1, ..., x_p, y)`` (the response last):
        :meth:`from_arrays` without its copy into one array (files are read straight into one).

        Raises
        ------
        DataError
            Non-finite or huge values, negative or non-finite weights, mismatched lengths.
        """
        names = tuple(map(str, feature_names))
        _check_finite(block, names + ("the target",), source)
        if sample_weight is None:
            w = None
        else:
            w = check_sample_weight(sample_weight, len(block), source=source, block=True)
            block, w = block[w > 0], w[w > 0]
        weight_sum = float(len(block)) if w is None else float(w.sum())
        if weight_sum == 0.0:
            return cls.empty(names)
        ones = np.ones(len(block)) if w is None else w  # the same sums as with weights (w @ block)
        first = ones @ block / weight_sum
        centered = block - first
        # Second pass: the rounding of the first mean is corrected, and its effect on C removed.
        correction = ones @ centered / weight_sum
        # Without weights, centered^T centered: the same products (a weight of 1 is exact) without a copy;
        # BLAS may add them in another order (syrk rather than gemm), within the same error bound.
        weighted = centered if w is None else centered * w[:, None]
        comoment = weighted.T @ centered - weight_sum * np.outer(correction, correction)
        return cls(
            names,
            len(block),
            weight_sum,
            0.0 if w is None else float(np.log(w).sum()),
            first,
            correction,
            (comoment + comoment.T) / 2.0,
        )

    @classmethod
    def empty(cls, feature_names) -> "SufficientStatistics":
        """No rows: the identity of :meth:`merge`."""
        k = len(feature_names) + 1
        return cls(tuple(feature_names), 0, 0.0, 0.0, np.zeros(k), np.zeros(k), np.zeros((k, k)))

    def merge(self, other: "SufficientStatistics") -> "SufficientStatistics":
        """The statistics of both blocks' rows together, exactly (up to rounding).

        Chan et al.'s pairwise update: with ``delta = mean_b - mean_a``, ``mean = mean_a + delta W_b / W`` and
        ``C = C_a + C_b + delta delta^T W_a W_b / W``. Commutative and associative up to rounding. ``delta`` is
        computed as ``(shift_b - shift_a) + (offset_b - offset_a)``: each part is rounded relative to itself,
        where ``mean_b - mean_a`` of rounded means would carry ``u |mean|`` of error into ``delta``.
        """
        if other.feature_names != self.feature_names:
            raise DataError(
                f"blocks with different columns: {list(self.feature_names)} and "
                f"{list(other.feature_names)}"
            )
        if other.weight_sum == 0.0:
            return self
        if self.weight_sum == 0.0:
            return other
        weight_sum = self.weight_sum + other.weight_sum
        delta = (other.shift - self.shift) + (other.offset - self.offset)
        share = other.weight_sum / weight_sum
        return SufficientStatistics(
            self.feature_names,
            self.n_rows + other.n_rows,
            weight_sum,
            self.sum_log_weight + other.sum_log_weight,
            self.shift,
            self.offset + delta * share,
            self.comoment + other.comoment + np.outer(delta, delta) * (self.weight_sum * share),
        )

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def gram(self, *, fit_intercept: bool = True) -> np.ndarray:
        """The ``(p + 1) x (p + 1)`` cross-product matrix of ``(x, y)`` the coefficients act on: centered
        (``comoment``) with an intercept, raw (``C + W mean mean^T``) without one."""
        if fit_intercept:
            return self.comoment
        return self.comoment + self.weight_sum * np.outer(self.mean, self.mean)

    def model_data(self, *, fit_intercept: bool = True) -> dict[str, np.ndarray]:
        """The ``pm.Data`` values of :func:`models.linear.linear_regression` with ``likelihood="suffstat"``.

        With an intercept they are the statistics of the centered columns: the model's ``intercept`` is then
        the intercept of the centered problem, ``intercept + mean_x^T beta - mean_y`` on the original columns
        (a shift under its flat prior: the same posterior; :meth:`uncenter` maps it back). The uncentered
        ``X^T W X`` would lose ``(mean / sd)**2`` of relative precision to cancellation.
        """
        p = self.n_features
        gram = self.gram(fit_intercept=fit_intercept)
        xtwx, xtwy = gram[:p, :p], gram[:p, p]
        if fit_intercept:
            xtwx = np.block(
                [[np.array([[self.weight_sum]]), np.zeros((1, p))], [np.zeros((p, 1)), xtwx]]
            )
            xtwy = np.concatenate([[0.0], xtwy])
        return {
            "xtwx": xtwx,
            "xtwy": xtwy,
            "ytwy": np.asarray(gram[p, p]),
            "n_obs": np.asarray(float(self.n_rows)),
            "sum_log_weight": np.asarray(self.sum_log_weight),
        }

    def uncenter(self, coef) -> np.ndarray:
        """Coefficients ``(intercept, beta)`` of the centered problem (:meth:`model_data`) on the original
        columns; works on the last axis of an array of draws."""
        coef = np.array(coef, dtype=float)
        coef[..., 0] += self.mean[-1] - coef[..., 1:] @ self.mean[:-1]
        return coef


def _check_finite(block: np.ndarray, names: Sequence[str], source: str) -> None:
    # Fast path: two reductions without temporaries (NaN propagates through max and min and fails both).
    if block.size == 0 or (block.max() <= LARGEST_VALUE and block.min() >= -LARGEST_VALUE):
        return
    bad = ~np.isfinite(block) | (np.abs(np.nan_to_num(block)) > LARGEST_VALUE)
    if bad.any():
        named = ", ".join(str(names[j]) for j in np.flatnonzero(bad.any(axis=0)))
        raise DataError(
            f"{source}: missing, infinite or huge (> {LARGEST_VALUE:.0e}) values in column(s) {named}"
        )


def reduce_statistics(blocks: Iterable[SufficientStatistics]) -> SufficientStatistics:
    """Merge blocks in a balanced binary tree as they arrive (``log2 K`` partial results kept at most).

    A balanced tree keeps the merge's rounding at ``log2 K`` steps for ``K`` blocks, where a running sum would
    take ``K`` (see the module's error bound).

    Raises
    ------
    DataError
        No block, or no row of positive weight.
    """
    stack: list[tuple[int, SufficientStatistics]] = []
    for block in blocks:
        level = 0
        while stack and stack[-1][0] == level:
            block = stack.pop()[1].merge(block)
            level += 1
        stack.append((level, block))
    if not stack:
        raise DataError("no data: the source has no blocks")
    total = stack.pop()[1]
    while stack:
        total = stack.pop()[1].merge(total)
    if total.n_rows == 0:
        raise DataError("no rows with positive weight")
    return total


def array_blocks(
    X, y, sample_weight=None, *, feature_names=None, block_rows: int = BLOCK_ROWS, source="data"
) -> Iterator[SufficientStatistics]:
    """The statistics of consecutive blocks of ``block_rows`` rows of in-memory arrays."""
    for start in range(0, max(len(y), 1), block_rows):
        rows = slice(start, start + block_rows)
        yield SufficientStatistics.from_arrays(
            X[rows],
            y[rows],
            None if sample_weight is None else sample_weight[rows],
            feature_names=feature_names,
            source=source,
        )


# Files ---------------------------------------------------------------------------------------------------


def expand_paths(data) -> list[Path]:
    """A glob, a path or a list of them as a sorted list of existing Parquet or CSV files (one format).

    Raises
    ------
    DataError
        A pattern that matches nothing, a missing file, a folder, an unknown suffix, or formats mixed.
    """
    items = [data] if isinstance(data, str | Path) else list(data)
    paths = []
    for item in map(str, items):
        if glob.has_magic(item):
            matched = sorted(glob.glob(item))
            if not matched:
                raise DataError(f"{item}: no file matches")
            paths += [Path(p) for p in matched]
        else:
            paths.append(Path(item))
    for path in paths:
        if path.is_dir():
            raise DataError(f"{path}: is a folder, not a table file")
        if not path.exists():
            raise DataError(f"{path}: no such file")
    suffixes = {path.suffix.lower() for path in paths}
    if not suffixes <= set(TABLE_SUFFIXES):
        raise DataError(f"{paths[0]}: streamed tables must be .parquet or .csv files")
    if len(suffixes) != 1:
        raise DataError("the files mix Parquet and CSV: stream one format at a time")
    return paths


def file_columns(path: Path) -> list[str]:
    """A file's column names from its footer (Parquet) or header (CSV), without reading its rows."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq  # imported here only: start-up time of every other run

            return list(pq.read_schema(path).names)
        import pandas as pd

        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: cannot be read ({str(error).splitlines()[0]})") from None


def table_columns(
    paths: Sequence[Path], target: str, *, features=None, weights: str | None = None
) -> tuple[str, ...]:
    """The feature columns every file shares: ``features``, or every column but ``target`` and ``weights``.

    Raises
    ------
    DataError
        A file whose columns differ from the first file's, a missing target, weight or feature column.
    """
    first = file_columns(paths[0])
    for path in paths[1:]:
        columns = file_columns(path)
        if set(columns) != set(first):
            missing, extra = sorted(set(first) - set(columns)), sorted(set(columns) - set(first))
            raise DataError(
                f"{path}: columns differ from {paths[0]} (missing: {', '.join(missing) or 'none'}; "
                f"extra: {', '.join(extra) or 'none'})"
            )
    for role, name in (("target", target), ("weight", weights)):
        if name is not None and name not in first:
            raise DataError(f"{paths[0]}: no {role} column named {name!r}")
    if features is None:
        features = [c for c in first if c not in (target, weights)]
    absent = [c for c in features if c not in first]
    if absent:
        raise DataError(f"{paths[0]}: no column(s) named {', '.join(absent)}")
    if not features:
        raise DataError(f"{paths[0]}: needs at least one feature column besides {target!r}")
    return tuple(features)


def frame_arrays(frame, features, target, weights, source):
    """A pandas block as float arrays ``(X, y, sample_weight or None)``; non-numeric columns refused by name."""
    import pandas as pd

    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise DataError(
            f"{source}: non-numeric column(s) {', '.join(map(str, text))} (streaming takes numbers only)"
        )
    return (
        frame[list(features)].to_numpy(dtype=float),
        frame[target].to_numpy(dtype=float),
        None if weights is None else frame[weights].to_numpy(dtype=float),
    )


def _frame_statistics(frame, features, target, weights, source) -> SufficientStatistics:
    """A pandas block's statistics; non-numeric columns refused by name."""
    X, y, sample_weight = frame_arrays(frame, features, target, weights, source)
    return SufficientStatistics.from_arrays(
        X, y, sample_weight, feature_names=features, source=source
    )


def _batch_block(batch, features, target, weights, source):
    """A pyarrow record batch as one float array ``(x_1, ..., x_p, y)`` and its weights (or None), column by
    column without pandas; columns pandas would not call numeric refused by name, nulls read as NaN."""
    import pyarrow as pa

    def is_numeric(kind) -> bool:
        return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)

    text = [name for name in batch.schema.names if not is_numeric(batch.schema.field(name).type)]
    if text:
        raise DataError(
            f"{source}: non-numeric column(s) {', '.join(text)} (streaming takes numbers only)"
        )

    def values(name) -> np.ndarray:
        # As pandas' to_numpy(float): integers past 2**53 rounded, nulls (of any type) as NaN.
        column = batch.column(name).cast(pa.float64(), safe=False)
        return column.to_numpy(zero_copy_only=False)

    columns = [*features, target]
    # Column-major, as pandas' to_numpy gives it: contiguous column copies, and the same sums as before.
    block = np.empty((batch.num_rows, len(columns)), order="F")
    for j, name in enumerate(columns):
        block[:, j] = values(name)
    return block, None if weights is None else values(weights)


def file_block_arrays(
    path: Path, features, target: str, weights: str | None = None, *, block_rows: int = BLOCK_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
    """One file's blocks as ``(block, sample_weight or None, source)``, ``block`` one float array ``(x_1,
    ..., x_p, y)``: Parquet record batches (only the needed columns are read, straight into the array) or CSV
    chunks (a CSV written with every digit, as pandas writes it, reads back exactly); ``source`` names the
    block for error messages."""
    columns = list(dict.fromkeys([*features, target, *([weights] if weights else [])]))
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            batches = pq.ParquetFile(path).iter_batches(batch_size=block_rows, columns=columns)
            for index, batch in enumerate(batches):
                source = f"{path} (block {index})"
                yield (*_batch_block(batch, features, target, weights, source), source)
            return
        import pandas as pd

        # pandas >= 3.1 parses every float to the nearest double (its float_precision is deprecated).
        frames = pd.read_csv(path, usecols=columns, chunksize=block_rows)
        for index, frame in enumerate(frames):
            source = f"{path} (block {index})"
            X, y, sample_weight = frame_arrays(frame, features, target, weights, source)
            yield np.column_stack([X, y]), sample_weight, source
    except (OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: cannot be read ({str(error).splitlines()[0]})") from None


def file_arrays(
    path: Path, features, target: str, weights: str | None = None, *, block_rows: int = BLOCK_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, str]]:
    """One file's blocks as arrays ``(X, y, sample_weight or None, source)`` (:func:`file_block_arrays`). For
    models without sufficient statistics (:mod:`models.large_glm`), which need the rows themselves."""
    for block, sample_weight, source in file_block_arrays(
        path, features, target, weights, block_rows=block_rows
    ):
        yield block[:, :-1], block[:, -1], sample_weight, source


def file_blocks(
    path: Path, features, target: str, weights: str | None = None, *, block_rows: int = BLOCK_ROWS
) -> Iterator[SufficientStatistics]:
    """The statistics of one file's blocks (:func:`file_block_arrays`)."""
    for block, sample_weight, source in file_block_arrays(
        path, features, target, weights, block_rows=block_rows
    ):
        yield SufficientStatistics.from_block(
            block, sample_weight, feature_names=features, source=source
        )


def files_statistics(
    paths, features, target: str, weights: str | None = None, *, block_rows: int = BLOCK_ROWS
) -> SufficientStatistics:
    """One file's (or several files') statistics in this process; what each dask task runs.

    The next block is read (pyarrow decodes without the GIL) while this one is summarized (NumPy and BLAS
    release it too): a pass then takes about the longer of the two rather than their sum. Blocks are the same
    and summarized in the same order as one at a time; one more block is held in memory.
    """
    blocks = (
        block
        for path in paths
        for block in file_block_arrays(Path(path), features, target, weights, block_rows=block_rows)
    )
    return reduce_statistics(
        SufficientStatistics.from_block(block, sample_weight, feature_names=features, source=source)
        for block, sample_weight, source in read_ahead(blocks)
    )


def read_ahead(items: Iterator) -> Iterator:
    """``items`` with the next one drawn on a background thread while the caller works on the current one
    (one draw in flight; an exception is raised here, where that item would have come)."""
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = reader.submit(next, items, end)
            yield item


def scan_files(paths, columns, *, block_rows: int = BLOCK_ROWS, client=None) -> int:
    """pyarrow's own scan of ``columns`` of Parquet files (record batches decoded, nothing computed): the raw
    read speed a pass of :func:`files_statistics` is measured against. Returns the rows read.

    With a ``distributed.Client``, one task per file on its workers (as :func:`stream_statistics` with a
    scheduler), which must see the same paths.
    """
    import pyarrow.parquet as pq

    if client is not None:
        # The function by reference and plain arguments: nothing of the caller's to pickle.
        tasks = client.map(
            scan_files,
            [[str(path)] for path in paths],
            columns=columns,
            block_rows=block_rows,
            pure=False,
        )
        return sum(client.gather(tasks))
    rows = 0
    for path in paths:
        batches = pq.ParquetFile(path).iter_batches(batch_size=block_rows, columns=list(columns))
        rows += sum(batch.num_rows for batch in batches)
    return rows


# A seeded table on disk ----------------------------------------------------------------------------------


def simulated_truth(seed: int, n_features: int) -> dict:
    """The intercept, coefficients, column means and scales :func:`write_simulated_table` draws its table
    from (generator ``(seed, 0)``): means in [-5, 5], scales log-uniform in [0.1, 10]."""
    rng = np.random.default_rng([seed, 0])
    return {
        "intercept": 1.5,
        "coef": rng.normal(size=n_features),
        "means": rng.uniform(-5.0, 5.0, size=n_features),
        "scales": np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=n_features)),
    }


def write_simulated_table(
    folder: Path,
    *,
    seed: int,
    n_rows: int,
    n_features: int,
    rows_per_file: int,
    write_rows: int,
    noise_sd: float,
    target: str = "y",
) -> tuple[list[Path], SufficientStatistics]:
    """A linear table (features ``x0, x1, ...``, then ``target``) of :func:`simulated_truth` with Gaussian
    noise of SD ``noise_sd``, written as Parquet files ``part-00000.parquet, ...`` of ``rows_per_file``
    rows, never held in memory whole.

    Each file is generated and written ``write_rows`` at a time (one Parquet row group) from its own
    generator ``(seed, 1, file)``. Returns the paths and the statistics of the blocks as generated (before
    any write or read: a reference for a pass over the files, within the bounds of both block sizes).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    truth, names = simulated_truth(seed, n_features), tuple(f"x{j}" for j in range(n_features))
    schema = pa.schema([(name, pa.float64()) for name in (*names, target)])
    paths, generated = [], []
    for index in range(math.ceil(n_rows / rows_per_file)):
        rng = np.random.default_rng([seed, 1, index])
        path = Path(folder) / f"part-{index:05d}.parquet"
        file_rows = min(rows_per_file, n_rows - index * rows_per_file)
        # Random doubles never repeat: dictionary encoding would only be tried and dropped (4x slower).
        with pq.ParquetWriter(path, schema, use_dictionary=False) as writer:
            for start in range(0, file_rows, write_rows):
                rows = min(write_rows, file_rows - start)
                # One row per column, so each column goes to pyarrow without a copy.
                noise = rng.standard_normal((n_features, rows))
                columns = truth["means"][:, None] + truth["scales"][:, None] * noise
                y = (
                    truth["intercept"]
                    + truth["coef"] @ columns
                    + noise_sd * rng.standard_normal(rows)
                )
                writer.write_table(pa.table([*columns, y], schema=schema))
                generated.append(
                    SufficientStatistics.from_arrays(columns.T, y, feature_names=names)
                )
        paths.append(path)
    return paths, reduce_statistics(generated)


# dask ----------------------------------------------------------------------------------------------------


SCHEDULER_TIMEOUT_SECONDS = 10.0
"""How long :func:`connect` tries to reach a scheduler before it gives up with one line."""


def connect(address: str):
    """A ``distributed.Client`` for a running scheduler; one line when it cannot be reached."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{SCHEDULER_TIMEOUT_SECONDS}s")
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"--scheduler {address}: cannot connect ({reason})") from None


@contextmanager
def local_cluster(workers: int):
    """A ``distributed.Client`` to a new ``LocalCluster`` on this machine: ``workers`` worker processes of
    one thread each (as :mod:`models.executor` asks of a cluster), no dashboard; both closed on exit. Its
    scheduler's address is ``client.scheduler.address``."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _is_dask(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "dask"


def dask_statistics(
    source, *, target=None, features=None, weights=None, block_rows: int = BLOCK_ROWS
) -> SufficientStatistics:
    """Statistics of a dask DataFrame (``target`` names the response) or a pair ``(X, y)`` of dask Arrays,
    one task per partition (on the active ``distributed.Client`` when there is one), reduced here."""
    import dask

    if isinstance(source, tuple):
        X, y = source
        X = X.rechunk({1: -1})
        y = y.rechunk((X.chunks[0],))
        names = tuple(features or (f"x{j}" for j in range(X.shape[1])))
        tasks = [
            dask.delayed(_array_statistics)(x_part, y_part, names, block_rows)
            for x_part, y_part in zip(X.to_delayed().ravel(), y.to_delayed().ravel(), strict=True)
        ]
    else:
        for role, name in (("target", target), ("weight", weights)):
            if (role == "target" or name is not None) and name not in source.columns:
                raise DataError(f"the dask DataFrame has no {role} column named {name!r}")
        if features is None:
            features = [c for c in source.columns if c not in (target, weights)]
        features = tuple(map(str, features))
        tasks = [
            dask.delayed(_frame_statistics)(part, features, target, weights, f"partition {i}")
            for i, part in enumerate(source.to_delayed())
        ]
    return reduce_statistics(dask.compute(*tasks))


def _array_statistics(X, y, names, block_rows) -> SufficientStatistics:
    return reduce_statistics(array_blocks(X, y, feature_names=names, block_rows=block_rows))


# The one entry point -------------------------------------------------------------------------------------


def stream_statistics(
    source,
    *,
    target: str | None = None,
    features=None,
    weights: str | None = None,
    sample_weight=None,
    block_rows: int = BLOCK_ROWS,
    scheduler: str | None = None,
) -> SufficientStatistics:
    """:class:`SufficientStatistics` of a table from any source, summed over blocks of rows.

    Parameters
    ----------
    source
        ``(X, y)`` NumPy arrays (``sample_weight`` optional); a glob, path or list of Parquet or CSV files
        (``target`` names the response; only the needed columns are read); a dask DataFrame (``target``) or
        a pair of dask Arrays ``(X, y)``.
    target : str or None
        The response column of a file or DataFrame.
    features : sequence of str or None
        Feature columns (every column but ``target`` and ``weights`` by default).
    weights : str or None
        A column of sample weights (files, DataFrames).
    sample_weight : array_like or None
        Row weights of in-memory arrays.
    block_rows : int
        Rows per block (Parquet batch, CSV chunk, slice of an array or a partition).
    scheduler : str or None
        A dask.distributed scheduler address: one task per file there (files), or the computation of a
        dask collection. The workers must see the same file paths.

    Raises
    ------
    DataError
        Bad source, one line.
    """
    if isinstance(source, tuple) and not any(map(_is_dask, source)):
        X, y = source
        return reduce_statistics(
            array_blocks(
                np.asarray(X, dtype=float),
                np.asarray(y, dtype=float),
                None if sample_weight is None else np.asarray(sample_weight, dtype=float),
                feature_names=features,
                block_rows=block_rows,
            )
        )
    client = connect(scheduler) if scheduler is not None else None
    try:
        if _is_dask(source) or isinstance(source, tuple):
            return dask_statistics(
                source, target=target, features=features, weights=weights, block_rows=block_rows
            )
        if target is None:
            raise DataError("streaming files needs the target column's name")
        paths = expand_paths(source)
        features = table_columns(paths, target, features=features, weights=weights)
        if client is None:
            return files_statistics(paths, features, target, weights, block_rows=block_rows)
        futures = client.map(
            lambda path: files_statistics([path], features, target, weights, block_rows=block_rows),
            [str(p) for p in paths],
        )
        return reduce_statistics(client.gather(futures))
    finally:
        if client is not None:
            client.close()


# The Ridge twin on statistics ----------------------------------------------------------------------------


def square_root_rows(stats: SufficientStatistics, *, fit_intercept: bool = True) -> np.ndarray:
    """``p + 1`` rows ``R`` with ``R^T R`` equal to :meth:`SufficientStatistics.gram`: a small design with the
    same least-squares geometry (eigendecomposition square root, exact for a singular matrix too)."""
    eigenvalues, vectors = np.linalg.eigh(stats.gram(fit_intercept=fit_intercept))
    return np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None] * vectors.T


def ridge_posterior(
    stats: SufficientStatistics,
    *,
    ridge_alpha: float,
    noise_sigma: float | None = None,
    fit_intercept: bool = True,
    relative_prior_cov=None,
    noise_prior=None,
):
    """The exact posterior of the linear twin (:func:`models.exact.linear_posterior`) from statistics.

    :func:`models.exact.linear_posterior` runs on the ``p + 1`` rows of :func:`square_root_rows` (the
    centered problem without intercept: the same ``beta`` posterior); the intercept (``mean_y - mean_x^T
    beta``, its prior flat) is added, and the noise posterior's degrees of freedom set from the real row
    count. Accurate to about ``cond(X_c^T W X_c + alpha) u`` relative, where the SVD of the rows reaches the
    square root of that: the price of keeping ``O(p**2)`` numbers instead of the table.

    Returns
    -------
    models.exact.LinearPosterior
        Coefficients ordered ``intercept`` (when fitted) then the features.
    """
    from models.exact import NOISE_PRIOR, linear_posterior, noise_prior_terms

    noise_prior = NOISE_PRIOR if noise_prior is None else noise_prior
    p, fi = stats.n_features, int(fit_intercept)
    rows = square_root_rows(stats, fit_intercept=fit_intercept)
    if ridge_alpha == 0:
        # The rows' singular values are square roots of the statistics' eigenvalues, which carry rounding
        # of u times the largest: below sqrt(p u) of the largest singular value, a direction is not known.
        singular = np.linalg.svd(rows[:, :p], compute_uv=False)
        if singular[-1] <= np.sqrt(p * np.finfo(float).eps) * singular[0]:
            raise ValueError(
                "a flat prior (ridge_alpha=0) needs linearly independent columns, and these are not, "
                "to the precision the statistics keep: use ridge_alpha > 0"
            )
    # The rows carry no row count: a proper noise prior keeps their own posterior proper whatever it is.
    pseudo = linear_posterior(
        rows[:, :p],
        rows[:, p],
        ridge_alpha=ridge_alpha,
        noise_sigma=noise_sigma,
        fit_intercept=False,
        relative_prior_cov=relative_prior_cov,
        noise_prior=(1.0, 1.0) if noise_sigma is None else noise_prior,
    )
    factor = pseudo.scale_factor
    if noise_sigma is None:
        shape0, rate0 = noise_prior_terms(noise_prior)
        factor = factor / np.sqrt(pseudo.noise_rate / pseudo.noise_shape)
        rate = rate0 + (pseudo.noise_rate - 1.0)
        shape = shape0 + (stats.n_rows - fi - (p if ridge_alpha == 0 else 0)) / 2.0
        # A residual at the rounding level of the statistics (relative to y's spread) is an exact fit.
        exact_fit = (
            2.0 * (rate - rate0) <= 10 * (p + 1) * np.finfo(float).eps * rows[:, p] @ rows[:, p]
        )
        if rate0 == 0 and (shape <= 0 or exact_fit):
            raise ValueError(
                "the noise variance's posterior is improper under Jeffreys' prior: "
                + ("no residual degrees of freedom" if shape <= 0 else "y is fitted exactly")
                + "; pass a proper noise_prior"
            )
        noise_scale = math.sqrt(rate / shape)
    else:
        noise_scale = 1.0
    beta, beta_factor = pseudo.mean, factor * noise_scale
    names = (("intercept",) if fit_intercept else ()) + stats.feature_names
    if not fit_intercept:
        mean, full = beta, beta_factor
    else:
        x_mean = stats.mean[:p]
        mean = np.concatenate([[stats.mean[p] - x_mean @ beta], beta])
        full = np.zeros((p + 1, p + 1))
        scale = noise_scale if noise_sigma is None else noise_sigma
        full[0, 0] = scale / math.sqrt(stats.weight_sum)
        full[0, 1:] = -x_mean @ beta_factor
        full[1:, 1:] = beta_factor
    if noise_sigma is not None:
        return pseudo._replace(names=names, mean=mean, scale_factor=full)
    return pseudo._replace(
        names=names,
        mean=mean,
        scale_factor=full,
        df=2.0 * shape,
        noise_shape=shape,
        noise_rate=rate,
    )


def ridge_direct_solve(stats: SufficientStatistics, ridge_alpha: float) -> np.ndarray:
    """Ridge's ``(intercept, coef)`` by a direct solve of ``(C_xx + alpha I) beta = C_xy``: a reference
    independent of :func:`ridge_posterior`'s square-root rows and SVD."""
    p = stats.n_features
    beta = np.linalg.solve(stats.comoment[:p, :p] + ridge_alpha * np.eye(p), stats.comoment[:p, p])
    return np.concatenate([[stats.mean[p] - stats.mean[:p] @ beta], beta])


class StreamedRidge(NamedTuple):
    """The Ridge twin fitted on statistics: the exact posterior, the MAP and their checks.

    ``map_coef`` comes from PreciseMAP (Newton) on :func:`models.linear.linear_regression`'s
    ``likelihood="suffstat"`` model fed the statistics; ``exact`` from :func:`ridge_posterior`; ``draws``
    (``chain, draw, coefficient``) are independent draws from ``exact``, or NUTS draws on the statistics when
    asked (``convergence`` then holds their diagnostics).
    """

    names: tuple[str, ...]
    exact: object
    map_coef: np.ndarray
    draws: np.ndarray
    convergence: object
    checks: dict
    seconds: dict


def ridge_model(
    stats: SufficientStatistics, *, ridge_alpha: float, noise_sigma=None, fit_intercept=True
):
    """:func:`models.linear.linear_regression` with ``likelihood="suffstat"`` holding ``stats``'s
    :meth:`~SufficientStatistics.model_data` (its intercept is the centered problem's: see
    :meth:`~SufficientStatistics.uncenter`). Built on the ``p + 1`` rows of :func:`square_root_rows`, then
    given the statistics with ``pm.set_data``."""
    import pymc as pm

    from models.linear import linear_regression

    p = stats.n_features
    rows = square_root_rows(stats, fit_intercept=fit_intercept)
    model = linear_regression(
        rows[:, :p],
        rows[:, p],
        ridge_alpha=ridge_alpha,
        noise_sigma=noise_sigma,
        fit_intercept=fit_intercept,
        feature_names=list(stats.feature_names),
        likelihood="suffstat",
    )
    pm.set_data(stats.model_data(fit_intercept=fit_intercept), model=model)
    if "sigma_squared" in model.named_vars:
        # Start the noise variance at y's variance rather than at 1, a guess in y's units (as fit_twin does).
        spread = stats.comoment[p, p] / stats.weight_sum
        model.set_initval(model["sigma_squared"], float(spread) if spread > 0 else 1.0)
    return model


def ridge_twin(
    stats: SufficientStatistics,
    *,
    ridge_alpha: float,
    noise_sigma: float | None = None,
    fit_intercept: bool = True,
    seed: int = 0,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    nuts: bool = False,
) -> StreamedRidge:
    """The Ridge twin (noise unknown under Jeffreys' prior, or ``noise_sigma``) on streamed statistics.

    Checks: the MAP against the closed-form mean (``<= 1e-8``: Newton on a quadratic against an SVD, both
    exact to rounding on a design whose statistics keep 8 digits); with ``nuts``, R-hat, bulk ESS,
    divergences and every coefficient's posterior mean within 5 MCSE of the exact one.

    Raises
    ------
    DataError
        Too few rows for the noise's degrees of freedom, or an exact fit.
    """
    import time

    from models.diagnostics import checks, convergence, mean_z_scores, relative_error
    from models.fit import (
        PreciseMAP,
        coefficients,
        compile_nuts,
        posterior_coefficients,
        sample_nuts,
    )
    from models.twin import MAP_COMPILE_MODE

    start, seconds = time.perf_counter(), {}
    try:
        exact = ridge_posterior(
            stats, ridge_alpha=ridge_alpha, noise_sigma=noise_sigma, fit_intercept=fit_intercept
        )
    except ValueError as error:
        raise DataError(f"the twin has no posterior: {str(error).splitlines()[0]}") from None
    if not exact.df > 2:
        raise DataError(
            f"{stats.n_rows} rows leave {exact.df:g} degrees of freedom for the noise: the posterior SDs "
            "are finite only with more than 2; add rows"
        )
    seconds["exact"] = time.perf_counter() - start
    model = ridge_model(
        stats, ridge_alpha=ridge_alpha, noise_sigma=noise_sigma, fit_intercept=fit_intercept
    )
    coef = coefficients(PreciseMAP(model, mode=MAP_COMPILE_MODE)())
    map_coef = stats.uncenter(coef) if fit_intercept else coef
    seconds["map"] = time.perf_counter() - start - seconds["exact"]
    targets = {
        # Newton on a quadratic vs the SVD closed form: both exact to rounding.
        "map_vs_exact_mean": (relative_error(map_coef, exact.mean), "<=", 1e-8),
    }
    rng = np.random.default_rng(seed)
    diagnostics = None
    if nuts:
        idata = sample_nuts(
            compile_nuts(model),
            seed=int(rng.integers(2**31)),
            draws=draws,
            tune=tune,
            chains=chains,
        )
        sample = posterior_coefficients(idata)
        sample = stats.uncenter(sample) if fit_intercept else sample
        diagnostics = convergence(idata)
        targets["rhat_max"] = (diagnostics.rhat_max, "<=", 1.01)
        targets["ess_bulk_min"] = (diagnostics.ess_bulk_min, ">=", 400.0)
        targets["divergences"] = (float(diagnostics.divergences), "<=", 0.0)
        # 5 MCSE: a false alarm about once in 1.7 million per coefficient.
        targets["nuts_mean_z_max"] = (float(mean_z_scores(sample, exact.mean).max()), "<=", 5.0)
    else:
        sample = exact.draws(rng, chains * draws).reshape(chains, draws, -1)
    seconds["posterior"] = time.perf_counter() - start - seconds["exact"] - seconds["map"]
    return StreamedRidge(
        exact.names, exact, map_coef, sample, diagnostics, checks(targets), seconds
    )
