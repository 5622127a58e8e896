"""The registry of twin kinds: each family of penalized estimators, said in one place.

A :class:`TwinKind` holds what :func:`models.twin.fit_twin`, :class:`models.bayesian_twin.BayesianTwin`, the
``twin`` command, ``twin_panel`` and ``glm_equivalence`` need to know about a family:

* which fitted scikit-learn estimators it matches (classes, and a test on their settings where one class
  holds two kinds: an ``ElasticNet`` with ``l1_ratio = 1`` is a Lasso);
* how it reads their penalty and settings (the penalty <-> prior dictionary itself is
  :mod:`models.penalties`, used by the builders);
* its PyMC builder, and the name of the penalty ``pm.Data`` a path sets;
* its reference: the estimator refitted to tight tolerance (or, where no solver gets there, a certificate
  from the estimator's own optimality conditions);
* its MAP solver (an active-set solver with exact zeros where the penalty has an l1 part, Newton otherwise);
* its posterior: exact where there is a closed form, NUTS in standardized coordinates otherwise;
* its MAP tolerance, with the reason;
* its outcome: the mean response, the observation variance and how to draw a new observation.

Adding a family is one entry here, one builder and their tests; nothing else names a family.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pymc as pm
import scipy.special
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    GammaRegressor,
    Lasso,
    LassoCV,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    PoissonRegressor,
    QuantileRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDRegressor,
    TweedieRegressor,
)
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from models import glm, multinomial, quantile, ridge_classifier, sparse, tweedie
from models.data import DataError, check_number, plug_in_noise_sigma
from models.exact import NOISE_PRIOR, linear_posterior
from models.fit import intercept_first
from models.linear import linear_regression
from models.penalties import logistic_prior_sigma, poisson_prior_sigma, whitening_factor
from models.penalties import ridge_alpha as ridge_alpha_of

__all__ = [
    "Outcome",
    "GAUSSIAN",
    "BERNOULLI",
    "SIGNED_GAUSSIAN",
    "SIGNED_GAUSSIAN_CLASSES",
    "CATEGORICAL",
    "POISSON",
    "Reading",
    "Command",
    "TwinKind",
    "read_ridge",
    "check_least_squares",
    "ridge_reference",
    "ard_kept_features",
    "read_ard",
    "RIDGE_CLASSIFIER_NOTE",
    "ONE_VS_REST_NOTE",
    "read_one_vs_rest",
    "read_ridge_classifier",
    "ridge_classifier_class_weights",
    "read_sparse",
    "elasticnet_reference",
    "logistic_penalty",
    "logistic_class_weights",
    "read_logistic",
    "logistic_reference",
    "Subgradient",
    "logistic_kkt_violation",
    "logistic_objective",
    "logistic_certificate",
    "QUANTILE_MEDIAN",
    "read_quantile",
    "read_poisson",
    "tweedie_outcome",
    "read_tweedie",
    "SGD_NO_LIKELIHOOD",
    "sgd_penalty",
    "sgd_target",
    "sgd_why_no_twin",
    "sgd_equivalent",
    "read_sgd",
    "sgd_class_weights",
    "sgd_kinds",
    "GLM_TOLERANCE_REASON",
    "KINDS",
    "ESTIMATOR_CLASSES",
    "match",
    "NO_LIKELIHOOD",
    "ELSEWHERE",
    "why_no_twin",
]


class Outcome(NamedTuple):
    """The likelihood's side of prediction: ``mean(eta)`` is ``E[y | x]`` from the linear predictor,
    ``variance(mean, noise_sigma)`` the variance of one observation, ``draw(rng, mean, noise_sigma)`` new
    observations. ``binary``: a 0/1 outcome whose mean is a probability (no observation interval).
    ``class_codes``: a classifier's response values for its two classes (``classes_[0]``, ``classes_[1]``);
    None for a regression. ``point(mean_draws, noise)``: the point prediction from draws of ``mean(eta)`` and
    of the noise scale (None: the posterior mean of ``mean(eta)``); the quantile twin's is the predictive
    distribution's quantile, since its ``mean(eta)`` is the conditional quantile rather than ``E[y | x]``.
    ``categorical``: 3 or more classes, one coefficient block per class (layout ``[intercept (K), beta (K *
    p)]``); without ``class_codes`` the multinomial twin, whose ``mean(eta)`` maps linear predictors with the
    classes on the last axis to class probabilities (the softmax); with them the one-vs-rest RidgeClassifier
    twin (:attr:`one_vs_rest`), a Gaussian on each class's codes (-1: another class, +1: this one), whose
    ``mean(eta)`` is each class's decision function."""

    mean: Callable
    variance: Callable
    draw: Callable
    binary: bool = False
    has_noise_scale: bool = False
    class_codes: tuple[float, float] | None = None
    point: Callable | None = None
    categorical: bool = False

    @property
    def one_vs_rest(self) -> bool:
        """Independent regressions on each class's codes (a RidgeClassifier with 3 or more classes), not a
        softmax."""
        return self.categorical and self.class_codes is not None


def _identity(eta):
    return eta


GAUSSIAN = Outcome(
    _identity,
    lambda mean, noise_sigma: np.full_like(mean, noise_sigma**2),
    lambda rng, mean, noise_sigma: mean + noise_sigma * rng.standard_normal(mean.shape),
    has_noise_scale=True,
)
BERNOULLI = Outcome(
    scipy.special.expit,
    lambda mean, noise_sigma: mean * (1.0 - mean),
    lambda rng, mean, noise_sigma: (rng.random(mean.shape) < mean).astype(float),
    binary=True,
    class_codes=(0.0, 1.0),
)
SIGNED_GAUSSIAN = GAUSSIAN._replace(class_codes=(-1.0, 1.0))
"""RidgeClassifier's likelihood: a Gaussian on the class codes -1 and +1 (misspecified for labels; its mean is
the decision function, not a probability)."""
SIGNED_GAUSSIAN_CLASSES = SIGNED_GAUSSIAN._replace(categorical=True)
"""A one-vs-rest RidgeClassifier's likelihood: a Gaussian on each class's codes (+1 for its rows, -1 for the
others), one decision function per class; misspecified as :data:`SIGNED_GAUSSIAN` is, and more (a row's codes
are not independent: exactly one is +1)."""


def _categorical_draw(rng, mean, noise_sigma):
    """Class indices drawn from probabilities ``mean`` (classes on the last axis)."""
    uniform = rng.random(mean.shape[:-1])[..., None]
    return np.minimum((uniform > np.cumsum(mean, axis=-1)).sum(axis=-1), mean.shape[-1] - 1)


CATEGORICAL = Outcome(
    lambda eta: scipy.special.softmax(eta, axis=-1),
    lambda mean, noise_sigma: mean * (1.0 - mean),
    _categorical_draw,
    categorical=True,
)
"""The multinomial twin's likelihood: a categorical draw of the class index from the softmax."""


def _poisson_draw(rng, mean, noise_sigma):
    """Poisson counts; rates beyond numpy's Poisson range (a sampler gone astray) give infinite counts."""
    ok = np.isfinite(mean) & (mean < 1e15)
    counts = rng.poisson(np.where(ok, mean, 0.0)).astype(float)
    counts[~ok] = np.inf
    return counts


POISSON = Outcome(np.exp, lambda mean, noise_sigma: mean, _poisson_draw)


class Reading(NamedTuple):
    """What a kind reads off one fitted estimator: a label for people, the penalty as the builder's keyword
    arguments (scikit-learn's units), the noise SD (None: unknown, or no noise scale) and a note on it;
    ``outcome``: this estimator's outcome where it depends on its settings (the quantile's asymmetric Laplace),
    else None (the kind's)."""

    label: str
    penalty: dict
    noise_sigma: float | None = None
    noise_note: str = ""
    outcome: Outcome | None = None


class Command(NamedTuple):
    """How the ``twin`` command makes this kind's estimator: its penalty flag (``"alpha"`` or ``"C"``; None
    for an estimator that fits its own prior, such as ARD), the flag's value that means no penalty, and
    ``make(value, l1_ratio, seed)`` (``l1_ratio`` only for ``C``)."""

    flag: str | None
    no_penalty: float
    make: Callable


def _logistic_estimator(C, l1_ratio, seed):
    if l1_ratio > 0 and np.isfinite(C):
        # Only saga fits an l1 part; it converges slowly, hence the tight settings.
        return LogisticRegression(
            C=C,
            l1_ratio=l1_ratio,
            solver="saga",
            tol=1e-10,
            max_iter=100_000,
            random_state=seed,  # saga visits the rows in a random order
        )
    return LogisticRegression(C=C, solver="newton-cholesky", tol=1e-10, max_iter=1000)


@dataclass(frozen=True)
class TwinKind:
    """One family of twins; see the module docstring for what each part is for.

    ``read(final, Z, y, weights)`` returns a :class:`Reading` (``Z``: the features the estimator was fitted
    on); ``builder(Z, y, **penalty, [noise_sigma=...,] sample_weight=, fit_intercept=, feature_names=,
    [feature_scale=])`` the PyMC model; ``reference(Z, y, **penalty, sample_weight=, fit_intercept=)`` the
    tight refit (intercept first), or None where ``certificate(coef, estimator_coef, Z, y, weights,
    fit_intercept, penalty)`` gives the checks instead; ``exact(Z, y, **penalty, noise_sigma=,
    sample_weight=, fit_intercept=, feature_names=)`` the closed-form posterior, or None (NUTS);
    ``has_kinks(penalty)`` whether the penalty has an l1 part (the active-set MAP); ``prior_sigma(value,
    n_samples)`` the coefficients' prior SD at a penalty value, where it depends on that value alone.
    ``kept_features(final)`` the features the twin models (a boolean mask; None: all): a feature the
    estimator has pruned (its coefficient exactly 0 under a prior variance of 0) is left out before the
    builder runs, since ``pm.Normal`` takes no zero scale, and its coefficient is reported as exactly 0.
    ``class_weights(final, classes, labels, sample_weight)`` a classifier's row weights from its
    ``class_weight``, computed as its own fit computes them.
    ``map_solver(model)`` a callable returning the MAP's values, for a kind whose log posterior is not smooth
    where the other solvers need it to be (the quantile twin's is piecewise linear: a linear program); it is
    called with ``prefer=`` the estimator's coefficients, the member of the MAP set to report where the MAP
    is not unique.
    ``multiclass`` the name of the kind that takes a target of 3 or more classes (the binary logistic
    kind's: ``"multinomial"``); ``estimator_coefficients(final)`` the fitted estimator's coefficient vector
    in the twin's layout, where it is not ``[intercept, coef_]`` (None: :func:`models.fit.intercept_first`).
    ``stops_early``: the estimator's solver is stochastic and stops short of its objective's optimum by design
    (SGD): its distance from the MAP is reported as a measured number, not checked against a tolerance.
    """

    name: str
    estimators: tuple[type, ...]
    read: Callable[..., Reading]
    builder: Callable[..., pm.Model]
    reference: Callable[..., np.ndarray | None]
    penalty_name: str
    tolerance: float
    tolerance_reason: str
    outcome: Outcome
    exact: Callable | None = None
    certificate: Callable | None = None
    accepts: Callable[[object], bool] = field(default=lambda final: True)
    has_kinks: Callable[[dict], bool] = field(default=lambda penalty: False)
    validate: Callable | None = None
    command: Command | None = None
    prior_sigma: Callable[[float, float], float] | None = None
    kept_features: Callable[[object], np.ndarray] | None = None
    class_weights: Callable | None = None
    map_solver: Callable | None = None
    multiclass: str | None = None
    estimator_coefficients: Callable | None = None
    stops_early: bool = False

    def matches(self, final) -> bool:
        return isinstance(final, self.estimators) and self.accepts(final)

    def build(self, reading: Reading, Z, y, weights, names, *, fit_intercept, feature_scale=None):
        """The twin's model on ``Z`` (or ``Z / feature_scale`` with the prior scales multiplied by it)."""
        kwargs = dict(reading.penalty, sample_weight=weights, fit_intercept=fit_intercept)
        if self.outcome.has_noise_scale:
            kwargs["noise_sigma"] = reading.noise_sigma
        if feature_scale is not None:
            kwargs["feature_scale"] = feature_scale
        return self.builder(Z, y, feature_names=list(names), **kwargs)


# Ridge-type: LinearRegression, Ridge, RidgeCV, BayesianRidge -------------------------------------------


def read_ridge(final, Z, y, weights) -> Reading:
    """Ridge's alpha (0 for LinearRegression, ``alpha_`` for RidgeCV) with the noise unknown (Jeffreys'
    prior, Student-t posterior); BayesianRidge's fitted ``lambda_ / alpha_`` with its noise known."""
    if isinstance(final, BayesianRidge):
        noise = 1.0 / np.sqrt(final.alpha_)
        alpha = float(ridge_alpha_of(noise_sigma=noise, prior_sigma=1.0 / np.sqrt(final.lambda_)))
        return Reading(
            f"BayesianRidge(lambda_={final.lambda_:.6g}, alpha_={final.alpha_:.6g})",
            {"ridge_alpha": alpha},
            float(noise),
            "known: BayesianRidge's fitted 1 / sqrt(alpha_)",
        )
    if isinstance(final, LinearRegression):
        alpha = 0.0
    else:
        cross_validated = isinstance(final, (RidgeCV, RidgeClassifierCV))
        alpha = float(final.alpha_ if cross_validated else final.alpha)
    if alpha == 0:
        check_least_squares(Z, weights, bool(final.fit_intercept), known_noise=False)
    elif len(Z) - int(final.fit_intercept) <= 2:
        # Jeffreys' prior: a Student-t with n - 1 degrees of freedom (n with no intercept), whose SDs are
        # finite only beyond 2.
        raise DataError(
            f"{len(Z)} rows leave {max(len(Z) - int(final.fit_intercept), 0)} degrees of freedom for the "
            "noise: the posterior SDs are finite only with more than 2; add rows"
        )
    return Reading(
        f"{type(final).__name__}(alpha={alpha:g})",
        {"ridge_alpha": alpha},
        None,
        "unknown: Jeffreys' prior 1 / sigma**2 (Student-t posterior)",
    )


def check_least_squares(Z, weights, fit_intercept: bool, *, known_noise: bool) -> None:
    """Refuse a flat-prior (alpha = 0) linear twin whose posterior is improper or has no finite SD.

    The coefficients need a design of full column rank (after the intercept's centering); with the noise
    unknown (Jeffreys' prior), the Student-t posterior has ``n - k`` degrees of freedom for ``k``
    coefficients, and its SDs are finite only when that is more than 2.
    """
    w = np.ones(len(Z)) if weights is None else weights
    centered = Z - (w @ Z / w.sum() if fit_intercept else 0.0)
    rank = np.linalg.matrix_rank(np.sqrt(w)[:, None] * centered)
    n, p = Z.shape
    if rank < p:
        detail = f"{p} features for {n} rows" if p >= n else f"rank {rank} < {p} features"
        raise DataError(
            f"alpha = 0 (least squares) needs linearly independent columns ({detail}): "
            "drop columns or use alpha > 0"
        )
    k = p + int(fit_intercept)
    if not known_noise and 2 * NOISE_PRIOR[0] + n - k <= 2:
        raise DataError(
            f"alpha = 0 with {n} rows for {k} coefficients leaves {max(n - k, 0)} residual degrees of "
            "freedom: the posterior SDs are finite only with more than 2; add rows or use alpha > 0"
        )


def ridge_reference(
    Z, y, *, ridge_alpha, sample_weight=None, fit_intercept=True, relative_prior_cov=None
) -> np.ndarray:
    """``Ridge(solver="svd")``: exact linear algebra; intercept first.

    A prior covariance ``relative_prior_cov`` (1-D: ARD's per-feature variances; 2-D: a full covariance) is
    Ridge on the whitened columns ``Z L`` (``L L^T = Sigma0``), the coefficients mapped back by ``L``.
    """
    L = None if relative_prior_cov is None else whitening_factor(relative_prior_cov)
    fit = Ridge(alpha=ridge_alpha, solver="svd", fit_intercept=fit_intercept)
    coef = intercept_first(
        fit.fit(Z if L is None else Z @ L, y, sample_weight=sample_weight), fit_intercept
    )
    if L is not None:
        coef[int(fit_intercept) :] = L @ coef[int(fit_intercept) :]
    return coef


# ARDRegression -----------------------------------------------------------------------------------------


def ard_kept_features(final: ARDRegression) -> np.ndarray:
    """The features an ARDRegression keeps: ``lambda_ < threshold_lambda``, the test its fit prunes by (a
    pruned feature's ``coef_`` is exactly 0 and ``sigma_`` covers only the kept ones)."""
    return np.asarray(final.lambda_) < final.threshold_lambda


def read_ard(final, Z, y, weights) -> Reading:
    """ARD's prior ``N(0, diag(1 / lambda_))`` on the kept features, its fitted noise ``1 / sqrt(alpha_)``
    known (as BayesianRidge's): the Ridge twin with ``ridge_alpha = 1`` and ``relative_prior_cov =
    alpha_ / lambda_``, whose prior variance ``sigma**2 / ridge_alpha * relative_prior_cov`` is then
    ``1 / lambda_`` at ``sigma**2 = 1 / alpha_``. Its exact posterior has ``coef_`` as its mean and
    ``sigma_`` as the covariance of the kept coefficients (scikit-learn centers X and y, which is the flat
    prior on the intercept integrated out)."""
    if weights is not None:
        raise DataError("ARDRegression's fit takes no sample weights, so neither does its twin")
    keep = ard_kept_features(final)
    label = f"ARDRegression(alpha_={final.alpha_:.6g})"
    if not keep.all():
        label += (
            f" with {int((~keep).sum())} of {keep.size} features pruned (lambda_ >= threshold_lambda = "
            f"{final.threshold_lambda:g}: prior variance 0, coefficient fixed at 0)"
        )
    return Reading(
        label,
        {"ridge_alpha": 1.0, "relative_prior_cov": final.alpha_ / final.lambda_[keep]},
        float(1.0 / np.sqrt(final.alpha_)),
        "known: ARDRegression's fitted 1 / sqrt(alpha_)",
    )


# RidgeClassifier ---------------------------------------------------------------------------------------

RIDGE_CLASSIFIER_NOTE = (
    "the Gaussian likelihood on the class codes -1/+1 is misspecified (labels are not Gaussian): the "
    "posterior is that of the decision function, not of a class probability"
)


def read_ridge_classifier(final, Z, y, weights) -> Reading:
    """Ridge's reading (:func:`read_ridge`) on the classes coded -1 and +1, as scikit-learn fits them
    (``LabelBinarizer(pos_label=1, neg_label=-1)``), with the misspecification said in label and note."""
    reading = read_ridge(final, Z, y, weights)
    return reading._replace(
        label=f"{reading.label} on classes coded -1/+1 (misspecified Gaussian likelihood)",
        noise_note=f"{reading.noise_note}; {RIDGE_CLASSIFIER_NOTE}",
    )


ONE_VS_REST_NOTE = (
    "the Gaussian likelihoods on each class's codes -1/+1 are misspecified (labels are not Gaussian, and a "
    "row's codes are not independent: exactly one is +1): the posterior is that of the K decision functions, "
    "not of class probabilities"
)


def read_one_vs_rest(final, Z, y, weights) -> Reading:
    """Ridge's reading (:func:`read_ridge`) for a RidgeClassifier with 3 or more classes: one linear twin per
    class on its codes, at the shared alpha (:mod:`models.ridge_classifier`), with the misspecification said
    in label and note."""
    reading = read_ridge(final, Z, y, weights)
    n_classes = len(final.classes_)
    return reading._replace(
        label=(
            f"{reading.label} one-vs-rest on {n_classes} classes, each coded +1 against -1 for the rest "
            "(misspecified Gaussian likelihood)"
        ),
        noise_note=f"{reading.noise_note}, one sigma per class; {ONE_VS_REST_NOTE}",
    )


def ridge_classifier_class_weights(final, classes, labels, sample_weight) -> np.ndarray:
    """RidgeClassifier's row weights from ``class_weight``: ``compute_sample_weight(class_weight, y)``
    (``_ridge.py``; "balanced" counts rows, not sample weights), multiplied into the sample weights."""
    return compute_sample_weight(final.class_weight, labels)


# Lasso and ElasticNet ----------------------------------------------------------------------------------


def _l1_ratio(final) -> float:
    """An ElasticNet's l1_ratio (an ElasticNetCV's chosen ``l1_ratio_`` once fitted)."""
    return float(final.l1_ratio_ if isinstance(final, ElasticNetCV) else final.l1_ratio)


def _is_lasso(final) -> bool:
    """A Lasso, or an ElasticNet with l1_ratio 1 (an unfitted ElasticNetCV: every candidate ratio 1)."""
    if isinstance(final, (Lasso, LassoCV)):
        return True
    if isinstance(final, ElasticNetCV) and not hasattr(final, "l1_ratio_"):
        return bool(np.all(np.asarray(final.l1_ratio) == 1))
    try:
        return _l1_ratio(final) == 1
    except (TypeError, ValueError):  # not a number: scikit-learn's fit refuses it in one line
        return False


def read_sparse(final, Z, y, weights) -> Reading:
    """The Lasso's (or ElasticNet's) alpha and l1_ratio, with a plug-in noise SD: their MAP is a posterior
    mode for a fixed ``sigma`` only."""
    fit_intercept = bool(final.fit_intercept)
    if len(Z) <= Z.shape[1] + int(fit_intercept):
        raise DataError(
            f"{len(Z)} rows for {Z.shape[1]} features: the Lasso twin's noise plug-in (least-squares "
            "residual SD) needs more rows than coefficients"
        )
    alpha = float(final.alpha_ if isinstance(final, (LassoCV, ElasticNetCV)) else final.alpha)
    noise = plug_in_noise_sigma(Z, y, sample_weight=weights, fit_intercept=fit_intercept)
    note = "plug-in: least-squares residual SD (the MAP is a mode for fixed sigma only)"
    name = type(final).__name__
    if _is_lasso(final):
        return Reading(f"{name}(alpha={alpha:g})", {"lasso_alpha": alpha}, noise, note)
    ratio = _l1_ratio(final)
    return Reading(
        f"{name}(alpha={alpha:g}, l1_ratio={ratio:g})",
        {"alpha": alpha, "l1_ratio": ratio},
        noise,
        note,
    )


def elasticnet_reference(
    Z, y, *, alpha=None, lasso_alpha=None, l1_ratio=1.0, sample_weight=None, fit_intercept=True
) -> np.ndarray:
    """Coordinate descent at ``tol=1e-12`` (a Lasso is ``l1_ratio = 1``); intercept first."""
    fit = ElasticNet(
        alpha=lasso_alpha if alpha is None else alpha,
        l1_ratio=l1_ratio,
        fit_intercept=fit_intercept,
        tol=1e-12,
        max_iter=1_000_000,
    )
    return intercept_first(fit.fit(Z, y, sample_weight=sample_weight), fit_intercept)


# Logistic ----------------------------------------------------------------------------------------------


def logistic_penalty(final: LogisticRegression) -> tuple[float, float]:
    """``(C, l1_ratio)`` of the penalty a ``LogisticRegression`` fits, resolved as scikit-learn 1.8+ does.

    The deprecated ``penalty`` wins when set: ``"l2"`` is ``l1_ratio = 0``, ``"l1"`` is 1, ``None`` is
    ``C = inf``; otherwise ``l1_ratio`` (None counts as 0). ``C = inf`` is no penalty at all.
    """
    params = final.get_params()
    if isinstance(final, LogisticRegressionCV):  # fitted: the chosen C and l1_ratio
        ratio = np.ravel(final.l1_ratio_)[0]
        return float(np.ravel(final.C_)[0]), 0.0 if ratio is None else float(ratio)
    penalty, l1_ratio = params["penalty"], params["l1_ratio"]
    try:
        C = float(params["C"])
    except (TypeError, ValueError):
        raise DataError(f"C must be a number, got {params['C']!r}") from None
    if penalty is None:
        return np.inf, 0.0
    ratio = {"l2": 0.0, "l1": 1.0}.get(penalty, 0.0 if l1_ratio is None else l1_ratio)
    ratio = check_number("l1_ratio", ratio, high=1.0)
    return C, (0.0 if np.isinf(C) else ratio)


def logistic_class_weights(final, classes, labels, sample_weight) -> np.ndarray:
    """LogisticRegression's row weights from ``class_weight``: its class's weight ("balanced" counts the
    sample weights, ``_logistic.py``), multiplied into the sample weights."""
    per_class = compute_class_weight(
        final.class_weight, classes=classes, y=labels, sample_weight=sample_weight
    )
    return per_class[np.searchsorted(classes, labels)]


def read_logistic(final, Z, y, weights) -> Reading:
    C, l1_ratio = logistic_penalty(final)
    label = f"{type(final).__name__}(C={C:g}" + (f", l1_ratio={l1_ratio:g})" if l1_ratio else ")")
    return Reading(label, {"logistic_C": C, "l1_ratio": l1_ratio})


def logistic_reference(Z, y, *, logistic_C, l1_ratio=0.0, **kwargs) -> np.ndarray | None:
    """:func:`models.glm.logistic_reference` (Newton at ``tol=1e-12``); None with an l1 part.

    Only saga fits an l1 part, and it converges too slowly to be a reference (measured on breast_cancer at
    C = 10: 1.1e-3 from the optimum at ``tol=1e-8`` after 84 s); :func:`logistic_certificate` certifies the
    MAP by scikit-learn's own optimality conditions instead.
    """
    if l1_ratio > 0:
        return None
    return glm.logistic_reference(Z, y, logistic_C=logistic_C, **kwargs)


class Subgradient(NamedTuple):
    """The subgradient (KKT) conditions at a point, in units of the l1 weight ``l1_ratio``.

    ``violation`` is the largest violation; ``rounding`` the level floating point alone reaches: the
    gradient's terms ``C |x_ij| w_i |p_i - y_i|`` summed, times ``1000 eps`` (a sum of ``n`` terms loses up
    to ``n eps`` of them in the worst case; ``1000`` stands in for ``n`` of a few thousand rows).
    """

    violation: float
    rounding: float


def logistic_kkt_violation(
    coef, Z, y, weights, *, logistic_C, l1_ratio, fit_intercept
) -> Subgradient:
    """How far ``coef`` (intercept first) is from minimizing scikit-learn's logistic objective.

    The objective ``C sum_i w_i logloss_i + l1_ratio ||w||_1 + (1 - l1_ratio) ||w||**2 / 2`` is minimized
    where the gradient ``g`` of its smooth part satisfies ``g_j = -l1_ratio sign(w_j)`` for ``w_j != 0``,
    ``|g_j| <= l1_ratio`` for ``w_j = 0`` and ``g = 0`` for the intercept. Written in NumPy from
    scikit-learn's formula, independently of the PyMC model.
    """
    weights = np.ones(len(y)) if weights is None else weights
    fi = int(fit_intercept)
    w = coef[fi:]
    eta = Z @ w + (coef[0] if fi else 0.0)
    residual = weights * (scipy.special.expit(eta) - y)
    grad = logistic_C * (Z.T @ residual) + (1.0 - l1_ratio) * w
    terms = logistic_C * (np.abs(Z).T @ np.abs(residual)) + (1.0 - l1_ratio) * np.abs(w)
    violation = np.where(
        w != 0.0, np.abs(grad + l1_ratio * np.sign(w)), np.maximum(np.abs(grad) - l1_ratio, 0.0)
    )
    if fit_intercept:
        violation = np.append(violation, abs(logistic_C * residual.sum()))
        terms = np.append(terms, logistic_C * np.abs(residual).sum())
    rounding = 1000.0 * np.finfo(float).eps * float(terms.max())
    return Subgradient(float(violation.max() / l1_ratio), rounding / l1_ratio)


def logistic_objective(coef, Z, y, weights, *, logistic_C, l1_ratio, fit_intercept) -> float:
    """scikit-learn's logistic objective at ``coef`` (intercept first), in NumPy."""
    weights = np.ones(len(y)) if weights is None else weights
    fi = int(fit_intercept)
    w = coef[fi:]
    eta = Z @ w + (coef[0] if fi else 0.0)
    loss = np.sum(weights * (np.logaddexp(0.0, eta) - y * eta))
    return float(logistic_C * loss + l1_ratio * np.abs(w).sum() + 0.5 * (1.0 - l1_ratio) * (w @ w))


def logistic_certificate(coef, estimator_coef, Z, y, weights, fit_intercept, penalty) -> dict:
    """Checks of an l1 logistic MAP without a reference fit: its subgradient conditions, and an objective
    no worse than the estimator's own answer."""
    objective = {"Z": Z, "y": y, "weights": weights, "fit_intercept": fit_intercept, **penalty}
    kkt = logistic_kkt_violation(coef, **objective)
    at_map = logistic_objective(coef, **objective)
    at_estimator = logistic_objective(estimator_coef, **objective)
    return {
        # The active-set MAP reached 1e-13 to 1e-15 on breast_cancer; 1e-6, or the rounding level of the
        # gradient where its terms are large (large C, raw columns), whichever is larger.
        "map_kkt_violation": (kkt.violation, "<=", max(1e-6, kkt.rounding)),
        "map_objective_minus_estimator": ((at_map - at_estimator) / abs(at_estimator), "<=", 1e-12),
    }


# QuantileRegressor -------------------------------------------------------------------------------------

QUANTILE_MEDIAN = Outcome(_identity, **quantile.outcome_parts(0.5))
"""The quantile kind's outcome at q = 0.5; a fit's reading carries the one at its estimator's quantile. Its
``mean(eta)`` is the conditional quantile ``x beta + b0`` (what the estimator predicts), its ``point`` the
posterior predictive distribution's quantile."""


def read_quantile(final, Z, y, weights) -> Reading:
    """QuantileRegressor's quantile and alpha; the asymmetric Laplace scale unknown (Jeffreys' prior, sampled
    with the coefficients: :mod:`models.quantile`)."""
    q, alpha = float(final.quantile), float(final.alpha)
    quantile.check_quantile(Z, q, alpha, bool(final.fit_intercept))
    return Reading(
        f"QuantileRegressor(quantile={q:g}, alpha={alpha:g})",
        {"quantile": q, "quantile_alpha": alpha},
        None,
        "unknown: the asymmetric Laplace scale sigma, Jeffreys' prior 1 / sigma (sampled with the "
        "coefficients; the MAP in the coefficients is the estimator's at every sigma)",
        Outcome(_identity, **quantile.outcome_parts(q)),
    )


def _no_reference(Z, y, **kwargs) -> None:
    """None: the estimator's own solver (HiGHS) is the only exact one; a certificate checks the MAP."""
    return None


# Poisson -----------------------------------------------------------------------------------------------


def read_poisson(final, Z, y, weights) -> Reading:
    """PoissonRegressor's alpha; the label says which likelihood the target makes
    (:func:`models.glm.poisson_likelihood`): integer counts, rates with exposure (whole counts
    ``y * sample_weight``, a proper Poisson likelihood), or a quasi-likelihood."""
    alpha = float(final.alpha)
    label = f"{type(final).__name__}(alpha={alpha:g})"
    likelihood = glm.poisson_likelihood(y, weights)
    if likelihood != "counts":
        label += f" with a {glm.POISSON_LIKELIHOODS[likelihood]}"
    return Reading(label, {"poisson_alpha": alpha})


def _is_poisson_tweedie(final) -> bool:
    """A TweedieRegressor is Poisson at power 1 with the log link (``"auto"`` is log there)."""
    if not isinstance(final, TweedieRegressor):
        return True
    return final.power == 1 and final.link in ("log", "auto")


# Gamma and Tweedie -------------------------------------------------------------------------------------


def _tweedie_variance(mean, noise_sigma, *, power):
    return noise_sigma**2 * np.abs(mean) ** power


def _tweedie_draw(rng, mean, noise_sigma, *, power):
    mean = np.asarray(mean, dtype=float)
    ok = np.isfinite(mean) & ((mean > 0) | (power == 0))
    new = tweedie.tweedie_draw(rng, np.where(ok, mean, 1.0), noise_sigma**2, power)
    return np.where(ok, new, np.nan)


def tweedie_outcome(power: float, link: str) -> Outcome:
    """The outcome of a Tweedie twin: ``E[y | x]`` through the link, variance ``sigma**2 mu**power`` and
    draws from the Tweedie density, where ``sigma = sqrt(dispersion)`` (the SD at ``mu = 1``; the noise scale
    the twin samples, ``sigma`` in its posterior). A nonpositive mean (identity link) draws NaN. Its parts are
    partials of module functions, so that a fit holding them pickles."""
    return Outcome(
        np.exp if link == "log" else _identity,
        functools.partial(_tweedie_variance, power=power),
        functools.partial(_tweedie_draw, power=power),
    )


def read_tweedie(final, Z, y, weights) -> Reading:
    """GammaRegressor's or TweedieRegressor's alpha, power and link; the noise scale ``sqrt(dispersion)`` is
    sampled with the coefficients (Pearson's plug-in at the estimator's fit where one number is needed)."""
    power, link = tweedie.power_and_link(final)
    alpha = float(final.alpha)
    if isinstance(final, GammaRegressor):
        label = f"GammaRegressor(alpha={alpha:g})"
    else:
        label = f"TweedieRegressor(alpha={alpha:g}, power={power:g}, link={link!r})"
    eta = Z @ np.ravel(final.coef_) + (float(final.intercept_) if final.fit_intercept else 0.0)
    mean = np.exp(eta) if link == "log" else eta
    k = Z.shape[1] + int(final.fit_intercept)
    dispersion = tweedie.pearson_dispersion(y, mean, power, sample_weight=weights, n_coef=k)
    return Reading(
        label,
        {"tweedie_alpha": alpha, "power": power, "link": link},
        float(np.sqrt(dispersion)),
        "sqrt(dispersion): sampled with the coefficients under Jeffreys' prior 1 / dispersion",
        tweedie_outcome(power, link),
    )


def _is_tweedie(final) -> bool:
    """A TweedieRegressor that is not the Poisson model (power 1, log link)."""
    return not isinstance(final, TweedieRegressor) or not _is_poisson_tweedie(final)


# SGDRegressor and SGDClassifier ------------------------------------------------------------------------

SGD_NO_LIKELIHOOD = {
    "hinge": "exp(-loss) over the two labels does not sum to one at every score: not a likelihood",
    "squared_hinge": "exp(-loss) over the two labels does not sum to one at every score: not a likelihood",
    "modified_huber": "exp(-loss) over the two labels does not sum to one at every score: not a likelihood",
    "perceptron": "exp(-loss) over the two labels does not sum to one at every score: not a likelihood",
    "huber": (
        "exp(-loss) is a density of y only at a scale fixed in y's units (epsilon); no twin kind builds it"
    ),
    "epsilon_insensitive": (
        "exp(-loss) is flat within epsilon of the prediction, a density at a scale fixed in y's units; no "
        "twin kind builds it"
    ),
    "squared_epsilon_insensitive": (
        "exp(-loss) is flat within epsilon of the prediction, a density at a scale fixed in y's units; no "
        "twin kind builds it"
    ),
}
"""The SGD losses with no twin, and why: a classifier's loss must be a negative log-probability of the labels
(``log_loss`` is: ``sigmoid(s) + sigmoid(-s) = 1``), a regressor's a negative log-density of y that some kind
builds (``squared_error``: the Gaussian)."""


def sgd_penalty(final) -> tuple[float, float]:
    """``(alpha, l1_ratio)`` of an SGD estimator's penalty ``alpha * (l1_ratio ||w||_1 + (1 - l1_ratio)
    ||w||**2 / 2)``: ``"l2"`` is ``l1_ratio = 0``, ``"l1"`` is 1, ``"elasticnet"`` its ``l1_ratio``; no
    penalty (``penalty=None`` or ``alpha = 0``) is ``(0, 0)``."""
    alpha = float(final.alpha)
    if final.penalty is None or alpha == 0:
        return 0.0, 0.0
    return alpha, {"l2": 0.0, "l1": 1.0}.get(final.penalty, float(final.l1_ratio))


def sgd_target(final) -> str | None:
    """The name of the kind whose objective an SGD estimator minimizes (:func:`sgd_equivalent`), or None
    for a loss with no twin (:data:`SGD_NO_LIKELIHOOD`, or a squared error with an l1 part on a
    classifier's -1/+1 codes)."""
    alpha, l1_ratio = sgd_penalty(final)
    if isinstance(final, SGDClassifier):
        if final.loss == "log_loss":
            return "logistic"
        return "ridge_classifier" if final.loss == "squared_error" and l1_ratio == 0 else None
    if final.loss != "squared_error":
        return None
    return {0.0: "ridge", 1.0: "lasso"}.get(l1_ratio, "elasticnet")


def sgd_why_no_twin(final) -> str:
    """Why an SGD estimator with no :func:`sgd_target` has no twin."""
    classification_losses = ("log_loss", "hinge", "squared_hinge", "modified_huber", "perceptron")
    if isinstance(final, SGDClassifier) and final.loss not in classification_losses:
        return (
            "a regression loss on the labels coded -1/+1; only squared_error with an l2 penalty has a "
            "twin (RidgeClassifier's)"
        )
    return SGD_NO_LIKELIHOOD[final.loss]


def sgd_equivalent(final, n_samples: int, weight_sum: float):
    """The unfitted estimator whose objective is an SGD estimator's times a positive constant (the same
    optimum), on ``n_samples`` rows of weights summing to ``weight_sum``.

    SGD minimizes ``(1/n) sum_i w_i L_i + alpha R(w)``, the intercept unpenalized (scikit-learn's SGD
    objective; ``L = (y - s)**2 / 2`` for ``squared_error``, the Bernoulli negative log-likelihood for
    ``log_loss``; ``R`` as in :func:`sgd_penalty`). Multiplied by ``2n``, the l2 squared error is Ridge's
    ``sum_i w_i (y_i - s_i)**2 + n alpha ||w||**2`` (RidgeClassifier's on labels coded -1/+1); by ``n /
    sum(w)``, the l1 and elastic-net one is the Lasso's (ElasticNet's) ``sum_i w_i (y_i - s_i)**2 / (2
    sum(w)) + alpha n / sum(w) R(w)`` (they divide by the weights' sum); by ``1 / alpha``, the log loss is
    LogisticRegression's ``C sum_i w_i L_i + R(w)`` at ``C = 1 / (n alpha)``, the same ``l1_ratio``. The
    solver's settings (``learning_rate``, ``eta0``, ``power_t``, ``average``, ``tol``, ``max_iter``,
    ``shuffle``) change where SGD stops, not what it minimizes.
    """
    alpha, l1_ratio = sgd_penalty(final)
    fit_intercept = bool(final.fit_intercept)
    target = sgd_target(final)
    if target == "logistic":
        C = np.inf if alpha == 0 else 1.0 / (n_samples * alpha)
        return LogisticRegression(C=C, l1_ratio=l1_ratio, fit_intercept=fit_intercept)
    if target in ("ridge", "ridge_classifier"):
        estimator = Ridge if target == "ridge" else RidgeClassifier
        return estimator(alpha=n_samples * alpha, fit_intercept=fit_intercept)
    lasso_alpha = alpha * n_samples / weight_sum
    if target == "lasso":
        return Lasso(alpha=lasso_alpha, fit_intercept=fit_intercept)
    return ElasticNet(alpha=lasso_alpha, l1_ratio=l1_ratio, fit_intercept=fit_intercept)


def read_sgd(final, Z, y, weights) -> Reading:
    """The reading of :func:`sgd_equivalent`, labelled as the SGD estimator whose objective it is; ``n`` is
    the rows the twin is given (rows of weight 0 are left out, so an estimator fitted with them had a larger
    ``n``). ``early_stopping=True`` is refused: SGD then fits a random part of the rows, so its objective is
    not over the data given."""
    name = type(final).__name__
    if final.early_stopping:
        raise DataError(
            f"unsupported: {name}(early_stopping=True) (it fits on a random {1 - final.validation_fraction:g}"
            " of the rows and validates on the rest: its objective is not over the data given)"
        )
    weight_sum = float(len(Z) if weights is None else np.sum(weights))
    equivalent = sgd_equivalent(final, len(Z), weight_sum)
    reading = KINDS[sgd_target(final)].read(equivalent, Z, y, weights)
    alpha, l1_ratio = sgd_penalty(final)
    label = f"{name}(loss={final.loss!r}, alpha={alpha:g}, l1_ratio={l1_ratio:g})"
    return reading._replace(label=f"{label}, the objective of {reading.label}")


def sgd_class_weights(final, classes, labels, sample_weight) -> np.ndarray:
    """SGDClassifier's row weights from ``class_weight``: its class's weight, ``compute_class_weight`` on
    the labels as its fit calls it (``_stochastic_gradient.py``: "balanced" counts rows, not sample
    weights), multiplied into the sample weights."""
    per_class = compute_class_weight(final.class_weight, classes=classes, y=labels)
    return per_class[np.searchsorted(classes, labels)]


def sgd_kinds(kinds: dict) -> tuple[TwinKind, ...]:
    """One kind per objective an SGD estimator can have: the target kind (:func:`sgd_target`) with SGD's
    estimator, its reading (:func:`read_sgd`) and ``stops_early``, so that the twin's MAP is the exact
    optimum of SGD's objective and SGD's distance from it is measured."""

    def sgd_kind(target: str, estimator: type) -> TwinKind:
        return replace(
            kinds[target],
            name=f"sgd_{target}",
            estimators=(estimator,),
            read=read_sgd,
            accepts=lambda final: sgd_target(final) == target,
            command=None,
            multiclass=None,
            class_weights=sgd_class_weights if estimator is SGDClassifier else None,
            stops_early=True,
        )

    regressors = [sgd_kind(target, SGDRegressor) for target in ("ridge", "lasso", "elasticnet")]
    return (*regressors, *(sgd_kind(t, SGDClassifier) for t in ("logistic", "ridge_classifier")))


GLM_TOLERANCE_REASON = "Newton (newton-cholesky, tol=1e-12) against the twin's Newton MAP"

KINDS = {
    kind.name: kind
    for kind in (
        TwinKind(
            "ridge",
            (LinearRegression, Ridge, RidgeCV, BayesianRidge),
            read_ridge,
            linear_regression,
            ridge_reference,
            penalty_name="ridge_alpha",
            tolerance=1e-8,
            tolerance_reason="both are exact linear algebra (SVD against Newton on a quadratic)",
            outcome=GAUSSIAN,
            exact=linear_posterior,
            command=Command("alpha", 0.0, lambda alpha, l1_ratio, seed: Ridge(alpha=alpha)),
        ),
        TwinKind(
            "ard",
            (ARDRegression,),
            read_ard,
            linear_regression,
            ridge_reference,
            penalty_name="ridge_alpha",
            tolerance=1e-8,
            tolerance_reason="both are exact linear algebra (SVD against Newton on a quadratic)",
            outcome=GAUSSIAN,
            exact=linear_posterior,
            command=Command(None, np.nan, lambda value, l1_ratio, seed: ARDRegression()),
            kept_features=ard_kept_features,
        ),
        TwinKind(
            "ridge_classifier_ovr",
            (RidgeClassifier, RidgeClassifierCV),
            read_one_vs_rest,
            ridge_classifier.one_vs_rest_regression,
            ridge_classifier.one_vs_rest_reference,
            penalty_name="ridge_alpha",
            tolerance=1e-8,
            tolerance_reason="both are exact linear algebra (SVD against Newton on a quadratic)",
            outcome=SIGNED_GAUSSIAN_CLASSES,
            exact=ridge_classifier.one_vs_rest_posterior,
            # A fitted estimator with 3 or more classes; an unfitted one is sent here by the binary kind's
            # ``multiclass`` once fit_twin has seen the target.
            accepts=lambda final: len(getattr(final, "classes_", ())) > 2,
            class_weights=ridge_classifier_class_weights,
            estimator_coefficients=ridge_classifier.estimator_coefficients,
        ),
        TwinKind(
            "ridge_classifier",
            (RidgeClassifier, RidgeClassifierCV),
            read_ridge_classifier,
            linear_regression,
            ridge_reference,
            penalty_name="ridge_alpha",
            tolerance=1e-8,
            tolerance_reason="both are exact linear algebra (SVD against Newton on a quadratic)",
            outcome=SIGNED_GAUSSIAN,
            exact=linear_posterior,
            command=Command(
                "alpha", 0.0, lambda alpha, l1_ratio, seed: RidgeClassifier(alpha=alpha)
            ),
            class_weights=ridge_classifier_class_weights,
            multiclass="ridge_classifier_ovr",
        ),
        TwinKind(
            "lasso",
            (Lasso, LassoCV, ElasticNet, ElasticNetCV),
            read_sparse,
            sparse.laplace_regression,
            elasticnet_reference,
            penalty_name="lasso_alpha",
            tolerance=1e-6,
            tolerance_reason="coordinate descent at tol=1e-12 against the active-set MAP (exact zeros)",
            outcome=GAUSSIAN,
            accepts=_is_lasso,
            has_kinks=lambda penalty: True,
            command=Command(
                "alpha",
                0.0,
                lambda alpha, l1_ratio, seed: Lasso(alpha=alpha, tol=1e-10, max_iter=100_000),
            ),
        ),
        TwinKind(
            "elasticnet",
            (ElasticNet, ElasticNetCV),
            read_sparse,
            sparse.elasticnet_regression,
            elasticnet_reference,
            penalty_name="alpha",
            tolerance=1e-6,
            tolerance_reason="coordinate descent at tol=1e-12 against the active-set MAP (exact zeros)",
            outcome=GAUSSIAN,
            has_kinks=lambda penalty: True,
        ),
        TwinKind(
            "multinomial",
            (LogisticRegression, LogisticRegressionCV),
            read_logistic,
            multinomial.multinomial_logistic_regression,
            multinomial.multinomial_reference,
            penalty_name="logistic_C",
            tolerance=1e-6,
            tolerance_reason=GLM_TOLERANCE_REASON,
            outcome=CATEGORICAL,
            certificate=multinomial.multinomial_certificate,
            class_weights=logistic_class_weights,
            # A fitted estimator with 3 or more classes; an unfitted one is sent here by the logistic kind's
            # ``multiclass`` once fit_twin has seen the target.
            accepts=lambda final: len(getattr(final, "classes_", ())) > 2,
            has_kinks=lambda penalty: penalty["l1_ratio"] > 0,
            prior_sigma=lambda C, n_samples: logistic_prior_sigma(logistic_C=C),
            estimator_coefficients=multinomial.estimator_coefficients,
        ),
        TwinKind(
            "logistic",
            (LogisticRegression, LogisticRegressionCV),
            read_logistic,
            glm.logistic_regression,
            logistic_reference,
            penalty_name="logistic_C",
            tolerance=1e-6,
            tolerance_reason=GLM_TOLERANCE_REASON,
            outcome=BERNOULLI,
            certificate=logistic_certificate,
            class_weights=logistic_class_weights,
            has_kinks=lambda penalty: penalty["l1_ratio"] > 0,
            validate=lambda X, y: glm.validate_glm(X, y, family="logistic"),
            command=Command("C", np.inf, _logistic_estimator),
            prior_sigma=lambda C, n_samples: logistic_prior_sigma(logistic_C=C),
            multiclass="multinomial",
        ),
        TwinKind(
            "poisson",
            (PoissonRegressor, TweedieRegressor),
            read_poisson,
            glm.poisson_regression,
            glm.poisson_reference,
            penalty_name="poisson_alpha",
            tolerance=1e-6,
            tolerance_reason=GLM_TOLERANCE_REASON,
            outcome=POISSON,
            accepts=_is_poisson_tweedie,
            validate=lambda X, y: glm.validate_glm(X, y, family="poisson"),
            command=Command(
                "alpha",
                0.0,
                lambda alpha, l1_ratio, seed: PoissonRegressor(
                    alpha=alpha, solver="newton-cholesky", tol=1e-10
                ),
            ),
            prior_sigma=lambda alpha, n_samples: poisson_prior_sigma(
                poisson_alpha=alpha, n_samples=n_samples
            ),
        ),
        TwinKind(
            "gamma",
            (GammaRegressor,),
            read_tweedie,
            tweedie.tweedie_regression,
            tweedie.tweedie_reference,
            penalty_name="tweedie_alpha",
            tolerance=1e-6,
            tolerance_reason=GLM_TOLERANCE_REASON,
            outcome=tweedie_outcome(2.0, "log"),
            validate=lambda X, y: tweedie.validate_tweedie(X, y, power=2.0),
            command=Command(
                "alpha",
                0.0,
                lambda alpha, l1_ratio, seed: GammaRegressor(
                    alpha=alpha, solver="newton-cholesky", tol=1e-10
                ),
            ),
        ),
        TwinKind(
            "tweedie",
            (TweedieRegressor,),
            read_tweedie,
            tweedie.tweedie_regression,
            tweedie.tweedie_reference,
            penalty_name="tweedie_alpha",
            tolerance=1e-6,
            tolerance_reason=GLM_TOLERANCE_REASON,
            # TweedieRegressor's defaults (power 0, identity link); read_tweedie's outcome is the one used
            outcome=tweedie_outcome(0.0, "identity"),
            accepts=_is_tweedie,
            command=Command(
                "alpha",
                0.0,
                lambda alpha, l1_ratio, seed: TweedieRegressor(
                    power=1.5, alpha=alpha, solver="newton-cholesky", tol=1e-10
                ),
            ),
        ),
        TwinKind(
            "quantile",
            (QuantileRegressor,),
            read_quantile,
            quantile.quantile_regression,
            _no_reference,
            penalty_name="quantile_alpha",
            tolerance=1e-9,
            tolerance_reason=(
                "subgradient conditions in NumPy (the estimator solves the same linear program with the "
                "same HiGHS solver, so a refit is no independent reference)"
            ),
            outcome=QUANTILE_MEDIAN,
            certificate=quantile.quantile_certificate,
            map_solver=quantile.LinearProgramMAP,
            command=Command(
                "alpha", 0.0, lambda alpha, l1_ratio, seed: QuantileRegressor(alpha=alpha)
            ),
        ),
    )
}
"""Every twin kind by name, in matching order (a Lasso-like ElasticNet is a Lasso)."""
KINDS.update((kind.name, kind) for kind in sgd_kinds(KINDS))

ESTIMATOR_CLASSES = tuple(dict.fromkeys(cls for kind in KINDS.values() for cls in kind.estimators))
"""Every estimator class some kind matches (subclasses match too)."""


def match(final) -> TwinKind | None:
    """The kind of a (final) estimator, or None when no kind matches it."""
    return next((kind for kind in KINDS.values() if kind.matches(final)), None)


NO_LIKELIHOOD = {
    "HuberRegressor": (
        "its scale is estimated jointly with the coefficients under Huber's loss, an objective that is not "
        "a log-likelihood in the scale"
    ),
    "LinearSVC": "the hinge loss is not the negative log-likelihood of any distribution of the labels",
    "LinearSVR": "the epsilon-insensitive loss is flat near zero: no density has it as its negative log",
    "SVC": "the hinge loss is not the negative log-likelihood of any distribution of the labels",
    "SVR": "the epsilon-insensitive loss is flat near zero: no density has it as its negative log",
    "Perceptron": "the perceptron loss is not the negative log-likelihood of any distribution",
    "PassiveAggressiveClassifier": "its hinge-type loss is not a negative log-likelihood",
    "PassiveAggressiveRegressor": "its epsilon-insensitive loss is not a negative log-likelihood",
}
"""Estimators whose objective is not a log-likelihood plus a log-prior: no Bayesian twin exists to build."""


ELSEWHERE = {
    "KernelRidge": (
        "its twin is a Gaussian process, with no coefficients on the features: "
        "models.kernel.kernel_twin builds it"
    ),
}
"""Estimators whose twin exists but is not a linear design with coefficients, so built outside the registry."""


def why_no_twin(final) -> str:
    """Why ``final`` has no twin here: a twin built elsewhere (:data:`ELSEWHERE`), a loss that is no
    likelihood (:data:`NO_LIKELIHOOD`), or no kind yet."""
    if isinstance(final, (SGDClassifier, SGDRegressor)) and sgd_target(final) is None:
        return f"no twin for loss={final.loss!r}: {sgd_why_no_twin(final)}"
    for cls in type(final).__mro__:
        if cls.__name__ in ELSEWHERE:
            return f"no coefficient twin: {ELSEWHERE[cls.__name__]}"
        if cls.__name__ in NO_LIKELIHOOD:
            return f"no twin: {NO_LIKELIHOOD[cls.__name__]}"
    supported = ", ".join(sorted({cls.__name__ for cls in ESTIMATOR_CLASSES}))
    return f"no twin kind matches it; supported: {supported}, alone or as a Pipeline's last step"
