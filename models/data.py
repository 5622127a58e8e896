"""Data sets: scikit-learn's bundled ones, simulated designs with known truth, and the user's own CSV.

Every data set is validated once, here; everything downstream may assume finite numeric arrays.
"""

import csv
import numbers
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.special
from sklearn.datasets import load_diabetes

__all__ = [
    "DataError",
    "check_number",
    "check_sample_weight",
    "Dataset",
    "plug_in_noise_sigma",
    "diabetes",
    "standard_regression",
    "raw_user_table",
    "SIMULATED_DESIGNS",
    "simulated",
    "LARGEST_VALUE",
    "validate_arrays",
    "check_values",
    "read_frame",
    "read_csv",
]


class DataError(ValueError):
    """Bad input data; its message is the one line a user sees."""


def check_number(
    name: str,
    value,
    *,
    low: float = 0.0,
    high: float | None = None,
    inclusive: bool = True,
    inf_means: str | None = None,
    reason: str | None = None,
) -> float:
    """``value`` as a float after its one rule: a real number, finite, at or above ``low`` (and ``high``).

    Every penalty (``alpha``, ``C``, ``ridge_alpha``, ...), scale (``noise_sigma``, ``dispersion``) and share
    (``l1_ratio``, ``quantile``) is checked by this one function, so the rule and its message read the same
    wherever a value enters. Each value is checked in the layer every path goes through: the model builder
    or its validator (``validate_glm``, ``validate_tweedie``, ``check_quantile``, ...). A layer above calls
    it again only to fail before expensive work:

    * :func:`models.twin.fit_twin`'s parameter check, on the estimator's own ``alpha`` and ``C``, before the
      estimator is fitted (and for what only an estimator has: the Lasso's ``alpha > 0``);
    * the ``priorlab twin`` command, on ``--alpha``, ``--C``, ``--l1-ratio`` and ``--quantile``, before the
      file is read (or the files streamed);
    * the ``--path`` (:func:`models.glm_data.penalty_path`) and ``--alphas`` parsers, before any fit.

    Parameters
    ----------
    name : str
        The value's name as the user knows it (``"alpha"``, ``"C"``, ``"--alphas"``): the message starts
        with it.
    value
        A real number. Strings, booleans, None, arrays and complex numbers are refused.
    low, high : float
        The bounds: ``value >= low`` (``> low`` when not ``inclusive``) and, with ``high``,
        ``value <= high`` (``<``), the message then saying ``in [low, high]`` (``(low, high)``).
    inclusive : bool
        Whether the bounds themselves are accepted.
    inf_means : str or None
        None: ``inf`` is refused like NaN. Otherwise ``+inf`` is accepted and means this (``"no penalty"``
        for ``C``), said in the message.
    reason : str or None
        Why the rule is what it is where the caller stands, added in parentheses after the message (e.g.
        why the Lasso needs ``alpha > 0``).

    Returns
    -------
    float

    Raises
    ------
    DataError
        One line: ``"alpha must be a number, got 'x'"``, ``"alpha must be finite and >= 0, got -1"``,
        ``"C must be > 0 (inf: no penalty), got 0"``, ``"l1_ratio must be in [0, 1], got 2"``.
    """
    extra = f" ({reason})" if reason else ""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        shown = " ".join(repr(value).split())  # an array's repr spans lines; the message is one
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise DataError(f"{name} must be a number, got {shown}{extra}")
    value = float(value)
    op = ">=" if inclusive else ">"
    if high is not None:
        left, right = "[]" if inclusive else "()"
        rule = f"in {left}{low:g}, {high:g}{right}"
    elif inf_means is None:
        rule = f"finite and {op} {low:g}"
    else:
        rule = f"{op} {low:g} (inf: {inf_means})"
    accepted_inf = value == np.inf and inf_means is not None and high is None
    above_low = value >= low if inclusive else value > low
    below_high = high is None or (value <= high if inclusive else value < high)
    if not ((np.isfinite(value) or accepted_inf) and above_low and below_high):
        raise DataError(f"{name} must be {rule}, got {value:g}{extra}")
    return value


def check_sample_weight(sample_weight, n: int, *, source: str | None = None, block: bool = False):
    """Sample weights as a float array of shape ``(n,)`` after their one rule: finite, >= 0, not all zero.

    The builders and validators that take weights (:func:`models.glm.validate_glm`,
    :func:`models.tweedie.validate_tweedie`, :func:`models.multinomial.validate_classes`,
    :func:`models.kernel.kernel_twin`, :func:`models.twin.fit_twin`) and the readers of row blocks
    (:mod:`models.streaming`, :mod:`models.large_glm`) call it; nothing else checks weights.

    Parameters
    ----------
    sample_weight : array_like or None
        None: all ones.
    n : int
        The number of rows.
    source : str or None
        What the rows came from (a file, ``"data"``), the message's first words.
    block : bool
        The rows are one block of a larger source: a block may be all zero, and the total is checked where
        the blocks are summed.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    DataError
        One line: not numbers, not one per row, a non-finite or negative weight (the first one and its row
        named), all zero (unless ``block``).
    """
    prefix = f"{source}: " if source else ""
    if sample_weight is None:
        return np.ones(n)
    try:
        weights = np.asarray(sample_weight, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{prefix}sample weights must be numbers") from None
    if weights.shape != (n,):
        raise DataError(
            f"{prefix}sample weights need one value per row ({n}), got shape {weights.shape}"
        )
    rule = "finite and >= 0" if block else "finite, >= 0 and not all zero"
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{prefix}sample weights must be {rule}, got {weights[row]:g} in row {row}")
    if not block and not np.any(weights > 0):
        raise DataError(f"{prefix}sample weights must be {rule}, got all zero")
    return weights


class Dataset(NamedTuple):
    """A regression data set.

    ``noise_sigma`` is the known noise scale for simulated data, and a plug-in estimate (the least-squares
    residual standard deviation) for real data; ``true_coef`` is the simulated truth, if any.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    noise_sigma: float
    sample_weight: np.ndarray | None = None
    fit_intercept: bool = True
    true_coef: np.ndarray | None = None
    description: str = ""


def plug_in_noise_sigma(X, y, *, sample_weight=None, fit_intercept=True) -> float:
    """Residual standard deviation of the (weighted) least-squares fit, ``sqrt(RSS / (n - rank))``.

    Used as the known noise scale of real data. With ``n <= rank`` there are no residual degrees of freedom
    and the standard deviation of ``y`` is used instead.
    """
    n = len(y)
    w = np.ones(n) if sample_weight is None else sample_weight
    design = np.column_stack([np.ones(n), X]) if fit_intercept else X
    root_w = np.sqrt(w)
    coef, _, rank, _ = np.linalg.lstsq(root_w[:, None] * design, root_w * y, rcond=None)
    if n <= rank:
        return float(np.std(y, ddof=1))
    residual = root_w * (y - design @ coef)
    return float(np.sqrt(residual @ residual / (n - rank)))


def diabetes() -> Dataset:
    """scikit-learn's diabetes data: 442 patients, 10 features (already centered and scaled by scikit-learn
    to unit Euclidean norm per column), disease progression after one year as the target."""
    bunch = load_diabetes()
    X, y = bunch.data, bunch.target.astype(float)
    return Dataset(
        name="diabetes",
        X=X,
        y=y,
        feature_names=tuple(bunch.feature_names),
        noise_sigma=plug_in_noise_sigma(X, y),
        description="scikit-learn diabetes (n=442, p=10); noise sigma: least-squares residual SD",
    )


def standard_regression(n: int, p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The benchmarks' design: standard normal features, coefficients ~ N(0, 1), intercept 1, unit noise."""
    X = rng.standard_normal((n, p))
    y = 1.0 + X @ rng.standard_normal(p) + rng.standard_normal(n)
    return X, y


def raw_user_table(rng: np.random.Generator, n: int = 200):
    """A table as users have them: a year (2000-2020), an income (log-normal, ~2e4) and an age (20-70).

    Returns the features, a binary outcome and a count outcome, both driven by the centered features.
    """
    year = rng.integers(2000, 2021, n).astype(float)
    income = rng.lognormal(10.0, 0.5, n)
    age = rng.uniform(20.0, 70.0, n)
    X = pd.DataFrame({"year": year, "income": income, "age": age})
    eta = 0.1 * (year - 2010) + 2e-5 * (income - 22_000) - 0.02 * (age - 45)
    clicked = (rng.random(n) < scipy.special.expit(eta)).astype(float)
    visits = rng.poisson(np.exp(0.5 + 0.5 * eta)).astype(float)
    return X, clicked, visits


SIMULATED_DESIGNS = {
    "well_conditioned": "n=200, p=10, independent N(0, 1) columns",
    "collinear": "n=200, p=10, columns with pairwise correlation 0.99",
    "wide": "n=40, p=100 (p > n), independent N(0, 1) columns",
    "badly_scaled": "n=200, p=7, column scales 1e-3 ... 1e3 (a ratio of 1e6)",
    "weighted": "n=200, p=10, row weights drawn from Gamma(2, 1/2)",
    "no_intercept": "n=200, p=10, generated and fitted without intercept",
}


def simulated(design: str, *, rng: np.random.Generator) -> Dataset:
    """A simulated linear-regression data set with known coefficients and noise (``sigma = 1``).

    Parameters
    ----------
    design : str
        One of :data:`SIMULATED_DESIGNS`.
    rng : numpy.random.Generator
    """
    n, p = {"wide": (40, 100), "badly_scaled": (200, 7)}.get(design, (200, 10))
    if design not in SIMULATED_DESIGNS:
        raise DataError(
            f"unknown simulated design {design!r}; choose from {sorted(SIMULATED_DESIGNS)}"
        )
    if design == "collinear":
        shared = rng.standard_normal((n, 1))
        X = np.sqrt(0.99) * shared + np.sqrt(0.01) * rng.standard_normal((n, p))
    else:
        X = rng.standard_normal((n, p))
    true_coef = rng.normal(0.0, 1.0, size=p)
    if design == "badly_scaled":
        scales = np.logspace(-3, 3, p)
        X = X * scales
        true_coef = true_coef / scales
    fit_intercept = design != "no_intercept"
    intercept = 2.0 if fit_intercept else 0.0
    sample_weight = rng.gamma(2.0, 0.5, size=n) if design == "weighted" else None
    noise_sd = 1.0 if sample_weight is None else 1.0 / np.sqrt(sample_weight)
    y = intercept + X @ true_coef + noise_sd * rng.standard_normal(n)
    return Dataset(
        name=design,
        X=X,
        y=y,
        feature_names=tuple(f"x{j}" for j in range(p)),
        noise_sigma=1.0,
        sample_weight=sample_weight,
        fit_intercept=fit_intercept,
        true_coef=np.concatenate([[intercept], true_coef]) if fit_intercept else true_coef,
        description=f"simulated: {SIMULATED_DESIGNS[design]}, noise sigma 1",
    )


LARGEST_VALUE = 1e100
"""Largest magnitude a table may hold. Sums of squares and cross-products of such values stay far below the
float64 limit (1.8e308) for any realistic number of rows; a column beyond it is to be rescaled."""


def validate_arrays(X, y, *, name: str = "data", feature_names=None, target: str = "y") -> None:
    """Raise :class:`DataError` unless ``X`` (n, p) and ``y`` (n,) are finite with at least 2 rows.

    The message names the offending columns (``feature_names``, ``target``) when given.
    """
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{name}: X must be 2-D and y 1-D with the same number of rows")
    if X.shape[0] < 2:
        raise DataError(f"{name}: needs at least 2 rows, got {X.shape[0]}")
    if X.shape[1] < 1:
        raise DataError(f"{name}: needs at least one feature column")
    names = [f"x{j}" for j in range(X.shape[1])] if feature_names is None else list(feature_names)
    check_values(np.column_stack([X, y]), [*names, target], name=name)


def check_values(columns, names, *, name: str = "data") -> None:
    """Raise :class:`DataError` naming the columns of ``columns`` (n, k) that hold missing or infinite values,
    or values beyond :data:`LARGEST_VALUE`; ``names`` names the ``k`` columns."""
    columns = np.asarray(columns, dtype=float)
    for problem, bad in (
        ("missing values", np.isnan(columns)),
        ("infinite values", np.isinf(columns)),
        (
            f"values beyond {LARGEST_VALUE:.0e} (rescale them: their squares overflow)",
            np.abs(np.nan_to_num(columns, posinf=0.0, neginf=0.0)) > LARGEST_VALUE,
        ),
    ):
        if bad.any():
            named = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
            raise DataError(f"{name}: {problem} in column(s) {', '.join(map(str, named))}")


def _header(path: Path) -> list[str]:
    """The first line of a CSV file, split as pandas splits it (no renaming of duplicates)."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        return next(csv.reader(file), [])


def read_frame(path, target: str | None) -> pd.DataFrame:
    """Read a user's CSV table as it is (text columns kept), after the checks every reader needs.

    A first column without a name that holds 0, 1, ..., n - 1 (or 1, ..., n) is a row index saved with the
    table (pandas' ``to_csv`` default): it is dropped with a warning line on stderr. Any other column without a
    name is refused, as are duplicate names (pandas would silently rename them ``a.1``).

    Raises
    ------
    DataError
        Missing, unreadable or empty file, a header without rows, an unnamed or duplicate column, no column
        ``target`` (when given; with a hint for a ``;``-delimited file).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a CSV file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        header = _header(path)
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            f"{path}: not a readable CSV table ({str(error).splitlines()[0]})"
        ) from None
    duplicated = sorted({name for name in header if header.count(name) > 1 and name.strip()})
    if duplicated:
        raise DataError(f"{path}: duplicate column name(s) {', '.join(duplicated)}")
    unnamed = [j for j, name in enumerate(header) if not name.strip()]
    if unnamed[:1] == [0] and len(frame) and pd.api.types.is_integer_dtype(frame.iloc[:, 0]):
        index = frame.iloc[:, 0].to_numpy()
        if np.array_equal(index, np.arange(len(frame))) or np.array_equal(
            index, np.arange(1, len(frame) + 1)
        ):
            print(
                f"warning: {path}: dropped the unnamed first column (a saved row index)",
                file=sys.stderr,
            )
            frame = frame.iloc[:, 1:]
            unnamed = unnamed[1:]
    if unnamed:
        positions = ", ".join(str(j + 1) for j in unnamed)
        raise DataError(
            f"{path}: column(s) {positions} have no name in the header (name them, or drop them)"
        )
    if target is not None and target not in frame.columns:
        hint = ""
        if len(frame.columns) == 1 and ";" in str(frame.columns[0]):
            hint = "; the file looks ';'-delimited: save it with commas"
        raise DataError(
            f"{path}: no column named {target!r} (columns: {', '.join(map(str, frame.columns))}){hint}"
        )
    if frame.empty:
        raise DataError(f"{path}: a header but no rows")
    return frame


def read_csv(path, target: str) -> Dataset:
    """Read a user's table: ``target`` is the response, every other column a numeric feature
    (:func:`read_frame` first).

    Raises
    ------
    DataError
        What :func:`read_frame` raises; a non-numeric column (named), NaN, inf or values beyond
        :data:`LARGEST_VALUE` (named), fewer than 2 rows.
    """
    path = Path(path)
    frame = read_frame(path, target)
    non_numeric = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataError(
            f"{path}: non-numeric column(s) {', '.join(non_numeric)} (encode them as numbers first)"
        )
    feature_names = tuple(str(c) for c in frame.columns if c != target)
    X = frame.drop(columns=[target]).to_numpy(dtype=float)
    y = frame[target].to_numpy(dtype=float)
    validate_arrays(X, y, name=str(path), feature_names=feature_names, target=target)
    return Dataset(
        name=path.stem,
        X=X,
        y=y,
        feature_names=feature_names,
        noise_sigma=plug_in_noise_sigma(X, y),
        description=f"user table {path.name}, target {target!r}; noise sigma: least-squares residual SD",
    )
