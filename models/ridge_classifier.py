"""The Bayesian twin of a one-vs-rest ``RidgeClassifier``: 3 or more classes.

scikit-learn fits ``RidgeClassifier`` on the codes of ``LabelBinarizer(pos_label=1, neg_label=-1)``: with ``K >= 3``
classes, column ``k`` of the ``n x K`` code matrix is +1 on the rows of class ``k`` and -1 elsewhere, and the fit is
a multi-output Ridge, one penalized least-squares problem per column with one shared ``alpha``
(``sklearn/linear_model/_ridge.py``, ``_RidgeClassifierMixin._prepare_data``); ``coef_`` is ``K x p``,
``intercept_`` has ``K`` entries (each class's own: unlike the multinomial's, they are identified and not
centered), and ``predict`` is the class with the largest decision function.

Its twin, :func:`one_vs_rest_regression`, is ``K`` independent linear twins (:mod:`models.linear`) on the ``K``
code columns: for class ``k``, ``codes_ik ~ N(intercept_k + x_i beta_k, sigma_k**2 / w_i)``, a flat intercept,
``beta_k ~ N(0, sigma_k**2 / alpha)`` and Jeffreys' prior ``1 / sigma_k**2``: a prior SD
``tau_k = sigma_k / sqrt(alpha)`` per class, so that ``alpha = sigma_k**2 / tau_k**2`` in every class, as the
binary RidgeClassifier twin has it. The joint density factorizes by class, so its mode in the coefficients is
``K`` Ridge fits at that ``alpha`` (for any ``sigma_k``: the conjugate prior's mode does not depend on them), and
the posterior of class ``k`` is the closed-form Student-t of :func:`models.exact.linear_posterior` on its codes
(:func:`one_vs_rest_posterior`).

The likelihood is misspecified twice over: the codes are labels, not Gaussian, and a row's ``K`` codes are not
independent (exactly one of them is +1). The posterior is that of the ``K`` decision functions, not of class
probabilities.

The coefficient vector everywhere here is the multinomial twin's layout (:mod:`models.multinomial`):
``[intercept (K), beta (K * p, class by class)]``.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from sklearn.linear_model import Ridge

from models.data import check_number, validate_arrays
from models.exact import NOISE_PRIOR, LinearPosterior, linear_posterior, noise_prior_terms
from models.multinomial import validate_classes

__all__ = [
    "signed_codes",
    "class_coefficient_index",
    "one_vs_rest_regression",
    "ClassPosteriors",
    "one_vs_rest_posterior",
    "class_layout",
    "estimator_coefficients",
    "one_vs_rest_reference",
]


def signed_codes(y) -> np.ndarray:
    """Class indices ``0, ..., K - 1`` (each present, ``K >= 3``) as the ``n x K`` matrix of codes +1 (the row's
    class) and -1 (the others), ``LabelBinarizer(pos_label=1, neg_label=-1)``'s."""
    y, _, n_classes = validate_classes(y)
    return np.where(y[:, None] == np.arange(n_classes), 1.0, -1.0)


def class_coefficient_index(n_classes: int, p: int, fit_intercept: bool) -> np.ndarray:
    """Where each class's coefficients (intercept first) sit in ``[intercept (K), beta (K * p)]``: row ``k`` of
    the ``K x (p + fit_intercept)`` result indexes class ``k``'s."""
    fi = int(fit_intercept)
    weights = fi * n_classes + p * np.arange(n_classes)[:, None] + np.arange(p)
    if not fit_intercept:
        return weights
    return np.column_stack([np.arange(n_classes), weights])


def one_vs_rest_regression(
    X,
    y,
    *,
    ridge_alpha: float,
    noise_sigma: float | None = None,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    class_names=None,
) -> pm.Model:
    """Build the twin of a one-vs-rest ``RidgeClassifier(alpha=ridge_alpha)``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
        Class indices ``0, ..., K - 1`` (``classes_`` order), ``K >= 3``, each present; the model observes
        their codes (:func:`signed_codes`).
    ridge_alpha : float
        RidgeClassifier's penalty strength (scikit-learn's convention, no 1/n), shared by the classes; 0 is
        a flat prior on every ``beta_k``.
    noise_sigma : float or None
        A known noise SD for every class, or None: one ``sigma_k**2`` per class under Jeffreys' prior, the
        prior of ``beta_k`` scaling with ``sigma_k`` (Student-t posteriors).
    sample_weight : array_like or None
        Row ``i`` has noise variance ``sigma_k**2 / w_i`` in every class, as in ``RidgeClassifier.fit``.
    fit_intercept : bool
        One flat-prior intercept per class.
    feature_names, class_names : sequence of str or None
        Coordinates of the ``feature`` and ``class`` dims; ``class_feature`` is ``feature[class]``.

    Returns
    -------
    pm.Model
        Free ``beta`` (dim ``class_feature``), ``intercept`` (dim ``class``, when fitted) and ``sigma_squared``
        (dim ``class``, unknown noise); observed ``y`` (dims ``obs_id``, ``class``); ``pm.Data`` ``X``,
        ``y_observed`` (the codes), ``sample_weight`` and ``ridge_alpha`` (when > 0).
    """
    check_number("ridge_alpha", ridge_alpha)
    X = np.asarray(X, dtype=float)
    validate_arrays(X, np.asarray(y, dtype=float), name="data")
    codes = signed_codes(y)
    n, p = X.shape
    K = codes.shape[1]
    weights = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    class_names = (
        [str(k) for k in range(K)] if class_names is None else [str(c) for c in class_names]
    )
    coords = {
        "class": class_names,
        "feature": feature_names,
        "class_feature": [f"{f}[{c}]" for c in class_names for f in feature_names],
        "obs_id": np.arange(n),
    }
    with pm.Model(coords=coords) as model:
        if noise_sigma is None:
            # Jeffreys' prior on each class's noise variance (models.exact.NOISE_PRIOR); the codes are
            # +-1 whatever the data's units, so PyMC's starting value 1 is on the right scale.
            shape, rate = noise_prior_terms(NOISE_PRIOR)
            sigma_squared = pm.HalfFlat("sigma_squared", dims="class")
            pm.Potential(
                "noise_prior",
                pt.sum(-(shape + 1.0) * pt.log(sigma_squared) - rate / sigma_squared),
            )
            sigma = pm.Deterministic("sigma", pt.sqrt(sigma_squared), dims="class")
        else:
            sigma = pt.as_tensor(np.full(K, float(noise_sigma)))
        if ridge_alpha == 0:
            beta = pm.Flat("beta", dims="class_feature")
        else:
            ridge_alpha_ = pm.Data("ridge_alpha", float(ridge_alpha))
            prior_sigma = pt.repeat(sigma / pt.sqrt(ridge_alpha_), p)  # class by class
            beta = pm.Normal("beta", 0.0, prior_sigma, dims="class_feature")
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        y_ = pm.Data("y_observed", codes, dims=("obs_id", "class"))
        sample_weight_ = pm.Data("sample_weight", weights, dims="obs_id")
        mu = pt.dot(X_, beta.reshape((K, p)).T)
        if fit_intercept:
            mu = mu + pm.Flat("intercept", dims="class")
        noise = sigma[None, :] / pt.sqrt(sample_weight_)[:, None]
        pm.Normal("y", mu=mu, sigma=noise, observed=y_, dims=("obs_id", "class"))
    return model


class ClassPosteriors(LinearPosterior):
    """The ``K`` classes' exact posteriors (independent of each other) as one, in the layout
    ``[intercept (K), beta (K * p)]``.

    ``noise_shape`` and ``noise_rate`` hold one value per class; the columns of ``scale_factor`` are the
    classes' in order, the same number each. Every class has the same degrees of freedom (the same rows and
    coefficients), so the marginals, quantiles and covariance (block diagonal) are those of
    :class:`models.exact.LinearPosterior`. Only the draws differ: the classes are independent Student-t's, one
    chi-square per class and draw, not one multivariate Student-t with a chi-square shared by all.
    """

    def draws(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent posterior draws, shape ``(size, n_coef)``."""
        z = rng.standard_normal((size, self.scale_factor.shape[1]))
        if not np.isinf(self.df):
            n_classes = len(self.noise_shape)
            chi_square = rng.chisquare(self.df, size=(size, n_classes))
            columns_per_class = self.scale_factor.shape[1] // n_classes
            z /= np.sqrt(np.repeat(chi_square, columns_per_class, axis=1) / self.df)
        return self.mean + z @ self.scale_factor.T


def one_vs_rest_posterior(
    X,
    y,
    *,
    ridge_alpha: float,
    noise_sigma: float | None = None,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
) -> ClassPosteriors:
    """The exact posterior of :func:`one_vs_rest_regression`: :func:`models.exact.linear_posterior` on each
    class's codes, laid out ``[intercept (K), beta (K * p)]`` (names ``intercept[k]``, ``feature[k]`` with
    ``k`` the class index)."""
    X = np.asarray(X, dtype=float)
    codes = signed_codes(y)
    p, K = X.shape[1], codes.shape[1]
    per_class = [
        linear_posterior(
            X,
            codes[:, k],
            ridge_alpha=ridge_alpha,
            noise_sigma=noise_sigma,
            sample_weight=sample_weight,
            fit_intercept=fit_intercept,
            feature_names=feature_names,
        )
        for k in range(K)
    ]
    index = class_coefficient_index(K, p, fit_intercept)
    size = index.size
    mean, factor = np.empty(size), np.zeros((size, size))
    block = index.shape[1]
    for k, posterior in enumerate(per_class):
        mean[index[k]] = posterior.mean
        factor[index[k], k * block : (k + 1) * block] = posterior.scale_factor
    names = np.empty(size, dtype=object)
    names[index] = [[f"{name}[{k}]" for name in posterior.names] for k in range(K)]
    if noise_sigma is not None:
        return ClassPosteriors(tuple(names), mean, factor, np.inf)
    return ClassPosteriors(
        tuple(names),
        mean,
        factor,
        per_class[0].df,  # the same for every class: the same rows and coefficients
        np.array([posterior.noise_shape for posterior in per_class]),
        np.array([posterior.noise_rate for posterior in per_class]),
    )


def class_layout(intercept, coef, fit_intercept: bool) -> np.ndarray:
    """``[intercept (K), coef (K x p, class by class)]`` of a fitted multi-output linear model (the
    intercepts only when fitted)."""
    coef = np.asarray(coef, dtype=float)
    if not fit_intercept:
        return coef.ravel()
    return np.concatenate([np.broadcast_to(intercept, coef.shape[:1]), coef.ravel()])


def estimator_coefficients(estimator) -> np.ndarray:
    """A fitted one-vs-rest ``RidgeClassifier``'s coefficients in the twin's layout."""
    return class_layout(estimator.intercept_, estimator.coef_, bool(estimator.fit_intercept))


def one_vs_rest_reference(
    Z, y, *, ridge_alpha, sample_weight=None, fit_intercept=True
) -> np.ndarray:
    """``Ridge(solver="svd")`` on the code matrix (exact linear algebra, every class at once), in the twin's
    layout."""
    fit = Ridge(alpha=ridge_alpha, solver="svd", fit_intercept=fit_intercept)
    fit.fit(Z, signed_codes(y), sample_weight=sample_weight)
    return class_layout(fit.intercept_, fit.coef_, fit_intercept)
