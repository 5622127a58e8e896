"""The twin of ``QuantileRegressor``: an asymmetric Laplace likelihood, a Laplace prior tied to its scale.

scikit-learn's ``QuantileRegressor(quantile=q, alpha)`` minimizes (``sklearn/linear_model/_quantile.py``:
``alpha`` is multiplied by ``sum(sample_weight)`` and the linear program minimizes ``sum_i w_i rho_q(r_i) +
alpha sum(w) ||beta||_1``, the intercept unpenalized)::

    O(beta, b0) = 1 / sum(w) * sum_i w_i rho_q(y_i - x_i beta - b0) + alpha ||beta||_1,
    rho_q(r) = q r (r >= 0),  (q - 1) r (r < 0).

It does not change when all weights are multiplied by one number, so the twin rescales them to sum to ``n``
(as :mod:`models.sparse` does for the Lasso): ``n O = sum_i w_i rho_q(r_i) + n alpha ||beta||_1``.

The twin (:func:`quantile_regression`)::

    y_i ~ AsymmetricLaplace(location x_i beta + b0, quantile q, scale sigma / w_i),
        density  q (1 - q) w_i / sigma * exp(-w_i rho_q(y_i - x_i beta - b0) / sigma);
    beta_j ~ Laplace(0, sigma / (n alpha))   (alpha > 0; a flat prior at alpha = 0);
    b0 flat;  log(sigma) flat (Jeffreys' prior 1 / sigma, the scale-free prior).

Why the prior scale is ``sigma / (n alpha)``: at any fixed ``sigma`` the log posterior in ``(beta, b0)`` is
``-sum_i w_i rho_q(r_i) / sigma - n alpha ||beta||_1 / sigma + const = -n O(beta, b0) / sigma + const``, a
negative multiple of scikit-learn's objective, so its maximizer is scikit-learn's for every ``sigma``.

Why ``sigma`` is a parameter with Jeffreys' prior, not a plug-in: then integrating it out leaves
``p(beta, b0 | y)`` proportional to ``(n O(beta, b0))**-(n + m)`` (``m = p`` Laplace normalizers
``1 / b`` when ``alpha > 0``, ``m = 0`` otherwise), a decreasing function of the same objective: the marginal
MAP is scikit-learn's fit exactly too, and nothing is estimated twice. The objective is positively
homogeneous, so rescaling ``y`` rescales the whole posterior (a plug-in would do too, but would ignore the
scale's uncertainty). The posterior is proper when ``O`` grows in every direction (at ``alpha = 0``: linearly
independent columns) and ``n + m > k`` (``k`` coefficients, intercept included); its SDs are finite when
``n + m > k + 2`` (:func:`check_quantile`).

PyMC's ``AsymmetricLaplace(b, kappa, mu)`` has ``log p = log(b / (kappa + 1 / kappa)) - b kappa**s |y - mu|``
with ``s = sign(y - mu)`` (``pymc/distributions/continuous.py``), and ``q`` sets ``kappa = sqrt(q / (1 - q))``:
with ``b = w_i sqrt(q (1 - q)) / sigma`` the slopes are ``b kappa = w_i q / sigma`` above ``mu`` and
``b / kappa = w_i (1 - q) / sigma`` below, and ``b / (kappa + 1 / kappa) = w_i q (1 - q) / sigma``: the density
above. ``P(y <= mu) = q``: the location is the conditional ``q``-quantile, what the estimator predicts.

The MAP is a linear program (:class:`LinearProgramMAP`, HiGHS, read off the twin's own ``pm.Data``), certified
independently by the subgradient conditions in NumPy (:func:`quantile_optimality`). The posterior is the
asymmetric Laplace model's; as a model of the data it is usually misspecified, so its SDs need not match the
sandwich standard errors of quantile regression (Yang, Wang & He 2016, International Statistical Review).
"""

import functools
from typing import NamedTuple

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.optimize
import scipy.sparse

from models.data import DataError, check_number
from models.sparse import _scikit_weights, prior_scale

__all__ = [
    "check_quantile",
    "quantile_regression",
    "quantile_objective",
    "LinearProgramMAP",
    "Optimality",
    "quantile_optimality",
    "quantile_certificate",
    "predictive_quantile",
    "outcome_parts",
]


def check_quantile(X, quantile: float, quantile_alpha: float, fit_intercept: bool) -> None:
    """Refuse settings whose twin has no posterior, or one without finite SDs (see the module docstring).

    Raises
    ------
    DataError
        ``quantile`` outside (0, 1); ``alpha < 0``; at ``alpha = 0`` linearly dependent columns; too few rows.
    """
    check_number("quantile", quantile, high=1.0, inclusive=False)
    check_number("alpha", quantile_alpha)
    n, p = np.shape(X)
    k = p + int(fit_intercept)
    m = p if quantile_alpha > 0 else 0
    if quantile_alpha == 0:
        centered = X - (X.mean(axis=0) if fit_intercept else 0.0)
        if np.linalg.matrix_rank(centered) < p:
            raise DataError(
                "alpha = 0 needs linearly independent columns (the posterior is flat along the others): "
                "drop columns or use alpha > 0"
            )
    if n + m <= k + 2:
        raise DataError(
            f"{n} rows for {k} coefficients: the quantile twin's posterior SDs are finite only with more "
            f"than {k + 2 - m} rows; add rows" + ("" if m else " or use alpha > 0")
        )


def quantile_regression(
    X,
    y,
    *,
    quantile: float,
    quantile_alpha: float,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    feature_scale=None,
) -> pm.Model:
    """Build the asymmetric Laplace twin of ``QuantileRegressor(quantile, alpha=quantile_alpha)``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    quantile : float
        The quantile ``q`` in (0, 1).
    quantile_alpha : float
        scikit-learn's ``alpha`` (per unit of summed sample weight), >= 0; 0 is a flat prior on ``beta``.
    sample_weight : array_like or None
        Row weights, rescaled to sum to ``n`` (the estimator's fit does not change under that rescaling).
    fit_intercept : bool
        Add an intercept with a flat (unpenalized) prior.
    feature_names : sequence of str or None
    feature_scale : array_like or None
        Standardized coordinates: the columns of ``X`` are the estimator's features divided by
        ``feature_scale`` and the Laplace scales are multiplied by it (``pm.Data`` ``feature_scale``).

    Returns
    -------
    pm.Model
        Free ``log_sigma`` (flat), ``intercept`` (when fitted) and ``beta`` (dim ``feature``); deterministic
        ``sigma``; ``pm.Data`` ``X``, ``y_observed``, ``sample_weight`` (rescaled), ``quantile`` and
        ``l1_rate`` (``n alpha``: the Laplace scale is ``sigma / l1_rate``; absent at ``alpha = 0``).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    check_quantile(X, quantile, quantile_alpha, fit_intercept)
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    with pm.Model(coords={"feature": feature_names, "obs_id": np.arange(n)}) as model:
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        y_ = pm.Data("y_observed", y, dims="obs_id")
        weight_ = pm.Data("sample_weight", _scikit_weights(sample_weight, n), dims="obs_id")
        quantile_ = pm.Data("quantile", np.asarray(quantile, dtype=float))
        sigma = pm.Deterministic("sigma", pt.exp(pm.Flat("log_sigma")))
        scale = prior_scale(feature_scale, p)
        if quantile_alpha > 0:
            l1_rate = pm.Data("l1_rate", np.asarray(n * quantile_alpha, dtype=float))
            beta = pm.Laplace("beta", mu=0.0, b=sigma * scale / l1_rate, dims="feature")
        else:
            beta = pm.Flat("beta", dims="feature")
        mu = X_ @ beta
        if fit_intercept:
            mu = pm.Flat("intercept") + mu
        pm.AsymmetricLaplace(
            "y",
            b=weight_ * pt.sqrt(quantile_ * (1.0 - quantile_)) / sigma,
            q=quantile_,
            mu=mu,
            observed=y_,
            dims="obs_id",
        )
    return model


def quantile_objective(coef, Z, y, weights, *, quantile, quantile_alpha, fit_intercept) -> float:
    """scikit-learn's objective ``1 / sum(w) sum_i w_i rho_q(r_i) + alpha ||beta||_1`` at ``coef``
    (intercept first), in NumPy."""
    weights = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    fi = int(fit_intercept)
    residual = y - Z @ coef[fi:] - (coef[0] if fi else 0.0)
    loss = np.where(residual >= 0, quantile * residual, (quantile - 1.0) * residual)
    return float(weights @ loss / weights.sum() + quantile_alpha * np.abs(coef[fi:]).sum())


class LinearProgramMAP:
    """The MAP of :func:`quantile_regression` in ``(beta, intercept)``: a linear program solved by HiGHS.

    From the model's own ``pm.Data`` (design, response, rescaled weights, quantile, ``l1_rate``) it minimizes
    ``sum_i w_i (q u_i + (1 - q) v_i) + l1_rate sum_j (beta_j^+ + beta_j^-)`` subject to
    ``x_i (beta^+ - beta^-) + b0 + u_i - v_i = y_i`` and ``u, v, beta^+, beta^- >= 0`` (``b0`` free; ``beta``
    free at ``alpha = 0``): ``sigma`` times the negative log posterior at any fixed ``sigma``, up to a constant.
    A simplex vertex has exact zeros. ``sigma`` at the MAP is the joint mode given the coefficients, ``S / (n +
    m)`` with ``S`` the minimum (``-(n + m) log sigma - S / sigma`` in the flat coordinate ``log sigma``).

    The optimum need not be unique (a flat edge of the objective, e.g. ties in ``y``):
    :func:`quantile_optimality` says when uniqueness is proven.
    """

    def __init__(self, model: pm.Model):
        self.model = model

    def __call__(self, prefer=None) -> dict[str, np.ndarray]:
        """The MAP for the model's current data.

        Parameters
        ----------
        prefer : array_like or None
            Coefficients (intercept first), such as the estimator's: returned instead of the linear program's
            vertex when their objective is no larger (to rounding, 1e-12 of the objective's scale), since they
            are then a MAP too. Where the minimizer is not unique (HiGHS on scikit-learn's formulation and on
            this one may stop at different vertices of the same optimal face) the twin reports the member the
            estimator found; where it is unique the two agree to rounding anyway.

        Returns
        -------
        dict
            ``beta``, ``intercept`` (when fitted), ``sigma``; ``"_objective"``: scikit-learn's objective there;
            ``"_vertex"``: the linear program's own solution (intercept first).
        """
        data = {name: np.asarray(var.get_value()) for name, var in self._shared().items()}
        X, y, w, q = data["X"], data["y_observed"], data["sample_weight"], float(data["quantile"])
        n, p = X.shape
        fit_intercept = "intercept" in self.model.named_vars
        rate = float(data["l1_rate"]) if "l1_rate" in data else 0.0
        if rate > 0:  # beta = beta^+ - beta^-, both >= 0
            blocks, costs = [X, -X], [np.full(p, rate), np.full(p, rate)]
        else:
            blocks, costs = [X], [np.zeros(p)]
        bounds = [(0, None) if rate > 0 else (None, None)] * (len(blocks) * p)
        if fit_intercept:
            blocks, costs = [np.ones((n, 1)), *blocks], [np.zeros(1), *costs]
            bounds = [(None, None), *bounds]
        eye = scipy.sparse.eye_array(n, format="csc")
        A = scipy.sparse.hstack(
            [scipy.sparse.csc_array(np.hstack(blocks)), eye, -eye], format="csc"
        )
        c = np.concatenate([*costs, w * q, w * (1.0 - q)])
        bounds += [(0, None)] * (2 * n)
        result = scipy.optimize.linprog(c, A_eq=A, b_eq=y, bounds=bounds, method="highs")
        if not result.success:
            raise FloatingPointError(f"the quantile twin's linear program failed: {result.message}")
        x = result.x
        fi = int(fit_intercept)
        beta = x[fi : fi + p] - (x[fi + p : fi + 2 * p] if rate > 0 else 0.0)
        vertex = np.concatenate([x[:fi], beta])
        objective = {
            "Z": X,
            "y": y,
            "weights": w,
            "quantile": q,
            "quantile_alpha": rate / n,
            "fit_intercept": fit_intercept,
        }
        coef, minimum = vertex, quantile_objective(vertex, **objective)
        if prefer is not None:
            prefer = np.asarray(prefer, dtype=float)
            at_prefer = quantile_objective(prefer, **objective)
            if at_prefer <= minimum + 1e-12 * (minimum + np.abs(w * y).sum() / n):
                coef, minimum = prefer, at_prefer
        m = p if rate > 0 else 0
        values = {"beta": coef[fi:], "sigma": np.asarray(n * minimum / (n + m))}
        if fit_intercept:
            values["intercept"] = np.asarray(coef[0])
        values["_objective"] = minimum
        values["_vertex"] = vertex
        return values

    def _shared(self) -> dict:
        names = ("X", "y_observed", "sample_weight", "quantile", "l1_rate")
        return {name: self.model[name] for name in names if name in self.model.named_vars}


class Optimality(NamedTuple):
    """The subgradient conditions of scikit-learn's quantile objective at a point (:func:`quantile_optimality`).

    ``violation``: the largest violation, in units of each condition's scale ``mean_i w_i |x_ij|`` (the
    largest the loss's subgradient could be); ``zero_residual_max``: the largest ``|r_i|`` among the rows
    counted as interpolated; ``unique``: True when the multipliers prove the minimizer unique (strictly inside
    their ranges, and the interpolated rows determine the non-zero coefficients), False when not proven.
    """

    violation: float
    zero_residual_max: float
    unique: bool


def quantile_optimality(
    coef, Z, y, weights, *, quantile, quantile_alpha, fit_intercept, zero_tolerance=1e-9
) -> Optimality:
    """How far ``coef`` (intercept first) is from minimizing scikit-learn's quantile objective.

    Written in NumPy from the objective, independently of the linear program. With ``g_i = q`` for a positive
    residual and ``q - 1`` for a negative one, ``0`` is in the subdifferential iff there are ``g_i`` in
    ``[q - 1, q]`` for the rows with a zero residual and ``z_j`` in ``[-1, 1]`` for the zero coefficients with::

        mean_i w_i g_i x_ij = alpha sign(beta_j)   (beta_j != 0),
        mean_i w_i g_i x_ij = alpha z_j            (beta_j == 0),
        mean_i w_i g_i      = 0                    (the intercept).

    The free ``g_i`` and ``z_j`` are found by bounded least squares (``scipy.optimize.lsq_linear``, BVLS) and
    the largest remaining residual of these equations is the violation: zero exactly at a minimizer. A
    residual counts as zero when ``|r_i| <= zero_tolerance * (max_l |y_l| + |x_i| |beta| + |b0|)``: the
    rounding of the solver's arithmetic, on the scale of the whole response (a row with ``y_i = 0`` fitted by
    coefficients of 1e-14, rounding for 0, has a residual of 1e-14 and nothing smaller to compare it with).
    """
    n, p = Z.shape
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    weights = weights * (n / weights.sum())
    fi = int(fit_intercept)
    design = np.column_stack([np.ones(n), Z]) if fi else Z
    residual = y - design @ coef
    size = np.abs(y).max() + np.abs(design) @ np.abs(coef)
    at_zero = np.abs(residual) <= zero_tolerance * size
    g = np.where(residual > 0, quantile, quantile - 1.0)
    target = quantile_alpha * np.concatenate([np.zeros(fi), np.sign(coef[fi:])])
    zero_coef = np.concatenate([np.zeros(fi, dtype=bool), coef[fi:] == 0.0])
    gradient_scale = (weights @ np.abs(design)) / n
    gradient_scale[gradient_scale == 0.0] = 1.0
    # Unknowns: g on the interpolated rows, then z on the zero coefficients; one equation per coefficient.
    fixed = design[~at_zero].T @ (weights[~at_zero] * g[~at_zero]) / n
    free_rows = design[at_zero].T * weights[at_zero] / n
    free_coef = -quantile_alpha * np.eye(design.shape[1])[:, zero_coef]
    M = np.hstack([free_rows, free_coef]) / gradient_scale[:, None]
    rhs = (target - fixed) / gradient_scale
    lower = np.concatenate([np.full(at_zero.sum(), quantile - 1.0), np.full(zero_coef.sum(), -1.0)])
    upper = np.concatenate([np.full(at_zero.sum(), quantile), np.full(zero_coef.sum(), 1.0)])
    if M.shape[1]:
        solution = scipy.optimize.lsq_linear(M, rhs, bounds=(lower, upper), method="bvls").x
        solution = np.clip(solution, lower, upper)
    else:
        solution = np.zeros(0)
    violation = float(np.max(np.abs(M @ solution - rhs)))
    margin = 1e-9
    strict = (solution > lower + margin) & (solution < upper - margin)
    nonzero = ~zero_coef
    interior_rows = at_zero.copy()
    interior_rows[at_zero] = strict[: at_zero.sum()]
    unique = bool(
        np.all(strict[at_zero.sum() :] | (quantile_alpha == 0))
        and np.linalg.matrix_rank(design[np.ix_(interior_rows, nonzero)]) == nonzero.sum()
    )
    zero_residual_max = float(np.max(np.abs(residual[at_zero]), initial=0.0))
    return Optimality(violation, zero_residual_max, unique)


def quantile_certificate(coef, estimator_coef, Z, y, weights, fit_intercept, penalty) -> dict:
    """Checks of the quantile twin's MAP without a reference fit (scikit-learn's fit is the same HiGHS linear
    program): the subgradient conditions in NumPy, and an objective no worse than the estimator's."""
    objective = {"Z": Z, "y": y, "weights": weights, "fit_intercept": fit_intercept, **penalty}
    optimality = quantile_optimality(coef, **objective)
    at_map = quantile_objective(coef, **objective)
    at_estimator = quantile_objective(estimator_coef, **objective)
    return {
        # Exact arithmetic would give 0; the sums of n terms lose up to n eps of their scale (1e-13 at n of a
        # few hundred), and HiGHS's vertex carries its rounding: 1e-9 leaves room for both.
        "map_kkt_violation": (optimality.violation, "<=", 1e-9),
        # Where the minimizer is not unique the coefficients may differ; the objective may not (same
        # rounding argument, relative).
        "map_objective_minus_estimator": ((at_map - at_estimator) / abs(at_estimator), "<=", 1e-9),
    }


# Prediction --------------------------------------------------------------------------------------------


def _draw(rng, location, noise, *, quantile):
    """New observations ``location + sigma (E1 / q - E2 / (1 - q))`` (``E1, E2`` standard exponentials: the
    asymmetric Laplace with density ``q (1 - q) / sigma exp(-rho_q(r) / sigma)``)."""
    shape = np.shape(location)
    e1, e2 = rng.standard_exponential(shape), rng.standard_exponential(shape)
    return location + noise * (e1 / quantile - e2 / (1.0 - quantile))


def _variance(location, noise, *, quantile):
    """Variance of one observation: ``sigma**2 (1 - 2 q + 2 q**2) / (q (1 - q))**2``."""
    factor = (1.0 - 2.0 * quantile + 2.0 * quantile**2) / (quantile * (1.0 - quantile)) ** 2
    return np.broadcast_to(noise**2 * factor, np.shape(location))


def _cdf(value, location, noise, quantile):
    r = (value - location) / noise
    return np.where(
        r <= 0,
        quantile * np.exp((1.0 - quantile) * np.minimum(r, 0.0)),
        1.0 - (1.0 - quantile) * np.exp(-quantile * np.maximum(r, 0.0)),
    )


def predictive_quantile(location, noise, *, quantile, iterations: int = 100):
    """The ``quantile``-quantile of the posterior predictive, a mixture over the draws.

    ``location``: draws of ``x beta + b0``, shape ``(draws, rows)``; ``noise``: draws of ``sigma``, shape
    ``(draws, 1)``. The mixture's CDF (the mean of the draws' CDFs) is increasing: bisection between the
    smallest and largest draws' own ``q``-quantiles (the locations) brackets the answer, and 100 halvings
    take the bracket to rounding.
    """
    low, high = location.min(axis=0), location.max(axis=0)
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        below = _cdf(middle, location, noise, quantile).mean(axis=0) < quantile
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return 0.5 * (low + high)


def _point(location, noise, *, quantile):
    return predictive_quantile(location, noise, quantile=quantile)


def outcome_parts(quantile: float) -> dict:
    """``draw``, ``variance`` and ``point`` of :class:`models.registry.Outcome` at one quantile (partials of
    module functions, so that a fit holding them pickles)."""
    return {
        "draw": functools.partial(_draw, quantile=quantile),
        "variance": functools.partial(_variance, quantile=quantile),
        "point": functools.partial(_point, quantile=quantile),
    }
