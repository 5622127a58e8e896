"""The Bayesian twins of LogisticRegression and PoissonRegressor: Bernoulli-logit and Poisson-log GLMs.

* ``logistic_regression``: ``y_i ~ Bernoulli(logit^-1(intercept + x_i beta))`` with a flat intercept and
  ``beta ~ N(0, C)``. Its MAP is ``LogisticRegression(C=logistic_C)`` with the l2 penalty and any solver except
  liblinear (see :func:`models.penalties.logistic_prior_sigma`).
* ``poisson_regression``: ``y_i ~ Poisson(exp(intercept + x_i beta))`` with a flat intercept and
  ``beta ~ N(0, 1 / (n alpha))``, ``n`` the sum of the sample weights. Its MAP is
  ``PoissonRegressor(alpha=poisson_alpha)`` (see :func:`models.penalties.poisson_prior_sigma`).

The design, the response, the sample weights and the penalty (``logistic_C`` or ``poisson_alpha``, in
scikit-learn's units) are ``pm.Data``, so one compiled model serves a whole path
(``pm.set_data({"logistic_C": C})``); the graph maps the penalty to the prior scale exactly as
:mod:`models.penalties` does (a test holds the two together). ``poisson_alpha = 0`` builds a flat prior
instead: a different model structure, whose MAP is the unpenalized fit.

Sample weights multiply the log-likelihood terms, as scikit-learn weights the loss: row ``i`` contributes
``w_i log p(y_i | theta)``. Without weights the likelihood is a plain ``pm.Bernoulli`` / ``pm.Poisson``. With
weights it is a ``pm.CustomDist`` of the same distribution whose log-density is multiplied by ``w_i`` (a
``pm.Potential`` would give the same posterior but no observed variable). So ``y`` stays an observed
variable: posterior predictive draws are Bernoulli / Poisson draws, and the ``log_likelihood`` group holds each
row's weighted contribution ``w_i log p(y_i | theta)``, the terms the posterior is made of (a row of weight 2
counts as two copies of that row). With unit weights the two are identical.

Exposure and trials. A Poisson target ``y = count / exposure`` fitted with ``sample_weight = exposure``
(scikit-learn's convention) is a proper Poisson likelihood of the counts with offset ``log(exposure)`` when the
counts are whole; any other non-integer target is a quasi-likelihood (:func:`poisson_likelihood` says which).
Binomial successes out of trials are weighted 0/1 rows for the logistic twin (:func:`binomial_rows`).
"""

from typing import NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.optimize
from sklearn.linear_model import LogisticRegression, PoissonRegressor

from models.data import DataError, check_number, check_sample_weight, validate_arrays
from models.fit import intercept_first
from models.penalties import logistic_elasticnet_prior_scales
from models.sparse import l1_prior, prior_scale

__all__ = [
    "FAMILIES",
    "TWIN_SOLVERS",
    "LIBLINEAR_REASON",
    "validate_glm",
    "WHOLE_COUNT_RTOL",
    "POISSON_LIKELIHOODS",
    "poisson_likelihood",
    "logistic_prior_data",
    "logistic_regression",
    "check_estimable",
    "poisson_regression",
    "logistic_reference",
    "poisson_reference",
    "BinomialRows",
    "binomial_rows",
    "GridPosterior",
    "logistic_posterior_grid",
]

FAMILIES = ("logistic", "poisson")

TWIN_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")
"""LogisticRegression solvers that minimize ``C * sum_i w_i logloss_i + ||w||**2 / 2`` with a free intercept."""

LIBLINEAR_REASON = (
    "solver='liblinear' penalizes the intercept (it is fitted as a weight on a constant column), so its "
    "fit is not the MAP of a model with a flat intercept prior; use lbfgs or newton-cholesky"
)


def validate_glm(
    X,
    y,
    *,
    family: str,
    sample_weight=None,
    logistic_C=None,
    poisson_alpha=None,
    solver: str | None = None,
    name: str = "data",
):
    """Check a GLM's data and penalty once; return float ``X``, ``y`` and the weights (ones when None).

    Raises
    ------
    DataError
        One line: an unknown family; non-finite or misshapen arrays; a logistic target that is not 0/1 with
        both classes present; a Poisson target that is negative or all zero (a non-integer one is a rate or
        a quasi-likelihood: :func:`poisson_likelihood`); negative,
        non-finite or all-zero sample weights; ``C <= 0`` or NaN; ``alpha < 0`` or a
        non-finite alpha; ``solver='liblinear'`` (it penalizes the intercept) or an unknown solver.
    """
    if family not in FAMILIES:
        raise DataError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    validate_arrays(X, y, name=name)
    if family == "logistic":
        values = np.unique(y)
        if not np.all(np.isin(values, (0.0, 1.0))):
            shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if values.size > 5 else "")
            raise DataError(f"{name}: a logistic target must be binary 0/1, got values {shown}")
        if values.size < 2:
            raise DataError(
                f"{name}: a logistic target needs both classes 0 and 1, got only {values[0]:g}"
            )
    else:
        if np.any(y < 0):
            raise DataError(f"{name}: Poisson counts must be >= 0, got {y.min():g}")
        if not np.any(y > 0):
            raise DataError(
                f"{name}: Poisson counts are all zero (the intercept's MAP would be -inf)"
            )
    weights = check_sample_weight(sample_weight, y.size, source=name)
    if logistic_C is not None:
        check_number("C", logistic_C, inclusive=False, inf_means="no penalty")
    if poisson_alpha is not None:
        check_number("alpha", poisson_alpha)
    if solver is not None:
        if solver == "liblinear":
            raise DataError(LIBLINEAR_REASON)
        if solver not in TWIN_SOLVERS:
            raise DataError(f"unknown solver {solver!r}; choose from {', '.join(TWIN_SOLVERS)}")
    return X, y, weights


WHOLE_COUNT_RTOL = 1e-9
"""How close ``y * sample_weight`` must be to a whole number to count as one: a rate computed as
``count / exposure`` and multiplied back is within a few ulps of the count (1e-16 relative), far inside this."""

POISSON_LIKELIHOODS = {
    "counts": "Poisson likelihood of the integer counts y",
    "exposure": (
        "Poisson likelihood of the whole counts y * sample_weight with offset log(sample_weight) "
        "(y a rate per unit of exposure)"
    ),
    "quasi": (
        "quasi-likelihood: y (times sample_weight) is not a whole count, so the estimator's objective is "
        "used as a log-density; not a proper Bayesian posterior, though its MAP is still the estimator"
    ),
}
"""What each Poisson likelihood of :func:`poisson_likelihood` is, in words (for labels and summaries)."""


def poisson_likelihood(y, sample_weight=None) -> str:
    """Which likelihood the Poisson twin's target makes: ``"counts"``, ``"exposure"`` or ``"quasi"``.

    ``PoissonRegressor`` minimizes ``sum_i w_i (mu_i - y_i log mu_i)`` (scaled), which is, up to constants,
    the Poisson log-likelihood of the counts ``c_i = y_i w_i`` with means ``w_i mu_i`` (an offset
    ``log w_i``): scikit-learn's convention for exposure, ``y = count / exposure`` with ``sample_weight =
    exposure``. So:

    * ``"counts"``: ``y`` is whole (the weights, if any, multiply each row's log-likelihood, as before);
    * ``"exposure"``: ``y`` is not whole but every ``y_i w_i`` is (to :data:`WHOLE_COUNT_RTOL`) and every
      weight is positive: a proper Poisson likelihood of the counts;
    * ``"quasi"``: otherwise (a non-integer ``y`` without weights that make it whole). The same objective
      is used as a log-density, ``w_i (y_i log mu_i - mu_i - log Gamma(y_i + 1))``: the MAP is still the
      estimator's, but the posterior is not that of any model of the data.
    """
    y = np.asarray(y, dtype=float)
    if np.all(y == np.round(y)):
        return "counts"
    if sample_weight is None:
        return "quasi"
    weights = np.asarray(sample_weight, dtype=float)
    counts = y * weights
    whole = np.abs(counts - np.round(counts)) <= WHOLE_COUNT_RTOL * np.maximum(1.0, np.abs(counts))
    return "exposure" if np.all(whole) and np.all(weights > 0) else "quasi"


def _observe_exposure(eta, counts_, exposure_):
    """Observed counts ``c_i ~ Poisson(exposure_i exp(eta_i))``: ``log(exposure)`` an offset."""

    def dist(eta, exposure, size):
        return pm.Poisson.dist(mu=exposure * pt.exp(eta), size=size)

    def logp(value, eta, exposure):
        # log(exposure) is data: written out so that the gradient in eta is c - exposure exp(eta)
        offset = pt.switch(pt.eq(value, 0), 0.0, value * pt.log(exposure))
        return offset + value * eta - exposure * pt.exp(eta) - pt.gammaln(value + 1.0)

    return pm.CustomDist("y", eta, exposure_, dist=dist, logp=logp, observed=counts_, dims="obs_id")


def _observe_quasi(eta, y_, sample_weight_):
    """A non-integer ``y`` under the Poisson objective ``w_i (y_i eta_i - exp(eta_i) - log Gamma(y_i + 1))``
    (a quasi-likelihood: PyMC's Poisson would round ``y`` down; no draws, since no distribution has it)."""

    def logp(value, eta, weight):
        return weight * (value * eta - pt.exp(eta) - pt.gammaln(value + 1.0))

    return pm.CustomDist(
        "y", eta, sample_weight_, logp=logp, observed=y_, dtype="float64", dims="obs_id"
    )


def _observe(distribution, eta, y_, sample_weight_, weighted: bool):
    """The observed ``y``: ``distribution(eta)``, its log-density times the sample weights when weighted."""

    def make(eta, size=None):
        if distribution == "bernoulli":
            return pm.Bernoulli.dist(logit_p=eta, size=size)
        return pm.Poisson.dist(mu=pt.exp(eta), size=size)

    if not weighted:
        if distribution == "bernoulli":
            return pm.Bernoulli("y", logit_p=eta, observed=y_, dims="obs_id")
        return pm.Poisson("y", mu=pt.exp(eta), observed=y_, dims="obs_id")

    def logp(value, eta, weight):
        return weight * pm.logp(make(eta), value)

    def dist(eta, weight, size):
        return make(eta, size=size)

    return pm.CustomDist("y", eta, sample_weight_, dist=dist, logp=logp, observed=y_, dims="obs_id")


def _glm(
    X, y, weights, *, distribution, prior, fit_intercept, feature_names, weighted, feature_scale
):
    """The GLM skeleton: data containers, ``beta = prior(sample_weight, scale)``, flat intercept, likelihood."""
    n, p = X.shape
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    if len(feature_names) != p:
        raise DataError(f"feature_names has {len(feature_names)} names for {p} columns")
    coords = {"feature": feature_names, "obs_id": np.arange(n)}
    with pm.Model(coords=coords) as model:
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        if distribution == "poisson_exposure":
            observed = np.round(y * weights).astype(np.int64)  # the counts (poisson_likelihood)
        elif distribution == "poisson_quasi":
            observed = y
        else:
            observed = y.astype(np.int64)
        y_ = pm.Data("y_observed", observed, dims="obs_id")
        sample_weight_ = pm.Data("sample_weight", weights, dims="obs_id")
        beta = prior(sample_weight_, prior_scale(feature_scale, p))
        eta = X_ @ beta
        if fit_intercept:
            eta = pm.Flat("intercept") + eta
        if distribution == "poisson_exposure":
            _observe_exposure(eta, y_, sample_weight_)
        elif distribution == "poisson_quasi":
            _observe_quasi(eta, y_, sample_weight_)
        else:
            _observe(distribution, eta, y_, sample_weight_, weighted)
    return model


def logistic_prior_data(*, logistic_C: float, l1_ratio: float = 0.0) -> dict[str, np.ndarray]:
    """``pm.Data`` values of :func:`logistic_regression`'s prior for ``LogisticRegression(C, l1_ratio)``.

    ``{"logistic_C": C}`` for the l2 penalty, ``{"laplace_b": b}`` for l1, ``{"laplace_b": b, "normal_sigma":
    tau}`` in between (:func:`models.penalties.logistic_elasticnet_prior_scales`), ``{}`` for ``C = inf``.
    """
    if np.isinf(logistic_C):
        return {}
    if l1_ratio == 0:
        return {"logistic_C": np.float64(logistic_C)}
    b, tau = logistic_elasticnet_prior_scales(logistic_C=logistic_C, l1_ratio=l1_ratio)
    if l1_ratio == 1:
        return {"laplace_b": np.float64(b)}
    return {"laplace_b": np.float64(b), "normal_sigma": np.float64(tau)}


def logistic_regression(
    X,
    y,
    *,
    logistic_C: float,
    l1_ratio: float = 0.0,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    feature_scale=None,
) -> pm.Model:
    """Build the twin of ``LogisticRegression(C=logistic_C, l1_ratio=l1_ratio)`` (any solver but liblinear).

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
        0/1 labels, both present.
    logistic_C : float
        scikit-learn's inverse penalty strength, > 0. ``l1_ratio = 0``: ``beta ~ N(0, C)``; ``l1_ratio = 1``:
        ``beta ~ Laplace(0, C)``; in between the elastic-net prior ``exp(-|beta| / b - beta**2 / (2 tau**2))``
        (:func:`logistic_prior_data`). ``C = inf`` is a flat prior (no penalty): its MAP is the maximum
        likelihood fit, which exists only when the classes are not separable and the design has full rank
        (checked, see :func:`check_estimable`).
    l1_ratio : float
        In [0, 1], the share of the l1 penalty.
    sample_weight : array_like or None
        Multiplies row ``i``'s log-likelihood, as in ``LogisticRegression.fit(..., sample_weight=w)``.
    fit_intercept : bool
        Add an intercept with a flat (unpenalized) prior.
    feature_names : sequence of str or None
        Coordinates of the ``feature`` dim.
    feature_scale : array_like or None
        For sampling in standardized coordinates: the columns of ``X`` are the estimator's features divided by
        ``feature_scale`` and ``beta_j`` is ``feature_scale_j`` times the estimator's coefficient, so each
        prior scale is multiplied by ``feature_scale_j`` (``pm.Data`` ``feature_scale``). The same posterior,
        in other coordinates.

    Returns
    -------
    pm.Model
        Free variables ``intercept`` (when fitted) and ``beta`` (dim ``feature``); observed ``y`` (dim
        ``obs_id``); ``pm.Data`` ``X``, ``y_observed``, ``sample_weight`` and the prior's (see
        :func:`logistic_prior_data`).
    """
    check_number("l1_ratio", l1_ratio, high=1.0)
    X, y, weights = validate_glm(
        X, y, family="logistic", sample_weight=sample_weight, logistic_C=logistic_C
    )
    data = logistic_prior_data(logistic_C=logistic_C, l1_ratio=l1_ratio)
    if not data:
        check_estimable(X, y, weights, fit_intercept=fit_intercept)

    def prior(_, scale):
        if not data:
            return pm.Flat("beta", dims="feature")
        if "logistic_C" in data:
            sigma = pt.sqrt(pm.Data("logistic_C", data["logistic_C"])) * scale
            return pm.Normal("beta", 0.0, sigma, dims="feature")
        return l1_prior(data, scale)

    return _glm(
        X,
        y,
        weights,
        distribution="bernoulli",
        prior=prior,
        fit_intercept=fit_intercept,
        feature_names=feature_names,
        weighted=sample_weight is not None,
        feature_scale=feature_scale,
    )


def check_estimable(X, y, weights, *, fit_intercept: bool = True) -> None:
    """Raise unless the unpenalized logistic fit exists: full-rank design and no separation.

    Separation (complete or quasi-complete) is decided by a linear program (as Konis 2007): on the scaled
    design (centered too with an intercept; rows of zero weight dropped), maximize ``sum_i s_i eta_i`` subject to
    ``s_i eta_i >= 0`` for every row, ``s_i = 2 y_i - 1``, ``eta = intercept + X beta``, with every coefficient
    in [-1, 1]. A positive optimum is a direction in which the likelihood increases without bound.

    Raises
    ------
    DataError
        One line naming the problem: a design of deficient rank, or separable classes.
    """
    keep = weights > 0
    X, y = X[keep], y[keep]
    scale = np.sqrt(np.mean(X**2, axis=0))
    Z = X / np.where(scale > 0, scale, 1.0)  # scaling leaves rank and separation unchanged
    if fit_intercept:  # with an intercept, centering too (it is absorbed by the intercept)
        Z = Z - Z.mean(axis=0)
    design = np.column_stack([np.ones(len(Z)), Z]) if fit_intercept else Z
    rank = np.linalg.matrix_rank(design)
    if rank < design.shape[1]:
        raise DataError(
            f"the design has rank {rank} < {design.shape[1]} coefficients: without a penalty (C = inf) "
            "the likelihood is flat in some direction and has no unique maximum; use a finite C"
        )
    signed = (2.0 * y - 1.0)[:, None] * design
    result = scipy.optimize.linprog(
        -signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(len(signed)),
        bounds=[(-1.0, 1.0)] * design.shape[1],
        method="highs",
    )
    if result.status != 0:
        raise DataError(f"could not decide whether the classes are separable ({result.message})")
    if -result.fun > 1e-7 * len(signed):
        raise DataError(
            "the classes are separable by a linear combination of the features: without a penalty "
            "(C = inf) the likelihood has no maximum (the coefficients diverge); use a finite C"
        )


def poisson_regression(
    X,
    y,
    *,
    poisson_alpha: float,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    feature_scale=None,
) -> pm.Model:
    """Build the twin of ``PoissonRegressor(alpha=poisson_alpha)``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
        Non-negative, not all zero: integer counts, or rates ``count / exposure`` with ``sample_weight =
        exposure`` (scikit-learn's convention), or any other non-negative numbers (a quasi-likelihood); see
        :func:`poisson_likelihood`.
    poisson_alpha : float
        scikit-learn's penalty strength, >= 0: ``beta ~ N(0, 1 / (sum(w) alpha))``; 0 is a flat prior.
    sample_weight : array_like or None
        Multiplies row ``i``'s log-likelihood; their sum is the ``n`` of the prior variance.
    fit_intercept : bool
        Add an intercept with a flat (unpenalized) prior.
    feature_names : sequence of str or None
        Coordinates of the ``feature`` dim.
    feature_scale : array_like or None
        Standardized coordinates, as in :func:`logistic_regression`.

    Returns
    -------
    pm.Model
        As :func:`logistic_regression`, with ``pm.Data`` ``poisson_alpha`` (absent for a flat prior). With
        exposure, the observed ``y`` and ``y_observed`` are the counts ``y * sample_weight`` (Poisson with
        mean ``sample_weight * exp(eta)``, unweighted); for a quasi-likelihood, ``y`` as given (float, a
        log-density only: no predictive draws).
    """
    X, y, weights = validate_glm(
        X, y, family="poisson", sample_weight=sample_weight, poisson_alpha=poisson_alpha
    )

    def prior(sample_weight_, scale):
        if poisson_alpha == 0:
            return pm.Flat("beta", dims="feature")
        alpha = pm.Data("poisson_alpha", float(poisson_alpha))
        sigma = scale / pt.sqrt(pt.sum(sample_weight_) * alpha)
        return pm.Normal("beta", 0.0, sigma, dims="feature")

    likelihood = poisson_likelihood(y, sample_weight)
    return _glm(
        X,
        y,
        weights,
        distribution="poisson" if likelihood == "counts" else f"poisson_{likelihood}",
        prior=prior,
        fit_intercept=fit_intercept,
        feature_names=feature_names,
        weighted=sample_weight is not None,
        feature_scale=feature_scale,
    )


def logistic_reference(
    X,
    y,
    *,
    logistic_C: float,
    sample_weight=None,
    fit_intercept: bool = True,
    solver: str = "newton-cholesky",
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> np.ndarray:
    """``LogisticRegression`` (l2) with a tight ``tol``; coefficients with the intercept first.

    ``newton-cholesky`` (exact Newton steps) reaches the optimum to about 1e-12; ``lbfgs`` with the same
    ``tol`` stops earlier (its relative-decrease criterion ``ftol = 64 eps`` ends it first, measured 1e-7 to
    4e-6 relative on breast_cancer).
    """
    validate_glm(X, y, family="logistic", logistic_C=logistic_C, solver=solver)
    fit = LogisticRegression(
        C=logistic_C, solver=solver, tol=tol, max_iter=max_iter, fit_intercept=fit_intercept
    ).fit(X, y, sample_weight=sample_weight)
    coef = fit.coef_.ravel()
    return np.concatenate([fit.intercept_, coef]) if fit_intercept else coef


def poisson_reference(
    X,
    y,
    *,
    poisson_alpha: float,
    sample_weight=None,
    fit_intercept: bool = True,
    solver: str = "newton-cholesky",
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> np.ndarray:
    """``PoissonRegressor`` with a tight ``tol``; coefficients with the intercept first."""
    validate_glm(X, y, family="poisson", poisson_alpha=poisson_alpha)
    fit = PoissonRegressor(
        alpha=poisson_alpha, solver=solver, tol=tol, max_iter=max_iter, fit_intercept=fit_intercept
    ).fit(X, y, sample_weight=sample_weight)
    return intercept_first(fit, fit_intercept)


class BinomialRows(NamedTuple):
    """Successes out of trials as weighted 0/1 rows (:func:`binomial_rows`)."""

    X: object
    y: np.ndarray
    sample_weight: np.ndarray
    source_row: np.ndarray


def binomial_rows(X, successes, trials) -> BinomialRows:
    """Binomial data ``k_i`` successes out of ``n_i`` trials as weighted Bernoulli rows.

    Row ``i`` becomes a 1-row of weight ``k_i`` and a 0-row of weight ``n_i - k_i`` (rows of weight zero are
    left out). The weighted Bernoulli log-likelihood ``k_i log p_i + (n_i - k_i) log(1 - p_i)`` is the
    binomial one up to ``log binom(n_i, k_i)``, a constant: ``LogisticRegression`` fitted on these rows is
    R's ``glm(cbind(k, n - k) ~ x, family = binomial)`` (or ``glm(k / n ~ x, weights = n)``) with an l2
    penalty, and its twin's posterior is the binomial model's.

    Parameters
    ----------
    X : array_like or DataFrame, shape (n, p)
        Taken as it is (a DataFrame's rows are selected with ``iloc``, its index reset).
    successes, trials : array_like, shape (n,)
        Whole numbers with ``0 <= successes <= trials`` and ``trials >= 1``.

    Returns
    -------
    BinomialRows
        ``X``, ``y`` (0/1), ``sample_weight`` of the expanded rows, and ``source_row``: the row of the input
        each came from.

    Raises
    ------
    DataError
        One line: misshapen or non-finite arrays, trials below 1 or not whole, successes not whole or
        outside ``[0, trials]``, or no success or no failure at all (the intercept's MAP would be infinite).
    """
    try:
        k = np.asarray(successes, dtype=float)
        n = np.asarray(trials, dtype=float)
    except (TypeError, ValueError):
        raise DataError("successes and trials must be numbers") from None
    if k.shape != (len(X),) or n.shape != (len(X),):
        raise DataError(f"successes and trials need one value per row ({len(X)})")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(n))):
        raise DataError("successes and trials must be finite numbers")
    if np.any(n < 1) or np.any(n != np.round(n)):
        bad = n[(n < 1) | (n != np.round(n))][0]
        raise DataError(f"trials must be whole numbers >= 1, got {bad:g}")
    if np.any(k != np.round(k)) or np.any(k < 0) or np.any(k > n):
        i = int(np.flatnonzero((k != np.round(k)) | (k < 0) | (k > n))[0])
        raise DataError(
            f"successes must be whole numbers from 0 to the trials, got {k[i]:g} of {n[i]:g} (row {i}); "
            "a proportion times its trials gives them"
        )
    if not np.any(k > 0) or not np.any(k < n):
        raise DataError("binomial data need at least one success and one failure")
    weights = np.concatenate([k, n - k])
    keep = weights > 0
    rows = np.concatenate([np.arange(len(X)), np.arange(len(X))])[keep]
    y = np.concatenate([np.ones(len(X)), np.zeros(len(X))])[keep]
    if hasattr(X, "iloc"):
        expanded = X.iloc[rows].reset_index(drop=True)
    else:
        expanded = np.asarray(X)[rows]
    return BinomialRows(expanded, y, weights[keep], rows)


class GridPosterior(NamedTuple):
    """A two-parameter posterior ``(intercept, beta)`` integrated on a grid.

    ``axes[k]`` and ``densities[k]`` are the grid and the normalized marginal density of parameter ``k``;
    ``edge`` is the largest density on the border of the box relative to the maximum (the truncation).
    """

    names: tuple[str, str]
    mean: np.ndarray
    sd: np.ndarray
    mode: np.ndarray
    axes: tuple[np.ndarray, np.ndarray]
    densities: tuple[np.ndarray, np.ndarray]
    edge: float

    def quantile(self, q) -> np.ndarray:
        """Marginal quantiles, shape ``(len(q), 2)`` (midpoint CDF, linear interpolation)."""
        q = np.atleast_1d(q)
        columns = []
        for axis, density in zip(self.axes, self.densities, strict=True):
            step = axis[1] - axis[0]
            cdf = np.cumsum(density) * step - 0.5 * density * step
            columns.append(np.interp(q, cdf, axis))
        return np.column_stack(columns)

    @property
    def median(self) -> np.ndarray:
        return self.quantile(0.5)[0]


def _logistic_log_density(x, y, weights, logistic_C, intercepts, slopes):
    """Unnormalized log-posterior on the grid ``intercepts x slopes`` (shape ``(len(b), len(w))``)."""
    out = np.broadcast_to(-0.5 * slopes**2 / logistic_C, (intercepts.size, slopes.size)).copy()
    for x_i, y_i, w_i in zip(x, y, weights, strict=True):
        eta = intercepts[:, None] + slopes[None, :] * x_i
        out += w_i * (y_i * eta - np.logaddexp(0.0, eta))
    return out


def logistic_posterior_grid(
    x, y, *, logistic_C: float, sample_weight=None, n_grid: int = 1001, log_tail: float = -32.0
) -> GridPosterior:
    """The exact posterior of the one-feature logistic twin by quadrature on a ``n_grid``-square grid.

    The box starts at the MAP +- 10 Laplace SDs and grows until the density on its border is below
    ``exp(log_tail)`` of the maximum (checked on a coarse grid, then reported for the fine one as ``edge``);
    a midpoint sum over it then gives the moments and the marginals, whose error for a smooth density that
    vanishes at the border is far below any Monte Carlo error. Works where the posterior is far from Gaussian,
    as on separable data.
    """
    x = np.asarray(x, dtype=float).ravel()
    X, y, weights = validate_glm(
        x[:, None], y, family="logistic", sample_weight=sample_weight, logistic_C=logistic_C
    )
    center = logistic_reference(X, y, logistic_C=logistic_C, sample_weight=sample_weight)
    prob = 1.0 / (1.0 + np.exp(-(center[0] + center[1] * x)))
    curvature = weights * prob * (1.0 - prob)
    design = np.column_stack([np.ones_like(x), x])
    hessian = design.T @ (curvature[:, None] * design) + np.diag([0.0, 1.0 / logistic_C])
    half = 10.0 * np.sqrt(np.diag(np.linalg.inv(hessian)))
    lo, hi = center - half, center + half

    def evaluate(n):
        axes = (np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
        log_density = _logistic_log_density(x, y, weights, logistic_C, *axes)
        return axes, log_density - log_density.max()

    for _ in range(60):
        _, log_density = evaluate(161)
        edges = [
            log_density[0].max(),
            log_density[:, 0].max(),
            log_density[-1].max(),
            log_density[:, -1].max(),
        ]
        if max(edges) < log_tail:
            break
        width = hi - lo
        lo = lo - 0.5 * width * np.array([edges[0] >= log_tail, edges[1] >= log_tail])
        hi = hi + 0.5 * width * np.array([edges[2] >= log_tail, edges[3] >= log_tail])
    else:
        raise RuntimeError(
            "posterior grid: the density does not vanish at the border (improper posterior?)"
        )

    axes, log_density = evaluate(n_grid)
    density = np.exp(log_density)
    edge = max(density[0].max(), density[-1].max(), density[:, 0].max(), density[:, -1].max())
    step = np.array([axes[0][1] - axes[0][0], axes[1][1] - axes[1][0]])
    total = density.sum() * step[0] * step[1]
    marginals = (density.sum(axis=1) * step[1] / total, density.sum(axis=0) * step[0] / total)
    mean = np.array([np.sum(a * m) * s for a, m, s in zip(axes, marginals, step, strict=True)])
    sd = np.array(
        [
            np.sqrt(np.sum((a - mu) ** 2 * m) * s)
            for a, m, mu, s in zip(axes, marginals, mean, step, strict=True)
        ]
    )
    row, col = np.unravel_index(np.argmax(density), density.shape)
    return GridPosterior(
        names=("intercept", "beta"),
        mean=mean,
        sd=sd,
        mode=np.array([axes[0][row], axes[1][col]]),
        axes=axes,
        densities=marginals,
        edge=float(edge),
    )
