"""The Bayesian twin of a multinomial (softmax) ``LogisticRegression``: 3 or more classes.

scikit-learn (>= 1.5, and the only choice from 1.8) fits ``K >= 3`` classes with one coefficient row per class,
``coef_`` (K x p) and ``intercept_`` (K), by minimizing

    C * sum_i w_i (-log softmax(intercept + W x_i)[y_i]) + l1_ratio ||W||_1 + (1 - l1_ratio) ||W||**2 / 2

over all ``K x p`` weights (``sklearn/linear_model/_logistic.py`` builds ``HalfMultinomialLoss``, whose loss is
the full cross-entropy, with ``l2_reg_strength = 1 / (C * sum(w))`` on the mean loss). The softmax does not
change when one vector is added to every class's row; the symmetric penalty is smallest with
``sum_k W_kj = 0`` per feature, so the penalized optimum has it. The intercepts are unpenalized and
not identified; scikit-learn's solvers report the symmetric ones, ``sum_k intercept_k = 0``
(``newton-cholesky`` subtracts their mean in ``_newton_solver.py``'s ``finalize``; ``lbfgs`` starts at 0 and
moves only along gradients, whose intercept part sums to 0). Without a penalty (``C = inf``) the weights have
the same freedom, and ``newton-cholesky`` centers them too.

The twin, :func:`multinomial_logistic_regression`:

* ``beta``: all ``K x p`` weights (flattened class by class, dim ``class_feature``) under the prior of
  :func:`models.glm.logistic_regression`, ``N(0, C)`` for l2, Laplace or elastic-net with an l1 part. The
  prior is proper, so ``beta``'s class-mean direction is identified by it alone (for l2 it is ``N(0, C / K)``
  a posteriori, independent of the data) and NUTS samples all ``K x p`` weights; its mode is scikit-learn's.
  With ``C = inf`` the weights get the intercepts' treatment below.
* ``intercept``: flat on the sum-zero plane, ``intercept = H @ intercept_free`` with ``H`` an orthonormal
  basis of ``{v : sum(v) = 0}`` (``K x (K - 1)``) and ``intercept_free`` flat: a flat prior on the plane, with
  no flat direction for NUTS to wander along. ``intercept`` is a deterministic, in scikit-learn's
  identification.

The posterior over class probabilities does not depend on how the intercepts are identified; a linear map
of coordinates (standardized features) moves the intercepts off the plane, and subtracting their mean
(:func:`center_intercepts`) brings them back without changing any probability.

With an l1 part the weights' class-mean direction is fixed by the penalty too, but with a pure l1 penalty
(``l1_ratio = 1``) and an even ``K`` the objective along it, ``sum_k |W_kj + c|``, is flat between the two
middle values of ``W_.j``: the MAP can be a segment, and the twin's member need not be saga's (both pass the
subgradient certificate; their distance is then no error). Any ``l1_ratio < 1`` makes it unique.

The coefficient vector everywhere here is ``[intercept (K), beta (K * p, class by class)]``, as
:func:`models.fit.coefficients` joins the two.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.linalg
import scipy.special
from sklearn.linear_model import LogisticRegression

from models.data import DataError, check_number, check_sample_weight, validate_arrays
from models.glm import logistic_prior_data
from models.sparse import laplace_normal_logp, prior_scale

__all__ = [
    "zero_sum_basis",
    "validate_classes",
    "multinomial_logistic_regression",
    "n_classes_of",
    "split",
    "center_intercepts",
    "blockwise",
    "estimator_coefficients",
    "multinomial_reference",
    "multinomial_objective",
    "multinomial_kkt_violation",
    "multinomial_certificate",
]


def zero_sum_basis(n_classes: int) -> np.ndarray:
    """An orthonormal basis (columns) of the vectors of length ``n_classes`` that sum to zero."""
    return scipy.linalg.null_space(np.ones((1, n_classes)))


def validate_classes(y, sample_weight=None) -> tuple[np.ndarray, np.ndarray, int]:
    """``y`` as class indices ``0, ..., K - 1`` (every one present, ``K >= 3``) and the weights.

    Raises
    ------
    DataError
        Indices that are not the integers 0 to K - 1 with each present, fewer than 3 classes, bad weights.
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or np.any(y < 0):
        raise DataError("a multinomial target must be class indices 0, 1, ..., K - 1")
    n_classes = int(y.max()) + 1
    missing = np.setdiff1d(np.arange(n_classes), y)
    if missing.size:
        raise DataError(f"class index {int(missing[0])} has no row: every class needs at least one")
    if n_classes < 3:
        raise DataError(f"a multinomial twin needs 3 or more classes, got {n_classes}")
    weights = check_sample_weight(sample_weight, y.size)
    return y.astype(np.int64), weights, n_classes


def multinomial_logistic_regression(
    X,
    y,
    *,
    logistic_C: float,
    l1_ratio: float = 0.0,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    feature_scale=None,
    class_names=None,
) -> pm.Model:
    """Build the twin of a multinomial ``LogisticRegression(C=logistic_C, l1_ratio=l1_ratio)``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
        Class indices ``0, ..., K - 1`` (``classes_`` order), ``K >= 3``, each present.
    logistic_C : float
        scikit-learn's inverse penalty strength, > 0; the prior of every one of the ``K x p`` weights is
        :func:`models.glm.logistic_prior_data`'s. ``C = inf``: flat weights on the sum-zero plane of each
        feature (as the intercepts), the maximum-likelihood fit (the design's rank is checked, separation
        is not: on separable classes the MAP does not exist).
    l1_ratio : float
        In [0, 1], the share of the l1 penalty.
    sample_weight : array_like or None
        Multiplies row ``i``'s log-likelihood.
    fit_intercept : bool
        Add the intercepts (flat on the sum-zero plane, see the module docstring).
    feature_names, class_names : sequence of str or None
        Coordinates of the ``feature`` and ``class`` dims; ``class_feature`` is ``feature[class]``.
    feature_scale : array_like or None
        Standardized coordinates, as in :func:`models.glm.logistic_regression` (the same scale for a feature
        in every class).

    Returns
    -------
    pm.Model
        Free ``beta`` (dim ``class_feature``; ``beta_free`` instead when ``C = inf``) and ``intercept_free``;
        deterministic ``intercept`` (dim ``class``); observed ``y``; ``pm.Data`` ``X``, ``y_observed``,
        ``sample_weight`` and the prior's.
    """
    check_number("l1_ratio", l1_ratio, high=1.0)
    check_number("C", logistic_C, inclusive=False, inf_means="no penalty")
    X = np.asarray(X, dtype=float)
    validate_arrays(X, np.asarray(y, dtype=float), name="data")
    y, weights, K = validate_classes(y, sample_weight)
    n, p = X.shape
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    class_names = (
        [str(k) for k in range(K)] if class_names is None else [str(c) for c in class_names]
    )
    if len(feature_names) != p or len(class_names) != K:
        raise DataError(
            f"names for {len(feature_names)} features and {len(class_names)} classes, data {p} and {K}"
        )
    data = logistic_prior_data(logistic_C=logistic_C, l1_ratio=l1_ratio)
    if not data:
        design = np.column_stack([np.ones(n), X]) if fit_intercept else X
        rank = np.linalg.matrix_rank(design[weights > 0])
        if rank < design.shape[1]:
            raise DataError(
                f"the design has rank {rank} < {design.shape[1]} coefficients: without a penalty (C = inf) "
                "the likelihood is flat in some direction; use a finite C"
            )
    H = zero_sum_basis(K)
    coords = {
        "class": class_names,
        "feature": feature_names,
        "class_feature": [f"{f}[{c}]" for c in class_names for f in feature_names],
        "obs_id": np.arange(n),
    }
    with pm.Model(coords=coords) as model:
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        y_ = pm.Data("y_observed", y, dims="obs_id")
        sample_weight_ = pm.Data("sample_weight", weights, dims="obs_id")
        scale = pt.tile(prior_scale(feature_scale, p), K) if feature_scale is not None else 1.0
        if not data:
            beta_free = pm.Flat("beta_free", shape=(K - 1, p))
            beta = pm.Deterministic("beta", pt.dot(H, beta_free).ravel(), dims="class_feature")
        elif "logistic_C" in data:
            sigma = pt.sqrt(pm.Data("logistic_C", data["logistic_C"])) * scale
            beta = pm.Normal("beta", 0.0, sigma, dims="class_feature")
        else:
            laplace_b = pm.Data("laplace_b", data["laplace_b"]) * scale
            if "normal_sigma" not in data:
                beta = pm.Laplace("beta", mu=0.0, b=laplace_b, dims="class_feature")
            else:
                normal_sigma = pm.Data("normal_sigma", data["normal_sigma"]) * scale
                beta = pm.CustomDist(
                    "beta", laplace_b, normal_sigma, logp=laplace_normal_logp, dims="class_feature"
                )
        eta = pt.dot(X_, beta.reshape((K, p)).T)
        if fit_intercept:
            intercept_free = pm.Flat("intercept_free", shape=K - 1)
            intercept = pm.Deterministic("intercept", pt.dot(H, intercept_free), dims="class")
            eta = eta + intercept
        if sample_weight is None:
            pm.Categorical("y", logit_p=eta, observed=y_, dims="obs_id")
        else:

            def logp(value, eta, weight):
                return weight * pm.logp(pm.Categorical.dist(logit_p=eta), value)

            def dist(eta, weight, size):
                return pm.Categorical.dist(logit_p=eta, size=size)

            pm.CustomDist(
                "y", eta, sample_weight_, dist=dist, logp=logp, observed=y_, dims="obs_id"
            )
    return model


def n_classes_of(coef, p: int, fit_intercept: bool) -> int:
    """The number of classes ``K`` of a coefficient vector ``[intercept (K), beta (K * p)]``."""
    return len(coef) // (p + int(fit_intercept))


def split(coef, p: int, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(intercept (K, or zeros), W (K x p))`` of a coefficient vector ``[intercept, beta]``."""
    coef = np.asarray(coef, dtype=float)
    K = n_classes_of(coef, p, fit_intercept)
    intercept = coef[:K] if fit_intercept else np.zeros(K)
    return intercept, coef[K * int(fit_intercept) :].reshape(K, p)


def center_intercepts(n_classes: int, p: int, fit_intercept: bool) -> np.ndarray:
    """The matrix that subtracts the intercepts' mean (scikit-learn's identification) and keeps the weights."""
    size = n_classes * (p + int(fit_intercept))
    M = np.eye(size)
    if fit_intercept:
        M[:n_classes, :n_classes] -= 1.0 / n_classes
    return M


def blockwise(
    T: np.ndarray, n_classes: int, fit_intercept: bool, *, centered: bool = True
) -> np.ndarray:
    """A map ``T`` of one class's coefficients (intercept first) applied to every class, on the layout
    ``[intercept (K), beta (K * p)]``, followed by centering the intercepts (``centered``: the multinomial's
    identification; a one-vs-rest RidgeClassifier's intercepts are each class's own)."""
    fi = int(fit_intercept)
    k = T.shape[0]
    size = n_classes * k
    # order[c * k + i]: where coefficient i of class c sits in [intercept, beta]
    order = np.empty(size, dtype=int)
    for c in range(n_classes):
        for i in range(k):
            order[c * k + i] = c if (fi and i == 0) else n_classes * fi + c * (k - fi) + i - fi
    P = np.zeros((size, size))
    P[order, np.arange(size)] = 1.0
    if not centered:
        return P @ np.kron(np.eye(n_classes), T) @ P.T
    return (
        center_intercepts(n_classes, k - fi, fit_intercept)
        @ P
        @ np.kron(np.eye(n_classes), T)
        @ P.T
    )


def estimator_coefficients(estimator) -> np.ndarray:
    """A fitted multinomial ``LogisticRegression``'s ``[intercept (K, centered), coef_ (class by class)]``
    (intercepts only when fitted)."""
    coef = np.asarray(estimator.coef_, dtype=float)
    if not estimator.fit_intercept:
        return coef.ravel()
    intercept = np.asarray(estimator.intercept_, dtype=float)
    return np.concatenate([intercept - intercept.mean(), coef.ravel()])


def multinomial_reference(
    X, y, *, logistic_C, l1_ratio=0.0, sample_weight=None, fit_intercept=True
) -> np.ndarray | None:
    """``LogisticRegression(solver="newton-cholesky", tol=1e-12)`` on the class indices, as
    :func:`estimator_coefficients` lays it out; None with an l1 part (saga is no reference: the MAP is
    certified by :func:`multinomial_certificate` instead)."""
    if l1_ratio > 0:
        return None
    fit = LogisticRegression(
        C=logistic_C,
        solver="newton-cholesky",
        tol=1e-12,
        max_iter=10_000,
        fit_intercept=fit_intercept,
    ).fit(X, np.asarray(y).astype(int), sample_weight=sample_weight)
    return estimator_coefficients(fit)


def multinomial_objective(coef, Z, y, weights, *, logistic_C, l1_ratio, fit_intercept) -> float:
    """scikit-learn's multinomial objective at ``coef`` (``[intercept, beta]``), in NumPy."""
    weights = np.ones(len(y)) if weights is None else weights
    intercept, W = split(coef, Z.shape[1], fit_intercept)
    eta = Z @ W.T + intercept
    rows = np.arange(len(y))
    loss = np.sum(weights * (scipy.special.logsumexp(eta, axis=1) - eta[rows, np.asarray(y, int)]))
    penalty = l1_ratio * np.abs(W).sum() + 0.5 * (1.0 - l1_ratio) * np.sum(W**2)
    return float(logistic_C * loss + penalty)


def multinomial_kkt_violation(coef, Z, y, weights, *, logistic_C, l1_ratio, fit_intercept):
    """How far ``coef`` is from minimizing the multinomial objective, in units of ``l1_ratio``
    (:class:`models.registry.Subgradient`'s ``(violation, rounding)``).

    The smooth part's gradient is ``G = C R^T Z + (1 - l1_ratio) W`` with ``R_ik = w_i (softmax_ik -
    [y_i = k])`` (K x p) and ``C sum_i R_ik`` for the intercepts; the conditions are those of the binary
    :func:`models.registry.logistic_kkt_violation` entry by entry: ``G_kj = -l1_ratio sign(W_kj)`` where
    ``W_kj != 0``, ``|G_kj| <= l1_ratio`` where it is 0, and a zero intercept gradient.
    """
    weights = np.ones(len(y)) if weights is None else weights
    intercept, W = split(coef, Z.shape[1], fit_intercept)
    eta = Z @ W.T + intercept
    onehot = np.eye(W.shape[0])[np.asarray(y, int)]
    residual = weights[:, None] * (scipy.special.softmax(eta, axis=1) - onehot)
    grad = logistic_C * residual.T @ Z + (1.0 - l1_ratio) * W
    terms = logistic_C * np.abs(residual).T @ np.abs(Z) + (1.0 - l1_ratio) * np.abs(W)
    violation = np.where(
        W != 0.0, np.abs(grad + l1_ratio * np.sign(W)), np.maximum(np.abs(grad) - l1_ratio, 0.0)
    ).ravel()
    if fit_intercept:
        violation = np.append(violation, np.abs(logistic_C * residual.sum(axis=0)))
        terms = np.append(terms, logistic_C * np.abs(residual).sum(axis=0))
    rounding = 1000.0 * np.finfo(float).eps * float(np.max(terms))
    return float(violation.max() / l1_ratio), rounding / l1_ratio


def multinomial_certificate(coef, estimator_coef, Z, y, weights, fit_intercept, penalty) -> dict:
    """Checks of an l1 multinomial MAP without a reference fit: its subgradient conditions, and an objective
    no worse than the estimator's (saga's) own answer."""
    objective = {"Z": Z, "y": y, "weights": weights, "fit_intercept": fit_intercept, **penalty}
    violation, rounding = multinomial_kkt_violation(coef, **objective)
    at_map = multinomial_objective(coef, **objective)
    at_estimator = multinomial_objective(estimator_coef, **objective)
    return {
        # As the binary certificate: 1e-6, or the rounding level of the gradient where its terms are large.
        "map_kkt_violation": (violation, "<=", max(1e-6, rounding)),
        "map_objective_minus_estimator": ((at_map - at_estimator) / abs(at_estimator), "<=", 1e-12),
    }
