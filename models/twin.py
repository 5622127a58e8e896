"""The Bayesian twin of a scikit-learn estimator the user brings, with its data.

``fit_twin(estimator, X, y)`` takes a fitted or unfitted ``Ridge``, ``RidgeCV`` (at its ``alpha_``),
``BayesianRidge`` (at its fitted ``lambda_`` and ``alpha_``), ``Lasso``, ``LassoCV`` (at its ``alpha_``),
``ElasticNet``, ``LogisticRegression`` (l2, l1, elastic-net or no penalty; any solver but liblinear; 3 or more
classes: the multinomial twin, :mod:`models.multinomial`) or
``PoissonRegressor`` (and the others of :data:`models.registry.KINDS`), alone or as the last step of a ``Pipeline``, and
returns a :class:`TwinFit`: the estimator's
coefficients next to the twin's MAP (their relative error, checked), the posterior (exact where it exists, NUTS
otherwise) and what the point hides (intervals, correlations, predictive intervals for new rows), on the user's
original feature scale and with the user's feature names.

The twins reuse the suite's pieces: :func:`models.linear.linear_regression` with
:func:`models.exact.linear_posterior` and :class:`models.fit.PreciseMAP` (Ridge-type), :mod:`models.sparse`
(Lasso, ElasticNet: :class:`models.sparse.SparseMAP` with exact zeros, NUTS), :mod:`models.glm` (logistic,
Poisson: PreciseMAP, or SparseMAP for a logistic l1 part; NUTS). NUTS samples in standardized coordinates
(columns centered and divided by their SD, prior scales multiplied by it: the same posterior), so that columns
on wildly different scales (a year, an income) do not defeat its step size; draws are mapped back exactly. The
logistic (l2 or no penalty) and Poisson MAPs are found on that same model and mapped back the same way.

``ARDRegression``'s twin is the linear twin with ARD's per-feature prior ``N(0, 1 / lambda_)`` and its fitted
noise ``1 / sqrt(alpha_)`` (exact Gaussian posterior: mean ``coef_``, covariance ``sigma_``); the features it
pruned (a prior variance of 0) are left out of the model and reported with coefficient 0 and no spread.
``RidgeClassifier``'s (binary) is the Ridge twin on the classes coded -1/+1, as scikit-learn fits it: a
misspecified Gaussian likelihood whose posterior is that of the decision function; with 3 or more classes
(one-vs-rest), one such twin per class on its codes at the shared alpha, each with its exact posterior
(:mod:`models.ridge_classifier`): the posterior of the K decision functions. ``KernelRidge`` has no
coefficients on features; its twin, a Gaussian process, is :func:`models.kernel.kernel_twin`.
``SGDRegressor`` and a binary ``SGDClassifier`` minimize ``(1/n) sum_i w_i L_i + alpha R(w)``; with the squared
error or the log loss that is a Ridge, Lasso, ElasticNet, RidgeClassifier or LogisticRegression objective
(:func:`models.registry.sgd_equivalent`), and their twin is that estimator's: the MAP is the exact optimum of
SGD's objective, and SGD's distance from it (``estimator_distance_from_optimum``) is measured, not checked, since
SGD stops short of it by design (its step schedule, ``average`` and ``tol`` change where it stops, not what it
minimizes).

Noise scale: Ridge and RidgeCV use the unknown-noise conjugate twin (its MAP in ``beta`` is Ridge's for every
``sigma``; exact Student-t posterior); BayesianRidge its fitted ``1 / sqrt(alpha_)``
(exact Gaussian posterior); the Lasso and ElasticNet a plug-in, the least-squares residual SD
(:func:`models.data.plug_in_noise_sigma`), since their MAP is a posterior mode for a fixed ``sigma`` only.

With a StandardScaler ``(m, s)`` the twin is fitted on the scaled features and mapped back exactly (a linear
map of the coefficients): ``beta = beta_scaled / s``, ``intercept = intercept_scaled - sum(beta_scaled m / s)``.
Any other transformer steps (a ColumnTransformer with a OneHotEncoder, PolynomialFeatures, SplineTransformer,
...) are a fixed feature map: the penalty acts on the final step's coefficients, so the twin is the final
estimator's twin on the transformed design, its coefficients named by ``get_feature_names_out`` and reported on
the transformed features (a non-affine map has no original-scale coefficients); ``predict`` takes raw rows.

Settings with no twin raise :class:`models.data.DataError` with one line saying what and why.
"""

import functools
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse
import scipy.special
import xarray as xr
from pymc.logprob.utils import local_check_parameter_to_ninf_switch
from pytensor.compile.mode import Mode
from pytensor.graph.rewriting.basic import in2out
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    MultiTaskElasticNet,
    TweedieRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from models import glm, multinomial, registry, ridge_classifier, sparse, tweedie
from models.data import LARGEST_VALUE, DataError, check_number, check_sample_weight, validate_arrays
from models.diagnostics import Convergence, checks, convergence, correlation, relative_error
from models.exact import LinearPosterior
from models.fit import (
    PreciseMAP,
    coefficients,
    compile_nuts,
    intercept_first,
    posterior_coefficients,
    sample_nuts_retrying,
)
from models.measure import Stopwatch
from models.registry import logistic_penalty

__all__ = [
    "MAP_COMPILE_MODE",
    "unwrap",
    "DENSE_LIMIT_BYTES",
    "validate_table",
    "TwinFit",
    "unstandardize",
    "fit_twin",
]

MAP_COMPILE_MODE = Mode(linker="py", optimizer="merge").register(
    (in2out(local_check_parameter_to_ninf_switch), -1)
)
"""How a twin's precise MAP is compiled: PyTensor's Python implementations of each operation (no C code to
compile) on the graph as PyMC writes it (only identical subgraphs merged, and parameter checks such as
``sigma > 0`` turned into a log-density of ``-inf``, as PyMC's own compilation does, so that a line-search
step out of the support is rejected rather than raised). A twin fit evaluates the function a
few dozen times, so compiling C code or rewriting the graph cost more than it saved. The Ridge twin of diabetes
took 34.6 s from a cold compile cache with the C backend (:data:`models.fit.COMPILE_MODE`); in this mode its
compilation takes 0.3-0.4 s against 1.0-1.1 s with PyTensor's ``FAST_COMPILE`` rewrites, whose faster
evaluations (2 ms against 6 ms each) do not repay that over the MAP search's 48 evaluations; the precision is
the same (every MAP check at 1e-15). Used for the twins with an exact posterior only (a Gaussian likelihood,
plain arithmetic): without the C backend's stabilizing rewrites, a Bernoulli row's ``log(1 - sigmoid(eta))``
underflows to ``-inf`` from ``eta`` of about 37, so the GLM twins keep :data:`models.fit.COMPILE_MODE`.
``python -m experiments.first_answer`` measures the whole
command side by side with bambi."""


def _fail(what: str, why: str):
    raise DataError(f"unsupported: {what} ({why})")


def unwrap(estimator):
    """``(steps before the estimator, final estimator)`` of an estimator or a Pipeline.

    The steps are None (no pipeline, or only passthrough), a lone ``StandardScaler`` (coefficients are mapped
    back to the original features), or a Pipeline of transformers: a fixed feature map (encoders, polynomial
    or spline features, column transformers), the penalty acting on the final step's coefficients, which are
    reported on the transformed features.
    """
    if isinstance(estimator, Pipeline):
        steps = [
            (name, step) for name, step in estimator.steps if step not in (None, "passthrough")
        ]
        if not steps:
            _fail("a Pipeline of passthrough steps", "it has no estimator")
        *before, (_, final) = steps
        for name, step in before:
            if not hasattr(step, "transform"):
                _fail(f"pipeline step {name!r} ({type(step).__name__})", "it has no transform")
        if not before:
            scaler = None
        elif len(before) == 1 and isinstance(before[0][1], StandardScaler):
            scaler = before[0][1]
        else:
            scaler = Pipeline(before)
    else:
        scaler, final = None, estimator
    if isinstance(final, MultiTaskElasticNet):  # MultiTaskLasso too; both subclass Lasso
        _fail(type(final).__name__, "one coefficient vector per target; the twin has one response")
    if isinstance(final, TweedieRegressor):
        tweedie.check_power(final.power, final.link)  # one line for a power with no twin
    if registry.match(final) is None:
        _fail(type(final).__name__, registry.why_no_twin(final))
    return scaler, final


def _check_params(final) -> None:
    """Penalty values and settings that no twin expresses, checked before any fit."""
    params = final.get_params()
    name = type(final).__name__
    alpha = params.get("alpha")
    if alpha is not None and not np.isscalar(alpha):
        _fail(f"{name} with one alpha per target", "the twin has one response")
    if alpha is not None:
        sparse_penalty = isinstance(final, (Lasso, ElasticNet))
        least_squares = f"for {name}, alpha = 0 is least squares: use Ridge(alpha=0)"
        alpha = check_number(
            "alpha",
            alpha,
            inclusive=not sparse_penalty,
            reason=least_squares if sparse_penalty else None,
        )
    if alpha is not None and alpha > LARGEST_VALUE:
        raise DataError(
            f"alpha = {alpha:g} is beyond {LARGEST_VALUE:.0e}: the prior scale underflows; rescale y or "
            "the features instead"
        )
    if params.get("positive"):
        _fail(f"{name}(positive=True)", "a sign constraint is a truncated prior, not built here")
    if isinstance(final, ElasticNet) and not isinstance(final, Lasso):
        if params["l1_ratio"] == 0:
            _fail("ElasticNet(l1_ratio=0)", "a pure l2 penalty: use Ridge(alpha=n * alpha)")
    if isinstance(final, LogisticRegressionCV) and not params["refit"]:
        _fail("LogisticRegressionCV(refit=False)", "its coefficients average the folds' fits")
    if isinstance(final, LogisticRegression):  # LogisticRegressionCV too, a subclass
        if params["solver"] == "liblinear":
            _fail("solver='liblinear'", glm.LIBLINEAR_REASON)
    if isinstance(final, LogisticRegression) and not isinstance(final, LogisticRegressionCV):
        C = check_number("C", logistic_penalty(final)[0], inclusive=False, inf_means="no penalty")
        if 1.0 / C > LARGEST_VALUE:
            raise DataError(
                f"C = {C:g} is below {1 / LARGEST_VALUE:.0e}: the prior scale underflows"
            )


DENSE_LIMIT_BYTES = 2 * 1024**3
"""A scipy sparse ``X`` is made dense (the twin's posterior is dense anyway) up to this size."""


def validate_table(X, y, feature_names=None, *, flat_prior: bool = False):
    """Float ``X``, ``y`` and the feature names, after the checks every twin needs.

    A DataFrame's object columns that hold numbers are converted; a scipy sparse ``X`` is made dense (up to
    :data:`DENSE_LIMIT_BYTES`); ``y`` of shape ``(n, 1)`` is flattened. A constant column is refused under a
    flat prior (``flat_prior``: no penalty), where its coefficient has no posterior; under a proper prior its
    posterior is the prior. Two identical columns are refused always: the Lasso's mode is then not unique,
    and under a flat prior nothing is.

    Raises
    ------
    DataError
        Non-numeric columns (named), missing values (columns named), duplicate column names, mismatched
        shapes, fewer than 2 rows, a constant column (flat prior), two identical columns.
    """
    if scipy.sparse.issparse(X):
        if np.prod(X.shape) * 8 > DENSE_LIMIT_BYTES:
            raise DataError(
                f"a sparse X of shape {X.shape} is too large to make dense "
                f"(over {DENSE_LIMIT_BYTES / 1024**3:g} GiB)"
            )
        X = X.toarray()
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        duplicated = sorted({c for c in names if names.count(c) > 1})
        if duplicated:
            raise DataError(f"duplicate column name(s) {', '.join(duplicated)}")
        X = X.apply(_as_numeric)
        non_numeric = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if non_numeric:
            raise DataError(
                f"non-numeric column(s) {', '.join(non_numeric)} (encode them as numbers first)"
            )
        missing = [str(c) for c in X.columns if X[c].isna().any()]
        if missing:
            raise DataError(f"missing values in column(s) {', '.join(missing)}")
        feature_names = names
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    try:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as error:
        raise DataError(f"X and y must be numeric ({str(error).splitlines()[0]})") from None
    if X.ndim == 2:
        p = X.shape[1]
        feature_names = [f"x{j}" for j in range(p)] if feature_names is None else feature_names
        feature_names = [str(name) for name in feature_names]
        if len(feature_names) != p:
            raise DataError(f"{len(feature_names)} feature names for {p} columns")
    validate_arrays(X, y, name="data", feature_names=feature_names)
    constant = [feature_names[j] for j in np.flatnonzero(np.ptp(X, axis=0) == 0)]
    if constant and flat_prior:
        raise DataError(
            f"constant column(s) {', '.join(constant)}: no information (the intercept's job), and no "
            "prior to stand in without a penalty"
        )
    order = np.lexsort(X)  # identical columns end up next to each other
    same = np.all(X[:, order[1:]] == X[:, order[:-1]], axis=0)
    if np.any(same):
        j = int(np.flatnonzero(same)[0])
        first, second = sorted((order[j], order[j + 1]))
        raise DataError(f"columns {feature_names[first]} and {feature_names[second]} are identical")
    return X, y, tuple(feature_names)


def _as_numeric(column: pd.Series) -> pd.Series:
    """A column of numbers stored as objects (or text), as numbers; any other column unchanged."""
    if pd.api.types.is_numeric_dtype(column):
        return column
    try:
        return pd.to_numeric(column)
    except (TypeError, ValueError):
        return column


def _flat_prior(final) -> bool:
    """Whether the estimator's penalty is zero: no prior to identify a coefficient the data do not."""
    if isinstance(final, LinearRegression):
        return True
    if isinstance(
        final, LogisticRegressionCV
    ):  # (a subclass of LogisticRegression) its Cs are finite
        return False
    if isinstance(final, LogisticRegression):
        return bool(np.isinf(logistic_penalty(final)[0]))
    alpha = final.get_params().get("alpha")
    return alpha is not None and float(alpha) == 0.0


def _fit_estimator(estimator, final, X, y, sample_weight, p):
    """The fitted estimator: the user's if fitted (same number of features), a fitted clone otherwise."""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        fitted = clone(estimator)
        if sample_weight is None:
            kwargs = {}
        elif isinstance(fitted, Pipeline):
            kwargs = {f"{fitted.steps[-1][0]}__sample_weight": sample_weight}
        else:
            kwargs = {"sample_weight": sample_weight}
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # convergence warnings: the reference fit is checked below
            try:
                return fitted.fit(X, y, **kwargs)
            except (ValueError, TypeError) as error:
                # a setting scikit-learn itself refuses (l1 with lbfgs, ...), or sample weights passed to
                # a fit that takes none (ARDRegression)
                message = str(error).splitlines()[0]
                raise DataError(f"{type(final).__name__}.fit refused: {message}") from None
    if getattr(estimator, "n_features_in_", p) != p:
        raise DataError(
            f"the fitted estimator has {estimator.n_features_in_} features, the data {p}"
        )
    return estimator


class TwinFit(NamedTuple):
    """The twin of one estimator on one data set, on the user's original feature scale.

    ``names`` are ``intercept`` (when fitted) then the features; ``estimator_coef``, ``map_coef`` and the
    draws follow that order. ``map_rel_error`` compares the MAP with the estimator as given and
    ``reference_rel_error`` with the same estimator refitted to tight tolerance (the checked one; None for an
    l1 logistic regression, certified by the subgradient conditions instead), both in the space the estimator
    was fitted in (after its scaler). ``exact`` is the closed-form posterior where
    one exists (Ridge-type), else None and ``idata`` holds NUTS draws (``convergence`` their diagnostics;
    ``sampler_note`` says when a run with divergences was sampled again with smaller steps).
    ``positive_class`` is the label of class 1 of a logistic twin. ``seconds``: wall time of each step
    (``prepare``: checks, the estimator's fit and the exact posterior; ``compile``; ``map``; ``reference``;
    ``posterior``: exact draws or NUTS). ``noise_draws``: draws of a noise scale the twin samples with the
    coefficients (the quantile twin's ``sigma``), aligned with ``draws``; else None. ``likelihood``: this fit's
    outcome where it depends on the estimator's settings (the quantile), else None (the kind's).
    ``classes``: the class labels (``classes_`` order) of a twin with one coefficient block per class (the
    multinomial, and the one-vs-rest RidgeClassifier: :meth:`class_posteriors`), else None; its coefficients
    are ``[intercept (K), coef (K x p, class by class)]`` and :meth:`predict` has one row per (row, class).
    """

    label: str
    kind: str
    names: tuple[str, ...]
    noise_sigma: float | None
    noise_note: str
    estimator: object
    estimator_coef: np.ndarray
    map_coef: np.ndarray
    map_rel_error: float
    reference_rel_error: float | None
    exact: LinearPosterior | None
    draws: np.ndarray
    idata: xr.DataTree
    convergence: Convergence | None
    checks: dict
    seed: int
    positive_class: object = None
    sampler_note: str = ""
    feature_map: object = None
    seconds: dict | None = None
    noise_draws: np.ndarray | None = None
    likelihood: object = None
    classes: tuple | None = None

    @property
    def outcome(self) -> registry.Outcome:
        """The likelihood's side of prediction (:class:`models.registry.Outcome`) for this fit."""
        return registry.KINDS[self.kind].outcome if self.likelihood is None else self.likelihood

    @property
    def noise(self):
        """The noise scale predictions use: ``noise_draws`` as a column (one per draw), else
        ``noise_sigma``."""
        return self.noise_sigma if self.noise_draws is None else self.noise_draws[:, None]

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Per coefficient: estimator, MAP, posterior mean, SD and the central ``prob`` interval."""
        q = np.array([(1 - prob) / 2, (1 + prob) / 2])
        if self.exact is not None:
            mean, sd, (low, high) = self.exact.mean, self.exact.sd, self.exact.quantile(q)
        else:
            mean, sd = self.draws.mean(axis=0), self.draws.std(axis=0, ddof=1)
            low, high = np.quantile(self.draws, q, axis=0)
        percent = [f"{100 * v:g}".replace(".", "_") for v in q]
        return pd.DataFrame(
            {
                "estimator": self.estimator_coef,
                "map": self.map_coef,
                "posterior_mean": mean,
                "posterior_sd": sd,
                f"posterior_q{percent[0]}": low,
                f"posterior_q{percent[1]}": high,
            },
            index=pd.Index(self.names, name="coefficient"),
        )

    def correlation(self) -> pd.DataFrame:
        """Posterior correlation matrix of the coefficients (NaN for a coefficient fixed at 0, such as a
        feature ARD pruned: it has no spread)."""
        cov = self.exact.cov if self.exact is not None else np.cov(self.draws.T)
        index = pd.Index(self.names, name="coefficient")
        return pd.DataFrame(correlation(cov), index=index, columns=list(self.names))

    def predict(self, X_new, prob: float = 0.9, *, exposure=None) -> pd.DataFrame:
        """Predictions for new rows (original feature scale): the estimator's, the posterior mean of
        ``E[y | x]`` with its ``prob`` interval, and the ``prob`` predictive interval of a new ``y``.

        ``E[y | x]`` is the mean response (the probability of class 1 for logistic; for a QuantileRegressor's
        twin, the conditional quantile ``x beta + b0``, what the estimator predicts). Ridge-type: exact
        (Gaussian or Student-t); otherwise from the posterior draws (new-``y`` draws use a generator seeded
        from the fit's seed). Logistic: no predictive interval for a 0/1 outcome (NaN). ``exposure`` (Poisson
        twin only: one positive value per new row): a new ``y`` is a rate, a Poisson count with mean
        ``exposure * E[y | x]`` divided by the exposure (without it, a count at exposure 1).
        """
        if exposure is not None:
            if self.kind != "poisson":
                raise DataError(f"exposure is for the Poisson twin, not {self.kind}")
            exposure = np.asarray(exposure, dtype=float)
            if exposure.shape != (np.shape(X_new)[0],) or not np.all(
                np.isfinite(exposure) & (exposure > 0)
            ):
                raise DataError(f"exposure needs {np.shape(X_new)[0]} finite positive values")
        raw, X_new = X_new, self._new_rows(X_new)
        design = np.column_stack([np.ones(len(X_new)), X_new]) if self._fi else X_new
        q = np.array([(1 - prob) / 2, (1 + prob) / 2])
        rows = X_new
        if self.feature_map is not None:
            rows = raw
        elif hasattr(self.estimator, "feature_names_in_"):
            rows = pd.DataFrame(X_new, columns=self.estimator.feature_names_in_)
        outcome = self.outcome
        if outcome.categorical:
            return self._predict_classes(X_new, rows, q)
        if outcome.binary:
            estimate = self.estimator.predict_proba(rows)[:, 1]
        elif outcome.class_codes is not None:
            # A RidgeClassifier: the twin's mean response is its decision function.
            estimate = self.estimator.decision_function(rows)
        else:
            estimate = self.estimator.predict(rows)
        if self.exact is not None:
            mean, band, predictive = _exact_intervals(self.exact, design, q, self.noise_sigma)
        else:
            eta = self.draws @ design.T
            rng = np.random.default_rng([self.seed, 1])
            response = outcome.mean(eta)
            if outcome.binary:  # a 0/1 outcome has no predictive interval
                predictive = np.full((2, len(X_new)), np.nan)
            else:
                if exposure is None:
                    new_y = outcome.draw(rng, response, self.noise)
                else:
                    new_y = outcome.draw(rng, response * exposure, self.noise) / exposure
                predictive = np.quantile(new_y, q, axis=0)
            mean = response.mean(axis=0)
            band = np.quantile(response, q, axis=0)
        percent = [f"{100 * v:g}".replace(".", "_") for v in q]
        return pd.DataFrame(
            {
                "estimator": estimate,
                "mean": mean,
                f"mean_q{percent[0]}": band[0],
                f"mean_q{percent[1]}": band[1],
                f"predictive_q{percent[0]}": predictive[0],
                f"predictive_q{percent[1]}": predictive[1],
            },
            index=pd.RangeIndex(len(X_new), name="row"),
        )

    def class_probability_draws(self, X_new) -> np.ndarray:
        """The multinomial twin's draws of every class's probability for new rows (as :meth:`predict` takes
        them), shape ``(draws, rows, classes)``."""
        if self.classes is None:
            raise DataError("class probabilities are for the multinomial twin (3 or more classes)")
        return self._class_probability_draws(self._new_rows(X_new))

    def _class_probability_draws(self, X_new) -> np.ndarray:
        return self.outcome.mean(self._class_linear_predictor_draws(X_new))

    def class_posteriors(self) -> list[LinearPosterior]:
        """The one-vs-rest RidgeClassifier twin's exact posterior of each class's coefficients (intercept
        first, original scale), in ``classes`` order: independent of each other."""
        if not self.outcome.one_vs_rest:
            raise DataError("per-class posteriors are for the one-vs-rest RidgeClassifier twin")
        K, fi = len(self.classes), self._class_fi
        index = ridge_classifier.class_coefficient_index(K, (len(self.names) - K * fi) // K, fi)
        exact = self.exact
        return [
            LinearPosterior(
                tuple(np.asarray(self.names)[index[k]]),
                exact.mean[index[k]],
                exact.scale_factor[index[k]],
                exact.df,
                None if exact.noise_shape is None else exact.noise_shape[k],
                None if exact.noise_rate is None else exact.noise_rate[k],
            )
            for k in range(K)
        ]

    def class_decision_function(self, X_new) -> np.ndarray:
        """The one-vs-rest RidgeClassifier twin's posterior mean of every class's decision function for new
        rows (as :meth:`predict` takes them; exact), shape ``(rows, classes)``."""
        X_new = self._new_rows(X_new)
        design = np.column_stack([np.ones(len(X_new)), X_new]) if self._class_fi else X_new
        return np.column_stack([design @ posterior.mean for posterior in self.class_posteriors()])

    @property
    def _class_fi(self) -> int:
        """1 when the per-class layout has intercepts (names ``intercept[class]``), else 0."""
        return int(self.names[0].startswith("intercept["))

    def _class_linear_predictor_draws(self, X_new) -> np.ndarray:
        """Draws of every class's linear predictor for checked rows, shape ``(draws, rows, classes)``."""
        K = len(self.classes)
        fi = int(self.names[0].startswith("intercept["))
        intercept = self.draws[:, :K] if fi else np.zeros((len(self.draws), K))
        weights = self.draws[:, K * fi :].reshape(len(self.draws), K, -1)
        return np.einsum("dkj,nj->dnk", weights, X_new) + intercept[:, None, :]

    def _predict_classes(self, X_new, rows, q) -> pd.DataFrame:
        """:meth:`predict` with one row per (row, class). The multinomial twin: ``E[y | x]`` is the class's
        probability, with no predictive interval (a label has none: NaN). The one-vs-rest RidgeClassifier
        twin: the class's decision function (exact, as the binary one's), with the predictive interval of a
        new code of the class."""
        if self.outcome.one_vs_rest:
            estimate = self.estimator.decision_function(rows)
            design = np.column_stack([np.ones(len(X_new)), X_new]) if self._class_fi else X_new
            per_class = [
                _exact_intervals(posterior, design, q, self.noise_sigma)
                for posterior in self.class_posteriors()
            ]
            mean, band, predictive = (
                np.stack(parts, axis=-1) for parts in zip(*per_class, strict=True)
            )
        else:
            proba = self._class_probability_draws(X_new)
            estimate, mean = self.estimator.predict_proba(rows), proba.mean(axis=0)
            band, predictive = np.quantile(proba, q, axis=0), np.full((2, *mean.shape), np.nan)
        percent = [f"{100 * v:g}".replace(".", "_") for v in q]
        index = pd.MultiIndex.from_product(
            [range(len(X_new)), list(self.classes)], names=["row", "class"]
        )
        return pd.DataFrame(
            {
                "estimator": estimate.ravel(),
                "mean": mean.ravel(),
                f"mean_q{percent[0]}": band[0].ravel(),
                f"mean_q{percent[1]}": band[1].ravel(),
                f"predictive_q{percent[0]}": predictive[0].ravel(),
                f"predictive_q{percent[1]}": predictive[1].ravel(),
            },
            index=index,
        )

    def _new_rows(self, X_new) -> np.ndarray:
        """New rows as a float array in the fit's column order: a DataFrame's columns are matched by name
        (extra columns are ignored, missing ones refused), as scikit-learn does; NaN and inf are refused."""
        features = list(self.names[self._fi :])
        if self.classes is not None:  # one block per class: names are "feature[class]"
            K, fi = len(self.classes), int(self.names[0].startswith("intercept["))
            p = (len(self.names) - K * fi) // K
            suffix = len(f"[{self.classes[0]}]")
            features = [name[:-suffix] for name in self.names[K * fi : K * fi + p]]
        if self.feature_map is not None:  # raw rows, as the pipeline takes them
            try:
                X_new = self.feature_map.transform(X_new)
            except (ValueError, KeyError, TypeError) as error:
                raise DataError(f"new rows: {str(error).splitlines()[0]}") from None
            X_new = X_new.toarray() if scipy.sparse.issparse(X_new) else X_new
        if isinstance(X_new, pd.DataFrame):
            columns = [str(c) for c in X_new.columns]
            missing = [name for name in features if name not in columns]
            if missing:
                raise DataError(f"new rows lack column(s) {', '.join(missing)}")
            X_new = X_new.set_axis(columns, axis=1)[features]
        try:
            X_new = np.asarray(X_new, dtype=float)
        except (TypeError, ValueError):
            raise DataError("new rows must be numeric") from None
        if X_new.ndim != 2 or X_new.shape[1] != len(features):
            raise DataError(f"new rows need {len(features)} feature columns")
        bad = ~np.isfinite(X_new).all(axis=1)
        if bad.any():
            rows = ", ".join(map(str, np.flatnonzero(bad)[:5]))
            raise DataError(f"new rows with NaN or infinite values (row {rows})")
        return X_new

    @property
    def _fi(self) -> int:
        return int(self.names[0] == "intercept")


def _exact_intervals(posterior: LinearPosterior, design, q, noise_sigma):
    """``(mean, band, predictive)`` of an exact linear posterior on the rows of ``design``: the posterior mean
    of ``design @ coef``, its quantiles ``q`` (rows of ``band``) and those of a new observation (Gaussian noise
    of SD ``noise_sigma``, or the Student-t's own noise scale when the noise is unknown)."""
    mean = design @ posterior.mean
    spread = np.sqrt(np.sum((design @ posterior.scale_factor) ** 2, axis=1))
    if np.isinf(posterior.df):
        std, noise_var = scipy.special.ndtri(q), noise_sigma**2
    else:
        std = scipy.special.stdtrit(posterior.df, q)
        noise_var = posterior.noise_rate / posterior.noise_shape
    band = mean + np.outer(std, spread)
    predictive = mean + np.outer(std, np.sqrt(spread**2 + noise_var))
    return mean, band, predictive


def _back_transform(scaler, p: int, fit_intercept: bool) -> np.ndarray:
    """The linear map ``T`` from fitted-space coefficients (intercept first) to the original scale."""
    if scaler is None:
        return np.eye(p + int(fit_intercept))
    mean = scaler.mean_ if scaler.with_mean else np.zeros(p)
    scale = scaler.scale_ if scaler.with_std else np.ones(p)
    if not fit_intercept and np.any(mean != 0):
        _fail(
            "a centering StandardScaler before an estimator without intercept",
            "the centering is an intercept on the original scale that the twin has no coefficient for",
        )
    return unstandardize(mean, scale, fit_intercept)


def unstandardize(mean, scale, fit_intercept: bool) -> np.ndarray:
    """The matrix mapping coefficients on the features ``(x - mean) / scale`` (intercept first) to those on
    ``x``: ``beta = beta_std / scale``, ``intercept = intercept_std - sum(beta_std mean / scale)``."""
    fi = int(fit_intercept)
    T = np.eye(len(scale) + fi)
    T[fi:, fi:] = np.diag(1.0 / scale)
    if fit_intercept:
        T[0, 1:] = -mean / scale
    return T


def _posterior_tree(
    draws, names, fit_intercept, sample_stats=None, source="", noise=None, classes=None
) -> xr.DataTree:
    """A ``DataTree`` with the original-scale ``intercept`` and ``beta`` (dim ``feature``), and ``sigma``
    when ``noise`` (draws of a sampled noise scale, shape ``(chain, draw)``) is given. With ``classes`` (the
    multinomial twin, draws laid out ``[intercept (K), beta (K * p)]``) both have a leading ``class`` dim."""
    fi = int(fit_intercept)
    if classes is not None:
        K = len(classes)
        p = (len(names) - K * fi) // K
        suffix = len(f"[{classes[0]}]")
        features = [name[:-suffix] for name in names[K * fi : K * fi + p]]
        beta = draws[..., K * fi :].reshape(*draws.shape[:2], K, -1)
        data = {"beta": (("chain", "draw", "class", "feature"), beta)}
        if fit_intercept:
            data["intercept"] = (("chain", "draw", "class"), draws[..., :K])
        coords = {"class": [str(c) for c in classes], "feature": features}
    else:
        data = {"beta": (("chain", "draw", "feature"), draws[..., fi:])}
        if fit_intercept:
            data["intercept"] = (("chain", "draw"), draws[..., 0])
        coords = {"feature": list(names[fi:])}
    if noise is not None:
        data["sigma"] = (("chain", "draw"), noise)
    posterior = xr.Dataset(
        data,
        coords={"chain": np.arange(draws.shape[0]), "draw": np.arange(draws.shape[1]), **coords},
        attrs={"source": source, "scale": "original feature scale"},
    )
    groups = {"posterior": posterior}
    if sample_stats is not None:
        groups["sample_stats"] = sample_stats
    return xr.DataTree.from_dict(groups)


def _steps_label(steps) -> str:
    """`` after StandardScaler``, `` after OneHotEncoder, ...`` (on the transformed features), or nothing."""
    if steps is None:
        return ""
    if isinstance(steps, StandardScaler):
        return " after StandardScaler"
    names = ", ".join(type(step).__name__ for _, step in steps.steps)
    return f" after {names} (coefficients on the transformed features)"


def _target(y) -> np.ndarray:
    """The response as a 1-D float array, finite."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise DataError("the target must be numeric") from None
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise DataError("the target must be one column of finite numbers")
    return y


def _positive_weight_rows(X, y, sample_weight):
    """``X``, ``y`` and the weights of the rows with a positive weight, after checking the weights.

    A zero weight leaves its row out of every likelihood here and in scikit-learn, so the row is dropped:
    the twin's posterior then counts only the rows that carry information (a zero-weight row would otherwise
    be an observation of infinite variance in the conjugate noise model).
    """
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    sample_weight = check_sample_weight(sample_weight, n)
    keep = sample_weight > 0
    if keep.all():
        return X, y, sample_weight
    rows = np.flatnonzero(keep)
    X = (
        X.iloc[rows]
        if isinstance(X, pd.DataFrame)
        else (X[rows] if scipy.sparse.issparse(X) else np.asarray(X)[rows])
    )
    y = y.iloc[rows] if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)[rows]
    return X, y, sample_weight[rows]


def _labels(y) -> np.ndarray:
    """A classifier's target as a 1-D array of labels (numbers or strings), without missing values."""
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"a logistic target must be one column, got shape {labels.shape}")
    if pd.isna(labels).any():
        raise DataError("missing values in the target")
    if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
        value = labels[labels != np.round(labels)][0]
        raise DataError(
            f"a classifier's target holds class labels, got a fraction ({value:g}): for proportions of "
            "successes out of trials, fit the weighted 0/1 rows of models.glm.binomial_rows (the twin "
            "command: --trials COLUMN with --target the successes)"
        )
    return labels


def fit_twin(
    estimator,
    X,
    y,
    *,
    sample_weight=None,
    feature_names=None,
    seed: int = 0,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 2,
) -> TwinFit:
    """Build the Bayesian twin of ``estimator`` on ``(X, y)``: its MAP, posterior and their comparison.

    Parameters
    ----------
    estimator : scikit-learn estimator or Pipeline
        Fitted (on these data) or unfitted (a fitted clone is made); see :data:`models.registry.KINDS`.
    X : array_like or DataFrame, shape (n, p)
        Original features; a DataFrame's columns name them (else the estimator's ``feature_names_in_``,
        else ``feature_names``, else ``x0, x1, ...``).
    y : array_like, shape (n,) or (n, 1)
        The response; for a logistic regression any two labels (numbers or strings): the larger one in
        sorted order is class 1, as in scikit-learn's ``classes_[1]``. Three or more labels make a
        LogisticRegression's twin the multinomial one and a RidgeClassifier's the one-vs-rest one
        (coefficients laid out ``[intercept (K), coef (K x p)]``, named ``intercept[class]`` and
        ``feature[class]``).
    sample_weight : array_like or None
        As passed to the estimator's ``fit``. Rows of weight zero are left out (they carry no likelihood).
    seed : int
        Seeds NUTS, the exact posterior's draws and predictive draws.
    draws, tune, chains : int
        NUTS settings (draws per chain; for an exact posterior, independent draws kept per "chain"). 2,000
        draws: an l1 posterior's kinks at zero slow NUTS down (bulk ESS 325 from 2 x 1,000 draws for the l1
        logistic twin on breast_cancer, ``python -m experiments.twin_panel``).

    Returns
    -------
    TwinFit

    Raises
    ------
    DataError
        Bad data or an estimator setting with no twin (one line, saying what and why).
    """
    clock, seconds = Stopwatch(), {}
    scaler, final = unwrap(estimator)
    feature_map = isinstance(scaler, Pipeline)
    _check_params(final)
    if getattr(estimator, "n_features_in_", np.shape(X)[-1]) != np.shape(X)[-1]:
        raise DataError(
            f"the fitted estimator has {estimator.n_features_in_} features, the data "
            f"{np.shape(X)[-1]}"
        )
    if feature_names is None and hasattr(estimator, "feature_names_in_"):
        feature_names = list(estimator.feature_names_in_)
    if sample_weight is not None:
        X, y, sample_weight = _positive_weight_rows(X, y, sample_weight)
    kind = registry.match(final)
    codes = kind.outcome.class_codes
    classifier = codes is not None or kind.outcome.categorical
    labels = _labels(y) if classifier else None
    if classifier:
        classes = np.unique(labels)
        if classes.size > 2 and kind.multiclass is not None:
            kind = registry.KINDS[kind.multiclass]
    if classifier and kind.outcome.categorical:
        if classes.size < 3:
            raise DataError(f"a {kind.name} target needs 3 or more classes, got {classes.size}")
        y = np.searchsorted(classes, labels).astype(float)  # class indices, classes_ order
    elif classifier:
        if classes.size != 2:
            why = (
                "one class leaves nothing to learn"
                if classes.size < 2
                else "one-vs-rest fits one coefficient vector per class; this twin has one"
            )
            raise DataError(
                f"a {kind.name} target must have exactly 2 classes, got {classes.size} ({why})"
            )
        y = np.where(labels == classes[1], codes[1], codes[0])
    frame = X if isinstance(X, pd.DataFrame) else None
    if (
        feature_map
    ):  # the raw table may hold text the map encodes: the transformed design is checked below
        table, y01 = X, _target(y)
        p = np.shape(X)[1]
    else:
        X, y01, names = validate_table(X, y, feature_names, flat_prior=_flat_prior(final))
        p = X.shape[1]
        table = frame if frame is not None else X
        if kind.validate is not None:
            kind.validate(X, y01)
    fitted = _fit_estimator(
        estimator, final, table, labels if classifier else y01, sample_weight, p
    )
    scaler, final = unwrap(fitted)
    kind = registry.match(final)  # again: a cross-validated estimator's kind can follow its choice
    if feature_map:
        Z = scaler.transform(table)
        Z = Z.toarray() if scipy.sparse.issparse(Z) else Z
        try:
            transformed = [str(name) for name in scaler.get_feature_names_out()]
        except (AttributeError, ValueError):  # a step that does not name its outputs
            transformed = None
        X, y01, names = validate_table(Z, y01, transformed, flat_prior=_flat_prior(final))
        p = X.shape[1]
        if kind.validate is not None:
            kind.validate(X, y01)
    Z = X if scaler is None or feature_map else np.asarray(scaler.transform(table), dtype=float)
    weights = sample_weight
    if classifier and final.class_weight is not None:
        # scikit-learn multiplies each row's weight by a weight of its class: the same likelihood here.
        class_weights = kind.class_weights(final, classes, labels, sample_weight)
        weights = class_weights if weights is None else weights * class_weights
    fi = int(final.fit_intercept)
    T = _back_transform(None if feature_map else scaler, p, bool(fi))
    coef_names = (("intercept",) if fi else ()) + names
    categorical = kind.outcome.categorical
    if categorical:
        # One coefficient block per class, laid out [intercept (K), beta (K * p)] (models.multinomial); the
        # multinomial's intercepts centered, a one-vs-rest RidgeClassifier's each its class's own.
        n_classes = classes.size
        T = multinomial.blockwise(T, n_classes, bool(fi), centered=not kind.outcome.one_vs_rest)
        coef_names = tuple(f"intercept[{c}]" for c in classes if fi) + tuple(
            f"{name}[{c}]" for c in classes for name in names
        )
    modelled = np.arange(len(coef_names))  # the coefficients the twin models, intercept first
    if kind.kept_features is not None:
        # A feature the estimator pruned has prior variance 0: left out of the model (pm.Normal takes no
        # zero scale); its coefficient is exactly 0, as the estimator's.
        kept = np.asarray(kind.kept_features(final), dtype=bool)
        if not kept.any():
            raise DataError(f"{type(final).__name__} pruned every feature: no coefficient to model")
        modelled = np.flatnonzero(np.concatenate([[True] * fi, kept]))
        Z, names = Z[:, kept], tuple(np.asarray(names)[kept])
    # Modelled coefficients (fitted space) -> every coefficient on the original scale, pruned ones at 0.
    T_modelled = T[:, modelled]
    reading = kind.read(final, Z, y01, weights)
    if kind.exact is not None:
        try:
            exact_fitted = kind.exact(
                Z,
                y01,
                **reading.penalty,
                noise_sigma=reading.noise_sigma,
                sample_weight=weights,
                fit_intercept=bool(fi),
                feature_names=names,
            )
        except ValueError as error:
            if "improper" not in str(error):
                raise
            raise DataError(
                "y is constant or fitted exactly by the features (residuals at rounding level): "
                "the data say nothing about the noise, so the twin has no posterior"
            ) from error
    if kind.estimator_coefficients is not None:
        estimator_fitted = kind.estimator_coefficients(final)
    else:
        estimator_fitted = intercept_first(final, bool(fi))

    seconds["prepare"] = clock.lap()

    def build(design, feature_scale=None):
        model = kind.build(
            reading,
            design,
            y01,
            weights,
            names,
            fit_intercept=bool(fi),
            feature_scale=feature_scale,
        )
        if "sigma_squared" in model.named_vars and np.var(y01) > 0 and not categorical:
            # A free noise variance starts the MAP search at the response's variance rather than at 1, a
            # guess in y's units: on diabetes the search then takes 48 evaluations instead of 117. (The
            # one-vs-rest twin has one per class, of codes -1/+1 whose scale is 1; y01 holds class indices.)
            model.set_initval(model["sigma_squared"], float(np.var(y01)))
        return model

    if kind.exact is None:
        # Sampled by NUTS in standardized coordinates (columns centered when there is an intercept, and
        # divided by their SD; the prior scales follow): the same posterior, mapped back exactly by S. Built
        # before the reference fit: without a penalty the builder refuses a table with no maximum.
        center = Z.mean(axis=0) if fi else np.zeros(Z.shape[1])
        scale = Z.std(axis=0)
        scale[scale == 0.0] = (
            1.0  # a constant column (allowed under a proper prior): nothing to scale
        )
        standardized = build((Z - center) / scale, scale)
        S = unstandardize(center, scale, bool(fi))
        if categorical:
            S = multinomial.blockwise(S, n_classes, bool(fi))
    if kind.map_solver is not None:
        # Where the MAP is not unique (a flat face of a linear program), the member the estimator found.
        solver = functools.partial(kind.map_solver(build(Z)), prefer=estimator_fitted[modelled])
        back = None
    elif kind.has_kinks(reading.penalty):
        # SparseMAP's L1 weight is one number: the model on the fitted-space features.
        solver, back = sparse.SparseMAP(build(Z)), None
    elif kind.exact is not None:
        solver, back = PreciseMAP(build(Z), mode=MAP_COMPILE_MODE), None
    else:
        solver, back = (
            PreciseMAP(standardized),
            S,
        )  # C backend: its stabilized graph (MAP_COMPILE_MODE)
    seconds["compile"] = clock.lap()
    map_fitted = coefficients(solver())
    map_fitted = map_fitted if back is None else back @ map_fitted
    seconds["map"] = clock.lap()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = kind.reference(
            Z, y01, **reading.penalty, sample_weight=weights, fit_intercept=bool(fi)
        )
    seconds["reference"] = clock.lap()
    rng = np.random.default_rng(seed)

    map_vs_estimator = relative_error(map_fitted, estimator_fitted[modelled])
    if kind.stops_early:
        # SGD stops short of its objective's optimum by design: its distance from it (relative to the
        # optimum's largest coefficient) is measured, never failed (the bound inf fails only NaN).
        targets = {
            "estimator_distance_from_optimum": (
                relative_error(estimator_fitted[modelled], map_fitted),
                "<=",
                np.inf,
            )
        }
    else:
        # The estimator as given stops at its own tolerance (default tol=1e-4: errors up to ~1e-4 seen);
        # beyond 1e-3 it did not converge or was fitted on other data.
        targets = {"map_vs_estimator": (map_vs_estimator, "<=", 1e-3)}
    if reference is not None:
        targets["map_vs_reference"] = (
            relative_error(map_fitted, reference),
            "<=",
            kind.tolerance,
        )
    else:
        targets |= kind.certificate(
            map_fitted, estimator_fitted[modelled], Z, y01, weights, bool(fi), reading.penalty
        )
    if kind.exact is not None:
        targets["map_vs_exact_mean"] = (
            relative_error(map_fitted, exact_fitted.mean),
            "<=",
            1e-8,  # Newton on a quadratic vs the SVD closed form: both exact to rounding
        )
        exact = exact_fitted._replace(
            names=coef_names,
            mean=T_modelled @ exact_fitted.mean,
            scale_factor=T_modelled @ exact_fitted.scale_factor,
        )
        sample = exact.draws(rng, chains * draws).reshape(chains, draws, -1)
        idata = _posterior_tree(
            sample,
            coef_names,
            fi,
            source="independent draws from the exact posterior",
            classes=classes if categorical else None,
        )
        diagnostics, sampler_note, noise_draws = None, "", None
    else:
        exact = None
        compiled = compile_nuts(standardized)
        seconds["compile"] += clock.lap()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            nuts, sampler_note = sample_nuts_retrying(
                compiled,
                seed=int(rng.integers(2**31)),
                draws=draws,
                tune=tune,
                chains=chains,
            )
        diagnostics = convergence(nuts)
        sample = posterior_coefficients(nuts) @ (T_modelled @ S).T
        # A noise scale sampled with the coefficients (the quantile twin's sigma) travels with them.
        noise = nuts["posterior"]["sigma"].values if "sigma" in nuts["posterior"] else None
        noise_draws = None if noise is None else noise.reshape(-1)
        idata = _posterior_tree(
            sample,
            coef_names,
            fi,
            nuts["sample_stats"].to_dataset(),
            source="NUTS (nutpie)",
            noise=noise,
            classes=classes if categorical else None,
        )
        targets["rhat_max"] = (diagnostics.rhat_max, "<=", 1.01)
        targets["ess_bulk_min"] = (diagnostics.ess_bulk_min, ">=", 400.0)
        targets["divergences"] = (float(diagnostics.divergences), "<=", 0.0)
    seconds["posterior"] = clock.lap()
    return TwinFit(
        label=reading.label + _steps_label(scaler),
        kind=kind.name,
        names=coef_names,
        noise_sigma=reading.noise_sigma,
        noise_note=reading.noise_note,
        estimator=fitted,
        estimator_coef=T @ estimator_fitted,
        map_coef=T_modelled @ map_fitted,
        map_rel_error=map_vs_estimator,
        reference_rel_error=targets["map_vs_reference"][0] if reference is not None else None,
        exact=exact,
        draws=sample.reshape(-1, sample.shape[-1]),
        idata=idata,
        convergence=diagnostics,
        checks=checks(targets),
        seed=seed,
        positive_class=classes[1] if classifier and not categorical else None,
        sampler_note=sampler_note,
        feature_map=scaler if feature_map else None,
        seconds=seconds,
        noise_draws=noise_draws,
        likelihood=reading.outcome,
        classes=tuple(classes) if categorical else None,
    )
