"""The twin of your own estimator: what a Ridge-type, Lasso, logistic, Poisson, Gamma, Tweedie or quantile fit on
your table is not telling you.

Claim
    The estimator fitted on the user's CSV is the MAP of its Bayesian twin (checked: relative error against the
    same estimator refitted to tight tolerance, <= 1e-8 for Ridge, <= 1e-6 otherwise); the twin's posterior
    (exact Student-t for Ridge, NUTS otherwise) gives the intervals, correlations and predictive intervals the
    point estimate hides. A tool on the user's data, not an experiment: see :mod:`models.twin`.

Writes ``results/twin/<csv stem>/`` (or ``--out``)
    ``coefficients.csv``  per coefficient: estimator, MAP, posterior mean, SD, 5% and 95% (original scale)
    ``correlation.csv``   posterior correlation of the coefficients
    ``predictions.csv``   per row of the table: estimator, posterior mean of E[y|x] with its 90% interval,
                          90% predictive interval, observed y
    ``forest.png``        per-SD effects: estimator, MAP and the 90% posterior interval per feature
    ``predictive.png``    observed y against the 90% predictive and mean intervals, rows sorted by prediction
    ``posterior.nc``      the posterior draws on the original scale (git-ignored)
    ``metadata.json``     config, seed, versions, seconds, checks, metrics

``--estimator logistic`` takes ``--C`` (``inf``: no penalty, refused with one line when the classes are
separable or the design is rank-deficient) and ``--l1-ratio`` (an l1 or elastic-net penalty, fitted with saga;
its MAP is certified by scikit-learn's subgradient conditions; saga converges slowly on raw columns of
different scales, so add ``--standardize`` there: on the tests' 40-row table (a column ~1e3, classes
separated by another column) it stopped 4.8 relative from the optimum after 1e5 iterations, and the checks
said so). ``--standardize`` fits
``Pipeline(StandardScaler(), estimator)``, a different penalty (on standardized coefficients); every coefficient
is still reported on the original scale. NUTS samples in standardized coordinates either way. A target with 3
or more classes gets the multinomial twin (:mod:`models.multinomial`): coefficients per class, named
``feature[class]`` (the intercepts summing to zero, as scikit-learn reports them), and ``predictions.csv`` has
one row per (row, class), ``E[y|x]`` being the class's probability and ``observed`` 1 for the row's class.

``--estimator ard`` fits ``ARDRegression()`` (no penalty flag: it fits its own per-feature prior by the
evidence; the features it prunes have coefficient 0 and no spread). ``--estimator ridge_classifier`` takes
``--alpha``: with two classes, the Ridge twin on the classes coded -1/+1, a misspecified Gaussian likelihood
whose posterior is that of the decision function (the predictions are the decision function, not
probabilities); with 3 or more, one-vs-rest as scikit-learn fits it: one such twin per class on its codes (+1
for its rows, -1 for the others) at the shared alpha (:mod:`models.ridge_classifier`), coefficients named
``feature[class]``, and ``predictions.csv`` one row per (row, class) with the class's decision function and
``observed`` its code.
``--estimator quantile`` takes ``--alpha`` and ``--quantile`` (default 0.5): the asymmetric Laplace twin of
``QuantileRegressor`` (:mod:`models.quantile`); its "mean" columns are the conditional quantile ``x beta + b0``.
``--estimator gamma`` (y > 0) and ``--estimator tweedie`` with ``--power`` (default 1.5: exact zeros allowed; 0,
2 and 3 too) take ``--alpha``: the twins of ``GammaRegressor`` and ``TweedieRegressor`` (log link), their
dispersion sampled with the coefficients (:mod:`models.tweedie`).

Text columns are categories, one-hot encoded before the estimator (a ColumnTransformer: the twin of the final
step on the encoded design); ``--formula`` builds the design with formulaic instead; ``--weights COLUMN`` passes
sample weights.

Exposure and trials (neither a feature, neither with ``--weights``). ``--estimator poisson --exposure COLUMN``
takes ``--target`` as the count observed over that exposure (> 0, e.g. person-years): ``PoissonRegressor`` is
fitted on the rate ``count / exposure`` with ``sample_weight = exposure`` (scikit-learn's convention), which is a
Poisson likelihood of the counts with offset ``log(exposure)`` when the counts are whole, and a
quasi-likelihood otherwise (the estimator's label says which; :func:`models.glm.poisson_likelihood`); the
predictions are rates, the predictive interval that of ``count / exposure``. ``--estimator logistic --trials
COLUMN`` takes ``--target`` as the number of successes out of that many trials (whole numbers; a target of
proportions is refused with how to convert it): the estimator is fitted on weighted 0/1 rows
(:func:`models.glm.binomial_rows`), R's binomial ``glm`` with ``weights = trials``; the predictions are per table
row, observed the proportion ``successes / trials``.

A ``--data`` that is a glob or several Parquet/CSV files (or one Parquet file) streams: the Ridge twin runs on
sufficient statistics summed block by block (:mod:`models.streaming`; ``--scheduler ADDRESS`` sums them on a
dask.distributed cluster), and writes the coefficients, correlations and posterior draws, without predictions
or figures. Only the Ridge twin streams, for now.

Run
    priorlab twin --data table.csv --target y --estimator ridge --alpha 1
    priorlab twin --data 'data/part-*.parquet' --target y --estimator ridge
    priorlab twin --data table.csv --formula "y ~ x1 + C(region) + x1:x2" --weights w
    priorlab twin --data claims.csv --target claims --exposure years --estimator poisson
    priorlab twin --data schools.csv --target passed --trials tested --estimator logistic
    python -m experiments.twin --data table.csv --target y --estimator ridge --alpha 1
    python -m experiments.twin --data table.csv --target clicked --estimator logistic --C 0.5 --l1-ratio 1
"""

import argparse
import glob
import re
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from experiments import _cli
from models import data as datasets
from models.data import DataError, check_number
from models.glm import binomial_rows
from models.registry import KINDS
from models.results import result_set, write_csv, write_figure, write_metadata, write_posterior
from models.tweedie import check_power
from models.twin import TwinFit, fit_twin

NAME = "twin"
ESTIMATORS = tuple(name for name, kind in KINDS.items() if kind.command is not None)


@dataclass(frozen=True)
class Config:
    """Settings; :data:`FAST` is the smoke-run variant (shorter NUTS warm-up)."""

    estimator: str = "ridge"
    alpha: float | None = None
    C: float | None = None
    l1_ratio: float = 0.0
    quantile: float | None = None
    power: float | None = None
    standardize: bool = False
    seed: int = 20261126
    draws: int = 2000
    tune: int = 1000
    chains: int = 2


FAST = Config(draws=1000, tune=500)


class Table(NamedTuple):
    """A user's table as the twin takes it: features (text columns allowed), response, optional weights."""

    name: str
    X: pd.DataFrame
    y: np.ndarray
    sample_weight: np.ndarray | None = None
    text_columns: tuple[str, ...] = ()
    fit_intercept: bool = True
    exposure: np.ndarray | None = None
    trials: np.ndarray | None = None


def make_estimator(config: Config, table: Table | None = None):
    """The scikit-learn estimator the flags name (scikit-learn's default penalty when none is given).

    With text columns in ``table``, a Pipeline: a ColumnTransformer one-hot encodes them (one column per
    level, so the prior treats every level alike; with no penalty the first level is dropped, since all of
    them and the intercept are collinear) and passes the numeric columns through (or standardizes them with
    ``--standardize``), then the estimator. Without an intercept in ``--formula``, ``fit_intercept=False``.
    """
    command = KINDS[config.estimator].command
    values = {"alpha": config.alpha, "C": config.C}
    # ARD has no penalty flag: it fits its own prior (its lambda_) by maximizing the evidence.
    takes = f"takes --{command.flag}" if command.flag else "fits its own prior (no penalty flag)"
    for flag, value in values.items():
        if flag != command.flag and value is not None:
            users = [name for name in ESTIMATORS if KINDS[name].command.flag == flag]
            raise DataError(f"--{flag} is for {', '.join(users)}; {config.estimator} {takes}")
    if config.l1_ratio and command.flag != "C":
        raise DataError(f"--l1-ratio is for logistic; {config.estimator} {takes}")
    value = 1.0 if values.get(command.flag) is None else values[command.flag]
    # Checked again by fit_twin; here so that a bad flag fails before the file is read.
    if command.flag == "C":
        check_number("C", value, inclusive=False, inf_means="no penalty")
    if command.flag == "alpha":
        check_number("alpha", value)
    check_number("l1_ratio", config.l1_ratio, high=1.0)
    estimator = command.make(value, config.l1_ratio, config.seed)
    if config.quantile is not None:
        if "quantile" not in estimator.get_params():
            raise DataError(f"--quantile is for quantile; {config.estimator} {takes}")
        check_number("quantile", config.quantile, high=1.0, inclusive=False)
        estimator.set_params(quantile=config.quantile)
    if config.power is not None:
        if "power" not in estimator.get_params():
            raise DataError(f"--power is for tweedie; {config.estimator} {takes}")
        check_power(config.power)
        estimator.set_params(power=config.power)
    if table is not None and not table.fit_intercept:
        estimator.set_params(fit_intercept=False)
    if table is not None and table.text_columns:
        flat = value == command.no_penalty
        encoder = OneHotEncoder(drop="first" if flat else None, sparse_output=False)
        features = ColumnTransformer(
            [("categories", encoder, list(table.text_columns))],
            remainder=StandardScaler() if config.standardize else "passthrough",
            verbose_feature_names_out=False,
        )
        return make_pipeline(features, estimator)
    return make_pipeline(StandardScaler(), estimator) if config.standardize else estimator


def looks_like_dates(column: pd.Series) -> bool:
    """Whether most values of a text column parse as dates (a date is not a category to one-hot encode)."""
    values = column.dropna().astype(str).head(200)
    if values.empty or not values.str.contains(r"\d").any():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.9)


def _pop_numbers(frame: pd.DataFrame, column: str, what: str, path, target) -> np.ndarray:
    """Remove ``column`` (not a feature) from ``frame`` and return it as finite floats."""
    if column == target:
        raise DataError(f"{path}: the {what} column {column!r} is the target")
    if column not in frame.columns:
        raise DataError(f"{path}: no {what} column named {column!r}")
    values = pd.to_numeric(frame.pop(column), errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: the {what} column {column!r} must hold finite numbers")
    return values


def load_table(
    path,
    target: str | None,
    *,
    formula: str | None = None,
    weights: str | None = None,
    exposure: str | None = None,
    trials: str | None = None,
):
    """The user's CSV as a :class:`Table`: ``target`` against every other column, or a formulaic
    ``formula`` (``"y ~ x1 + C(region) + x2:x3"``; ``- 1`` drops the intercept); ``weights`` names a column of
    sample weights, ``exposure`` one of exposures (> 0) and ``trials`` one of binomial trials (none of them a
    feature; see :func:`fit_arrays`). Text columns are categories, one-hot encoded by :func:`make_estimator`.

    Raises
    ------
    DataError
        What :func:`models.data.read_frame` raises; a bad formula or unknown column (one line); a date-like
        text column; missing values; a non-numeric target, weight, exposure or trials column; an exposure
        that is not positive.
    """
    frame = datasets.read_frame(path, None if formula else target)
    sample_weight = None
    if weights is not None:
        sample_weight = _pop_numbers(frame, weights, "weight", path, target)
    if exposure is not None:
        exposure_values = _pop_numbers(frame, exposure, "exposure", path, target)
        if np.any(exposure_values <= 0):
            raise DataError(
                f"{path}: the exposure column {exposure!r} must be > 0, got {exposure_values.min():g}"
            )
    extra = {"exposure": exposure_values} if exposure is not None else {}
    if trials is not None:
        extra["trials"] = _pop_numbers(frame, trials, "trials", path, target)
    dates = [
        str(c)
        for c in frame.columns
        if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
    ]
    dates = [c for c in dates if looks_like_dates(frame[c])]
    if dates:
        raise DataError(
            f"{path}: column(s) {', '.join(dates)} hold dates: encode them as numbers (e.g. days since a "
            "start) or drop them"
        )
    missing = [str(c) for c in frame.columns if frame[c].isna().any()]
    if missing:
        raise DataError(f"{path}: missing values in column(s) {', '.join(missing)}")
    numbers = frame.select_dtypes("number")
    datasets.check_values(numbers.to_numpy(dtype=float), list(numbers.columns), name=str(path))
    if formula is not None:
        import formulaic  # imported here only: 0.6 s of every other run's start-up

        try:
            matrices = formulaic.model_matrix(formula, frame, na_action="raise")
        except Exception as error:  # formulaic raises many types for a bad formula or column
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(f"--formula {formula!r}: {reason}") from None
        if not hasattr(matrices, "lhs") or matrices.lhs.shape[1] != 1:
            raise DataError(
                f"--formula {formula!r}: needs one response on the left, as in 'y ~ x1 + x2'"
            )
        design = pd.DataFrame(matrices.rhs)
        has_intercept = "Intercept" in design.columns
        X = design.drop(columns=["Intercept"]) if has_intercept else design
        y = np.asarray(matrices.lhs, dtype=float)[:, 0]
        return Table(Path(path).stem, X, y, sample_weight, (), has_intercept, **extra)
    y = pd.to_numeric(frame[target], errors="coerce")
    if y.isna().any() and not frame[target].isna().any():
        # A logistic target may be text labels: the twin takes any two labels.
        y = frame[target]
    X = frame.drop(columns=[target])
    text = tuple(str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]))
    return Table(Path(path).stem, X, y.to_numpy(), sample_weight, text, **extra)


def fit_arrays(table: Table):
    """``(X, y, sample_weight)`` the estimator is fitted on.

    The table's own, or with exposure the rates ``count / exposure`` weighted by the exposure
    (scikit-learn's convention; :func:`models.glm.poisson_likelihood`), or with trials the weighted 0/1 rows
    of the successes (:func:`models.glm.binomial_rows`).

    Raises
    ------
    DataError
        With trials: a target of proportions (the successes are asked for), or successes that are not whole
        numbers from 0 to the trials.
    """
    if table.exposure is not None:
        counts = np.asarray(table.y, dtype=float)
        return table.X, counts / table.exposure, table.exposure
    if table.trials is not None:
        try:
            successes = np.asarray(table.y, dtype=float)
        except (TypeError, ValueError):
            raise DataError("with --trials the target must be the number of successes") from None
        fractional = successes != np.round(successes)
        if np.any(fractional) and np.all((successes >= 0) & (successes <= 1)):
            raise DataError(
                f"with --trials the target is the number of successes, but it holds proportions "
                f"({successes[fractional][0]:g}): multiply them by the trials column"
            )
        rows = binomial_rows(table.X, successes, table.trials)
        return rows.X, rows.y, rows.sample_weight
    return table.X, table.y, table.sample_weight


def run(config: Config, table: Table) -> tuple[TwinFit, pd.DataFrame]:
    """The twin of the configured estimator on the table, and its predictions for the table's rows."""
    X, y, sample_weight = fit_arrays(table)
    twin = fit_twin(
        make_estimator(config, table),
        X,
        y,
        sample_weight=sample_weight,
        seed=config.seed,
        draws=config.draws,
        tune=config.tune,
        chains=config.chains,
    )
    predictions = twin.predict(table.X, exposure=table.exposure)
    if twin.classes is not None:
        # One row per (row, class). Multinomial: E[y | x] the class's probability, observed 1 for the row's
        # class and 0 for the others; one-vs-rest RidgeClassifier: the class's decision function, observed
        # the codes it fits (+1 and -1).
        classes = predictions.index.get_level_values("class")
        rows = np.repeat(np.asarray(table.y), len(twin.classes))
        own_class = rows == np.asarray(classes)
        codes = KINDS[twin.kind].outcome.class_codes
        predictions["observed"] = (
            own_class.astype(float) if codes is None else np.where(own_class, codes[1], codes[0])
        )
        return twin, predictions
    predictions["observed"] = table.y
    for per_row in (table.exposure, table.trials):  # a rate or a proportion, as E[y | x] is
        if per_row is not None:
            predictions["observed"] = np.asarray(table.y, dtype=float) / per_row
    codes = KINDS[twin.kind].outcome.class_codes
    if codes is not None and not KINDS[twin.kind].outcome.binary:
        # A RidgeClassifier's predictions are its decision function: observed labels as the codes it fits.
        predictions["observed"] = np.where(table.y == twin.positive_class, codes[1], codes[0])
    return twin, predictions


def design(twin: TwinFit, table: Table) -> np.ndarray:
    """The numeric design the twin's coefficients act on (after any feature map)."""
    if twin.feature_map is None:
        return table.X.to_numpy(dtype=float)
    Z = twin.feature_map.transform(table.X)
    return np.asarray(Z.toarray() if hasattr(Z, "toarray") else Z, dtype=float)


def plot_forest(twin: TwinFit, X: np.ndarray):
    """Per feature: the effect of a one-SD change (coefficient x SD of the column), so that features on
    different scales share one axis; 90% posterior interval, posterior mean, estimator and MAP."""
    table = twin.summary().drop(index="intercept", errors="ignore")
    sd = X.std(axis=0, ddof=1)
    if twin.classes is not None:  # one block per class: the intercepts, then each class's features
        table = table.iloc[len(table) - len(twin.classes) * len(sd) :]
        sd = np.tile(sd, len(twin.classes))
    scaled = table.mul(sd, axis=0)
    y = np.arange(len(scaled))[::-1]
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.4 * len(scaled)))
    ax.hlines(
        y, scaled.posterior_q5, scaled.posterior_q95, color="tab:blue", linewidth=3, alpha=0.5
    )
    ax.plot(scaled.posterior_mean, y, "o", color="tab:blue", label="posterior mean (90% interval)")
    ax.plot(scaled.estimator, y, "x", color="black", markersize=9, label="estimator")
    ax.plot(scaled["map"], y, "+", color="tab:red", markersize=12, label="twin's MAP")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_yticks(y, scaled.index)
    ax.set_xlabel("effect of a one-SD change of the feature (coefficient x column SD)")
    ax.set_title(f"{twin.label}: the point estimate and its posterior")
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_predictive(twin: TwinFit, predictions: pd.DataFrame, max_rows: int = 200):
    """Observed responses against the 90% intervals, rows sorted by the posterior mean prediction."""
    order = predictions.sort_values("mean").reset_index(drop=True)
    if len(order) > max_rows:
        order = order.iloc[np.linspace(0, len(order) - 1, max_rows).round().astype(int)]
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(9, 5))
    if order.predictive_q5.notna().all():
        ax.fill_between(
            x,
            order.predictive_q5,
            order.predictive_q95,
            step="mid",
            color="tab:blue",
            alpha=0.2,
            label="90% predictive interval (new y)",
        )
    ax.fill_between(
        x,
        order.mean_q5,
        order.mean_q95,
        step="mid",
        color="tab:blue",
        alpha=0.5,
        label="90% interval of E[y | x]",
    )
    ax.plot(x, order.estimator, color="black", linewidth=1, label="estimator's prediction")
    ax.plot(x, order.observed, ".", color="tab:red", markersize=4, label="observed y")
    ax.set_xlabel(f"row of the table, sorted by prediction ({len(order)} shown)")
    if KINDS[twin.kind].outcome.binary:
        ax.set_ylabel(f"P(y = {twin.positive_class})")
    elif KINDS[twin.kind].outcome.one_vs_rest:
        ax.set_ylabel("decision function per class (its class coded +1), one point per row, class")
    elif twin.classes is not None:
        ax.set_ylabel("P(y = class), one point per row and class")
    elif twin.positive_class is not None:
        ax.set_ylabel(f"decision function (class {twin.positive_class} coded +1)")
    else:
        ax.set_ylabel("response")
    ax.set_title(f"{twin.label}: what a new observation could be")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def is_streamed(data) -> bool:
    """Whether ``--data`` (a list of paths) is a glob, several files or Parquet: the streaming path."""
    return len(data) > 1 or any(
        glob.has_magic(str(path)) or path.suffix.lower() == ".parquet" for path in data
    )


def run_streamed(args) -> int:
    """The Ridge twin on sufficient statistics streamed from ``--data``'s files (:mod:`models.streaming`).

    Parquet files are read batch by batch (only the needed columns), CSV files chunk by chunk, one dask task
    per file with ``--scheduler``; no table is held in memory. Writes ``coefficients.csv`` (MAP and exact
    posterior, no estimator column: the estimator is never fitted on rows), ``correlation.csv``,
    ``posterior.nc`` and ``metadata.json``: no predictions (the rows are not kept) and no figures.
    """
    import xarray as xr

    from models import streaming

    if args.estimator != "ridge":
        raise DataError(
            "only the Ridge twin streams, for now: a glob, several files or Parquet need --estimator ridge"
        )
    if args.target is None or args.formula is not None or args.standardize:
        raise DataError(
            "streamed --data needs --target, and takes neither --formula nor --standardize"
        )
    config = replace(FAST if args.fast else Config(), alpha=args.alpha, C=args.C)
    config = config if args.seed is None else replace(config, seed=args.seed)
    alpha = float(make_estimator(config).alpha)
    stem = re.sub(r"[*?\[\]]", "", args.data[0].stem).strip("-_") or "streamed"
    out = _cli.output_dir(NAME, argparse.Namespace(out=args.out, data=Path(stem)))

    start = time.perf_counter()
    stats = streaming.stream_statistics(
        [str(path) for path in args.data],
        target=args.target,
        weights=args.weights,
        scheduler=args.scheduler,
    )
    statistics_seconds = time.perf_counter() - start
    twin = streaming.ridge_twin(
        stats, ridge_alpha=alpha, seed=config.seed, draws=config.draws, chains=config.chains
    )
    q = np.array([0.05, 0.95])
    low, high = twin.exact.quantile(q)
    index = pd.Index(twin.names, name="coefficient")
    summary = pd.DataFrame(
        {"map": twin.map_coef, "posterior_mean": twin.exact.mean, "posterior_sd": twin.exact.sd}
        | {"posterior_q5": low, "posterior_q95": high},
        index=index,
    )
    cov = twin.exact.cov
    sd = np.sqrt(np.diag(cov))
    correlation = pd.DataFrame(cov / np.outer(sd, sd), index=index, columns=list(twin.names))
    posterior = xr.Dataset(
        {"coefficient_draws": (("chain", "draw", "coefficient"), twin.draws)},
        coords={"coefficient": list(twin.names)},
        attrs={"source": "independent draws from the exact posterior, from streamed statistics"},
    )
    metrics = {
        "map_rel_error_vs_exact_mean": twin.checks["map_vs_exact_mean"]["value"],
        "n_rows": stats.n_rows,
        "n_features": stats.n_features,
        "n_files": len(streaming.expand_paths([str(path) for path in args.data])),
        "posterior": "exact (streamed statistics)",
        "max_abs_posterior_correlation": float(
            np.max(np.abs(correlation.to_numpy() - np.eye(len(sd))))
        ),
    }
    with result_set(out) as folder:
        write_csv(summary, folder / "coefficients.csv")
        write_csv(correlation, folder / "correlation.csv")
        write_posterior(xr.DataTree.from_dict({"posterior": posterior}), folder / "posterior.nc")
        write_metadata(
            folder / "metadata.json",
            module=f"experiments.{NAME}",
            config=asdict(config)
            | {"data": [path.name for path in args.data], "target": args.target}
            | {"weights": args.weights, "scheduler": args.scheduler is not None, "streamed": True},
            seed=config.seed,
            seconds={"total": time.perf_counter() - start, "statistics": statistics_seconds}
            | twin.seconds,
            checks=twin.checks,
            metrics=metrics,
            estimator=f"Ridge(alpha={alpha:g})",
            noise="unknown: Jeffreys' prior 1 / sigma**2 (Student-t posterior)",
        )
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(summary.round(4).to_string())
    return _cli.report(out, metrics, twin.checks)


def main(argv=None) -> int:
    parser = _cli.parser(NAME, " ".join(__doc__.split("\n\n")[0].split()))
    parser.epilog = (
        "Estimators: ridge (Ridge; LinearRegression at --alpha 0), ard (ARDRegression), ridge_classifier "
        "(RidgeClassifier, binary or one-vs-rest), lasso, logistic (binary or multinomial; --trials for "
        "successes out of trials), poisson (--exposure for rates), gamma, tweedie (--power), quantile "
        "(--quantile). In Python, models.twin.fit_twin and BayesianTwin also take ElasticNet, the CV "
        "estimators, SGDRegressor and SGDClassifier (the exact optimum of SGD's objective) and pipelines; "
        "models.kernel.kernel_twin takes KernelRidge (a Gaussian process)."
    )
    parser.add_argument("--estimator", choices=ESTIMATORS, default="ridge")
    penalty = parser.add_mutually_exclusive_group()
    penalty.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="ridge, ridge_classifier, lasso, poisson, gamma, tweedie, quantile penalty",
    )
    penalty.add_argument(
        "--C", type=float, default=None, help="logistic inverse penalty (inf: none)"
    )
    parser.add_argument(
        "--l1-ratio", type=float, default=0.0, help="logistic: share of the l1 penalty (saga)"
    )
    parser.add_argument(
        "--quantile", type=float, default=None, help="quantile: the quantile in (0, 1) (0.5)"
    )
    parser.add_argument(
        "--power", type=float, default=None, help="tweedie: the Tweedie power (1.5; 0, 2 or 3)"
    )
    parser.add_argument(
        "--standardize", action="store_true", help="fit Pipeline(StandardScaler(), estimator)"
    )
    parser.add_argument(
        "--formula", default=None, help="a formulaic formula, e.g. 'y ~ x1 + C(region) + x2:x3'"
    )
    parser.add_argument("--weights", default=None, help="a column of sample weights")
    parser.add_argument(
        "--exposure", default=None, help="poisson: a column of exposures (--target the counts)"
    )
    parser.add_argument(
        "--trials", default=None, help="logistic: a column of trials (--target the successes)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="a dask.distributed scheduler address (streamed --data)"
    )
    # --data takes one CSV, or a glob or several Parquet/CSV files (streamed: see run_streamed).
    next(action for action in parser._actions if action.dest == "data").nargs = "+"
    args = parser.parse_args(argv)
    per_row = {"exposure": ("poisson", args.exposure), "trials": ("logistic", args.trials)}
    for flag, (estimator, column) in per_row.items():
        if column is None:
            continue
        if args.estimator != estimator:
            raise DataError(f"--{flag} is for --estimator {estimator}, not {args.estimator}")
        if args.weights is not None:
            raise DataError(f"--{flag} sets the sample weights itself: leave out --weights")
        if args.data is not None and is_streamed(args.data):
            raise DataError(f"--{flag} needs one CSV table (only the Ridge twin streams)")
    if args.data is not None and is_streamed(args.data):
        return run_streamed(args)
    if args.scheduler is not None:
        raise DataError("--scheduler is for streamed tables: a glob, several files or Parquet")
    args.data = None if args.data is None else args.data[0]
    if args.data is None or (args.target is None and args.formula is None):
        raise DataError("--data FILE.csv and --target COLUMN (or --formula) are required")
    if args.target is not None and args.formula is not None:
        raise DataError("--formula names the response itself: leave out --target")
    config = replace(
        FAST if args.fast else Config(),
        estimator=args.estimator,
        alpha=args.alpha,
        C=args.C,
        l1_ratio=args.l1_ratio,
        quantile=args.quantile,
        power=args.power,
        standardize=args.standardize,
    )
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    make_estimator(config)  # penalty errors before reading the file
    table = load_table(
        args.data,
        args.target,
        formula=args.formula,
        weights=args.weights,
        exposure=args.exposure,
        trials=args.trials,
    )
    out = _cli.output_dir(NAME, args)

    start = time.perf_counter()
    twin, predictions = run(config, table)
    seconds = time.perf_counter() - start
    summary = twin.summary()
    metrics = {
        "map_rel_error_vs_estimator": twin.map_rel_error,
        "map_rel_error_vs_reference": twin.reference_rel_error,  # None: certified by its KKT check
        "n_rows": int(table.X.shape[0]),
        "n_features": int(table.X.shape[1]),
        "posterior": "exact" if twin.exact is not None else "NUTS",
        # nanmax: a coefficient fixed at 0 (a feature ARD pruned) has no correlation.
        "max_abs_posterior_correlation": float(
            np.nanmax(np.abs(twin.correlation().to_numpy() - np.eye(len(twin.names))))
        ),
    }
    if twin.convergence is not None:
        metrics |= {f"nuts_{k}": v for k, v in twin.convergence._asdict().items()}
    writing = time.perf_counter()
    forest, predictive = plot_forest(twin, design(twin, table)), plot_predictive(twin, predictions)
    with result_set(out) as folder:
        write_csv(summary, folder / "coefficients.csv")
        write_csv(twin.correlation(), folder / "correlation.csv")
        write_csv(predictions, folder / "predictions.csv")
        write_figure(forest, folder / "forest.png")
        write_figure(predictive, folder / "predictive.png")
        plt.close("all")
        write_posterior(twin.idata, folder / "posterior.nc")
        write_metadata(
            folder / "metadata.json",
            module=f"experiments.{NAME}",
            config=asdict(config)
            | {"data": args.data.name, "target": args.target, "formula": args.formula}
            | {"weights": args.weights, "categories": list(table.text_columns)}
            | {"exposure": args.exposure, "trials": args.trials},
            seed=config.seed,
            # Fit steps as fit_twin timed them, then the tables, figures and posterior file.
            seconds={"total": seconds}
            | (twin.seconds or {})
            | {"write": time.perf_counter() - writing},
            checks=twin.checks,
            metrics=metrics,
            estimator=twin.label,
            noise=twin.noise_note,
            nuts_retry=twin.sampler_note,
        )
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(summary.round(4).to_string())
    if twin.sampler_note:
        print(f"NUTS: {twin.sampler_note}")
    return _cli.report(out, metrics, twin.checks)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
