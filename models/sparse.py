"""Sparse twins: the Laplace twin of the Lasso, the elastic-net twin, a regularized horseshoe, and their MAP.

* :func:`laplace_regression` is ``y_i ~ N(intercept + x_i beta, sigma**2 / w_i)`` with a flat intercept and
  ``beta_j ~ Laplace(0, b)``, ``b = sigma**2 / (n alpha)`` (:func:`models.penalties.lasso_laplace_scale`): its MAP
  is ``Lasso(alpha)``.
  :func:`laplace_twin` builds it for a :class:`models.data.Dataset` and :func:`lasso_path_data` gives its
  ``pm.Data`` along a path of alphas.
* :func:`elasticnet_regression` replaces the prior by the density proportional to
  ``exp(-|beta_j| / b - beta_j**2 / (2 tau**2))`` (:func:`models.penalties.elasticnet_prior_scales`): its MAP is
  ``ElasticNet(alpha, l1_ratio)``.
* :func:`regularized_horseshoe_regression` is the contrast: a prior that puts real mass near zero
  (Piironen & Vehtari 2017), non-centered.
* :class:`SparseMAP` is the MAP of the first two, with exact zeros: an active-set Newton method on the twin's own
  negative log posterior, split into the model's smooth part (a :class:`models.fit.CompiledDensity`) and its L1
  term; :func:`warm_started_path` walks
  it along a path of prior scales, and :func:`laplace_posteriors` samples the Laplace twin along one.
* :func:`lasso_alpha_max` is where a Lasso path starts (all zeros), :func:`lasso_path_alphas` the path from
  there; :func:`sparse_truth` simulates a sparse regression, :func:`near_zero_threshold` says how close to zero
  a coefficient counts as zero, and :func:`support_recovery` scores a selection of features against its
  support.

The noise scale is known in all three (the Lasso's MAP is the posterior mode for a fixed ``sigma`` only). The
prior scales are ``pm.Data`` (``laplace_b``, and ``normal_sigma`` for the elastic net), so one compiled model
serves a whole path: ``pm.set_data(lasso_prior_data(...))`` or ``sample_nuts(compiled, **lasso_prior_data(...))``.

Sample weights follow scikit-learn's Lasso and ElasticNet, which rescale them to sum to ``n`` before fitting
(``sklearn/linear_model/_coordinate_descent.py``, ``ElasticNet.fit``: ``sample_weight * (n_samples /
np.sum(sample_weight))``): the builders apply the same rescaling, so that ``n_samples`` in the mappings is the
number of rows with or without weights.
"""

from typing import NamedTuple

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import scipy.linalg

from models.data import DataError, Dataset, check_number
from models.fit import COMPILE_MODE, CompiledDensity, compile_nuts, sample_nuts
from models.penalties import elasticnet_prior_scales, lasso_laplace_scale

__all__ = [
    "lasso_prior_data",
    "elasticnet_prior_data",
    "lasso_alpha_max",
    "lasso_path_alphas",
    "near_zero_threshold",
    "prior_scale",
    "l1_prior",
    "laplace_regression",
    "laplace_twin",
    "lasso_path_data",
    "laplace_normal_logp",
    "elasticnet_regression",
    "horseshoe_global_scale",
    "regularized_horseshoe_regression",
    "Optimality",
    "SparseMAP",
    "warm_started_path",
    "laplace_posteriors",
    "HORSESHOE_TARGET_ACCEPT",
    "sparse_truth",
    "SupportRecovery",
    "support_recovery",
]


def lasso_prior_data(*, lasso_alpha, noise_sigma, n_samples) -> dict[str, np.ndarray]:
    """``pm.Data`` values of :func:`laplace_regression` for ``Lasso(alpha=lasso_alpha)``."""
    b = lasso_laplace_scale(lasso_alpha=lasso_alpha, noise_sigma=noise_sigma, n_samples=n_samples)
    return {"laplace_b": np.asarray(b, dtype=float)}


def elasticnet_prior_data(*, alpha, l1_ratio, noise_sigma, n_samples) -> dict[str, np.ndarray]:
    """``pm.Data`` values of :func:`elasticnet_regression` for ``ElasticNet(alpha, l1_ratio)``."""
    check_number(
        "l1_ratio",
        l1_ratio,
        high=1.0,
        inclusive=False,
        reason="use the Laplace or Ridge twin at the ends",
    )
    b, tau = elasticnet_prior_scales(
        alpha=alpha, l1_ratio=l1_ratio, noise_sigma=noise_sigma, n_samples=n_samples
    )
    return {"laplace_b": np.asarray(b, dtype=float), "normal_sigma": np.asarray(tau, dtype=float)}


def lasso_alpha_max(X, y, *, sample_weight=None, fit_intercept=True) -> float:
    """The smallest ``Lasso`` alpha whose fit is all zeros: ``max_j |x_j^T W (y - ybar)| / n``.

    Columns and response centered (weighted) when there is an intercept; weights rescaled to sum to ``n``, as
    scikit-learn does (see the module docstring).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    n = len(y)
    w = None if sample_weight is None else _scikit_weights(sample_weight, n)
    if fit_intercept:
        X = X - np.average(X, axis=0, weights=w)
        y = y - np.average(y, weights=w)
    return float(np.max(np.abs(X.T @ (y if w is None else w * y))) / n)


def lasso_path_alphas(X, y, *, n_path: int, decades: float, extra=()) -> np.ndarray:
    """A Lasso path, largest alpha first: ``n_path`` points log-spaced from just above
    :func:`lasso_alpha_max` (an all-zero fit) down ``decades`` decades, plus the ``extra`` alphas."""
    fractions = np.logspace(0.05, -decades, n_path)
    return np.array(sorted({*(lasso_alpha_max(X, y) * fractions), *extra}, reverse=True))


def near_zero_threshold(X, noise_sigma: float, standard_errors: float) -> np.ndarray:
    """``standard_errors`` standard errors of each coefficient in an orthogonal design,
    ``noise_sigma / ||x_j - mean(x_j)||``: the half-width of "near zero" for coefficient ``j``."""
    norms = np.linalg.norm(X - X.mean(axis=0), axis=0)
    return standard_errors * noise_sigma / norms


def _scikit_weights(sample_weight, n):
    """Sample weights rescaled to sum to ``n``, as scikit-learn's Lasso and ElasticNet do."""
    if sample_weight is None:
        return np.ones(n)
    sample_weight = np.asarray(sample_weight, dtype=float)
    return sample_weight * (n / sample_weight.sum())


def _regression_model(
    X, y, *, noise_sigma, sample_weight, fit_intercept, feature_names, prior, feature_scale=None
):
    """The shared skeleton: data containers, ``beta = prior(scale)``, flat intercept, Gaussian likelihood.

    ``scale`` multiplies the prior's scales: 1, or the ``pm.Data`` ``feature_scale`` when the columns of ``X``
    are the estimator's features divided by it (standardized coordinates, in which ``beta_j`` is
    ``feature_scale_j`` times the estimator's coefficient: the same posterior).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    check_number("noise_sigma", noise_sigma, inclusive=False)
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    with pm.Model(coords={"feature": feature_names, "obs_id": np.arange(n)}) as model:
        X_ = pm.Data("X", X, dims=("obs_id", "feature"))
        y_ = pm.Data("y_observed", y, dims="obs_id")
        sample_weight_ = pm.Data("sample_weight", _scikit_weights(sample_weight, n), dims="obs_id")
        beta = prior(prior_scale(feature_scale, p))
        mu = X_ @ beta
        if fit_intercept:
            mu = pm.Flat("intercept") + mu
        sigma = float(noise_sigma) / pt.sqrt(sample_weight_)
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs_id")
    return model


def prior_scale(feature_scale, p: int):
    """Inside a model: the factor of every prior scale, 1 or the ``pm.Data`` ``feature_scale`` (dim
    ``feature``) of standardized coordinates.

    Raises
    ------
    DataError
        ``feature_scale`` is not ``p`` finite positive values.
    """
    if feature_scale is None:
        return 1.0
    feature_scale = np.asarray(feature_scale, dtype=float)
    if feature_scale.shape != (p,) or not np.all(np.isfinite(feature_scale) & (feature_scale > 0)):
        raise DataError(f"feature_scale needs {p} finite positive values")
    return pm.Data("feature_scale", feature_scale, dims="feature")


def l1_prior(data: dict, scale=1.0):
    """Inside a model: ``beta`` with a Laplace prior (``pm.Data`` ``laplace_b``) or, when ``data`` also has
    ``normal_sigma``, the elastic-net prior :func:`laplace_normal_logp`; both scales times ``scale``."""
    laplace_b = pm.Data("laplace_b", data["laplace_b"]) * scale
    if "normal_sigma" not in data:
        return pm.Laplace("beta", mu=0.0, b=laplace_b, dims="feature")
    normal_sigma = pm.Data("normal_sigma", data["normal_sigma"]) * scale
    return pm.CustomDist("beta", laplace_b, normal_sigma, logp=laplace_normal_logp, dims="feature")


def laplace_regression(
    X,
    y,
    *,
    lasso_alpha: float,
    noise_sigma: float,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    feature_scale=None,
) -> pm.Model:
    """Build the Laplace twin of ``Lasso(alpha=lasso_alpha)``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    lasso_alpha : float
        The Lasso's penalty strength (scikit-learn's convention, with 1/(2n) on the squared error), > 0.
    noise_sigma : float
        Known noise standard deviation (for unit sample weight).
    sample_weight : array_like or None
        Row weights, rescaled to sum to ``n`` as in ``Lasso.fit(..., sample_weight=w)``.
    fit_intercept : bool
        Add an intercept with a flat (unpenalized) prior.
    feature_names : sequence of str or None
    feature_scale : array_like or None
        Standardized coordinates: the columns of ``X`` are the estimator's features divided by
        ``feature_scale`` and the prior scales are multiplied by it (``pm.Data`` ``feature_scale``).

    Returns
    -------
    pm.Model
        Free variables ``intercept`` (when fitted) and ``beta`` (dim ``feature``); ``pm.Data`` ``laplace_b`` (the
        Laplace scale, see :func:`lasso_prior_data`), ``X``, ``y_observed``, ``sample_weight``.
    """
    check_number("lasso_alpha", lasso_alpha, inclusive=False)
    n = np.shape(X)[0]
    data = lasso_prior_data(lasso_alpha=lasso_alpha, noise_sigma=noise_sigma, n_samples=n)

    return _regression_model(
        X,
        y,
        noise_sigma=noise_sigma,
        sample_weight=sample_weight,
        fit_intercept=fit_intercept,
        feature_names=feature_names,
        prior=lambda scale: l1_prior(data, scale),
        feature_scale=feature_scale,
    )


def laplace_twin(ds: Dataset, lasso_alpha: float) -> pm.Model:
    """:func:`laplace_regression` of a data set: ``Lasso(alpha=lasso_alpha)``'s twin with the data set's known
    (or plug-in) noise, weights, intercept and feature names. Refit at other alphas with
    :func:`lasso_path_data`."""
    return laplace_regression(
        ds.X,
        ds.y,
        lasso_alpha=lasso_alpha,
        noise_sigma=ds.noise_sigma,
        sample_weight=ds.sample_weight,
        fit_intercept=ds.fit_intercept,
        feature_names=ds.feature_names,
    )


def lasso_path_data(ds: Dataset, alphas) -> list[dict[str, np.ndarray]]:
    """The ``pm.Data`` of :func:`laplace_twin` at each of ``alphas``, for :func:`warm_started_path`,
    ``pm.set_data`` or :func:`models.fit.sample_nuts`."""
    n = len(ds.y)
    return [
        lasso_prior_data(lasso_alpha=alpha, noise_sigma=ds.noise_sigma, n_samples=n)
        for alpha in alphas
    ]


def laplace_normal_logp(value, laplace_b, normal_sigma):
    """Log-density of ``exp(-|w| / b - w**2 / (2 tau**2)) / Z``.

    ``Z = 2 int_0^inf exp(-w / b - w**2 / (2 tau**2)) dw = tau sqrt(2 pi) erfcx(tau / (sqrt(2) b))``, written
    with the scaled complementary error function so that it does not overflow for ``tau >> b``.
    """
    # A Python float such as 3.0 would become a float32 constant (PyTensor's autocasting): log Z off by 1e-8.
    laplace_b = pt.cast(laplace_b, "float64")
    normal_sigma = pt.cast(normal_sigma, "float64")
    log_z = (
        pt.log(normal_sigma)
        + 0.5 * np.log(2.0 * np.pi)
        + pt.log(pt.erfcx(normal_sigma / (np.sqrt(2.0) * laplace_b)))
    )
    return -pt.abs(value) / laplace_b - value**2 / (2.0 * normal_sigma**2) - log_z


def elasticnet_regression(
    X,
    y,
    *,
    alpha: float,
    l1_ratio: float,
    noise_sigma: float,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
    feature_scale=None,
) -> pm.Model:
    """Build the twin of ``ElasticNet(alpha, l1_ratio)``: a Laplace times a Normal factor on each coefficient.

    The prior of ``beta_j`` is proportional to ``exp(-|beta_j| / b - beta_j**2 / (2 tau**2))``, normalized in
    closed form, with ``(b, tau)`` from :func:`models.penalties.elasticnet_prior_scales` (``pm.Data``
    ``laplace_b`` and ``normal_sigma``; see :func:`elasticnet_prior_data`). ``0 < l1_ratio < 1``; at the ends
    use :func:`laplace_regression` or :func:`models.linear.linear_regression`. Other parameters as in
    :func:`laplace_regression`.
    """
    check_number("alpha", alpha, inclusive=False)
    n = np.shape(X)[0]
    data = elasticnet_prior_data(
        alpha=alpha, l1_ratio=l1_ratio, noise_sigma=noise_sigma, n_samples=n
    )

    return _regression_model(
        X,
        y,
        noise_sigma=noise_sigma,
        sample_weight=sample_weight,
        fit_intercept=fit_intercept,
        feature_names=feature_names,
        prior=lambda scale: l1_prior(data, scale),
        feature_scale=feature_scale,
    )


def horseshoe_global_scale(
    *, expected_nonzero: float, n_features: int, noise_sigma: float, n_samples: int
):
    """Piironen & Vehtari's (2017) reference global scale ``p0 / (p - p0) * sigma / sqrt(n)``."""
    return expected_nonzero / (n_features - expected_nonzero) * noise_sigma / np.sqrt(n_samples)


def regularized_horseshoe_regression(
    X,
    y,
    *,
    noise_sigma: float,
    expected_nonzero: float,
    slab_scale: float = 2.0,
    slab_df: float = 4.0,
    sample_weight=None,
    fit_intercept: bool = True,
    feature_names=None,
) -> pm.Model:
    """Linear regression with the regularized horseshoe prior (Piironen & Vehtari 2017), non-centered.

    On standardized coefficients ``theta_j = beta_j sd(x_j)``: ``theta_j = z_j tau lambda_tilde_j`` with
    ``z_j ~ N(0, 1)``, ``lambda_j ~ HalfCauchy(1)``, ``tau = tau0 * tau_raw``, ``tau_raw ~ HalfCauchy(1)``,
    ``tau0`` from :func:`horseshoe_global_scale`, ``c**2 = slab_scale**2 * c_aux``,
    ``c_aux ~ InverseGamma(slab_df / 2, slab_df / 2)`` and
    ``lambda_tilde_j**2 = c**2 lambda_j**2 / (c**2 + tau**2 lambda_j**2)``. Dividing by the column standard
    deviation puts the prior on the scale of standardized features whatever the columns' units.

    The half-Cauchy local scale is written ``lambda_j = a_j sqrt(g_j)`` with ``a_j ~ HalfNormal(1)`` and
    ``g_j ~ InverseGamma(1/2, 1/2)`` (the same distribution, with lighter-tailed pieces for the sampler).

    Parameters
    ----------
    noise_sigma : float
        Known noise standard deviation.
    expected_nonzero : float
        Prior guess ``p0`` of the number of relevant features (sets ``tau0``).
    slab_scale, slab_df : float
        Scale and degrees of freedom of the Student-t slab that regularizes the largest coefficients.

    Returns
    -------
    pm.Model
        Free ``intercept``, ``z``, ``local_a``, ``local_g``, ``tau_raw``, ``c_aux``; deterministic ``beta``
        (dim ``feature``), ``tau``, ``shrinkage`` (``kappa_j = 1 / (1 + n sigma**-2 tau**2 lambda_tilde_j**2)``
        on the standardized scale, near 1 for a coefficient shrunk to zero).
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    if not 0 < expected_nonzero < p:
        raise DataError(f"expected_nonzero must be in (0, {p}), got {expected_nonzero}")
    scale = X.std(axis=0)
    if np.any(scale == 0):
        raise DataError("a constant feature column has no standardized scale")
    tau0 = horseshoe_global_scale(
        expected_nonzero=expected_nonzero, n_features=p, noise_sigma=noise_sigma, n_samples=n
    )

    def prior(_):
        z = pm.Normal("z", 0.0, 1.0, dims="feature")
        local_a = pm.HalfNormal("local_a", 1.0, dims="feature")
        local_g = pm.InverseGamma("local_g", 0.5, 0.5, dims="feature")
        lam = local_a * pt.sqrt(local_g)
        tau = pm.Deterministic("tau", tau0 * pm.HalfCauchy("tau_raw", 1.0))
        c_squared = slab_scale**2 * pm.InverseGamma("c_aux", slab_df / 2.0, slab_df / 2.0)
        lam_tilde = pt.sqrt(c_squared * lam**2 / (c_squared + tau**2 * lam**2))
        pm.Deterministic(
            "shrinkage", 1.0 / (1.0 + n * (tau * lam_tilde) ** 2 / noise_sigma**2), dims="feature"
        )
        return pm.Deterministic("beta", z * tau * lam_tilde / scale, dims="feature")

    return _regression_model(
        X,
        y,
        noise_sigma=noise_sigma,
        sample_weight=sample_weight,
        fit_intercept=fit_intercept,
        feature_names=feature_names,
        prior=prior,
    )


class Optimality(NamedTuple):
    """Subgradient (KKT) conditions at a point, in units of the L1 weight ``1 / b``.

    ``nonzero``: ``max |g_j + sign(beta_j) / b|`` over non-zero coefficients and ``|g|`` over the unpenalized
    ones; ``zero``: ``max(|g_j| - 1 / b, 0)`` over exact zeros (``g`` is the gradient of the smooth part of
    the negative log posterior). Both are 0 at the exact MAP.
    """

    nonzero: float
    zero: float
    iterations: int


class SparseMAP:
    """The MAP of a twin with a Laplace (L1) term, with exact zeros: an active-set Newton method.

    The negative log posterior is split into the model's smooth part and the L1 term,
    ``-logp(theta) = f(theta) + sum_j |beta_j| / b``: ``f`` is the model's own ``-logp`` (without Jacobian
    terms, as ``find_MAP``) plus ``sum_j |beta_j| / b``, built symbolically from the model and compiled with
    its exact gradient and Hessian as a :class:`models.fit.CompiledDensity` (``b`` is the model's ``pm.Data``,
    so ``pm.set_data`` changes it without recompiling). For the Gaussian twins with known noise ``f`` is quadratic.

    The active-set method (Osborne, Presnell & Turlach 2000, as in the feature-sign search of Lee et al. 2007)
    keeps a set of non-zero coefficients with fixed signs (plus the unpenalized intercept); on it the objective
    is smooth, ``f + s^T beta / b``, and a Newton step with the exact Hessian restricted to the set solves it
    exactly when ``f`` is quadratic, as for the Gaussian twins with known noise here. For a non-quadratic ``f``
    (the l1 logistic twin) the Newton steps on a set repeat until it is optimal, each with a backtracking
    (Armijo) line search on the objective, so that every step decreases it. A coefficient whose step would
    cross zero stops the step at the crossing and is set to exactly 0 and removed; when the set is optimal, the
    zero coefficient that violates ``|g_j| <= 1 / b`` most enters with the sign ``-sign(g_j)``. It ends when
    no coefficient violates the subgradient conditions beyond rounding; :class:`Optimality` reports how far
    from them the result is.

    Parameters
    ----------
    model : pm.Model
        With free variables ``beta`` (the L1-penalized one) and optionally unpenalized ones (``intercept``),
        none of them transformed.
    penalized : str
        Name of the L1-penalized variable.
    laplace_scale : str
        Name of the ``pm.Data`` holding the Laplace scale ``b``.
    """

    def __init__(
        self, model: pm.Model, *, penalized: str = "beta", laplace_scale: str = "laplace_b"
    ):
        self.model = model
        if any(
            model.rvs_to_transforms[model.values_to_rvs[v]] is not None for v in model.value_vars
        ):
            raise ValueError("SparseMAP needs untransformed free variables")
        if "feature_scale" in model.named_vars:
            raise ValueError(
                "SparseMAP needs one Laplace scale for all coefficients (no feature_scale)"
            )
        beta = model.rvs_to_values[model[penalized]]
        laplace_b = model[laplace_scale]
        smooth = model.logp(jacobian=False) + pt.sum(pt.abs(beta)) / laplace_b
        # The C backend (COMPILE_MODE) compiles a new model (another shape) in about 1.5-4 s against 10-17 s
        # with numba; at these sizes a fit takes milliseconds.
        self.compiled = CompiledDensity(model, density_graph=-smooth)
        self.compiled.compile("value_gradient_hessian", "value", "named_values")
        self._weight = pytensor.function([], 1.0 / laplace_b, mode=COMPILE_MODE)
        self._penalized = np.zeros(self.compiled.size, dtype=bool)
        self._penalized[self.compiled.slices[beta.name]] = True

    def ravel(self, values: dict) -> np.ndarray:
        """The raveled point of named values (``{"intercept": ..., "beta": ...}``), e.g. a scikit-learn fit."""
        return self.compiled.ravel(values)

    def objective(self, x) -> float:
        """Negative log posterior (without constants) at the raveled point ``x``."""
        return float(self.compiled.value(x) + self._weight() * np.abs(x[self._penalized]).sum())

    def optimality(self, x, iterations: int = 0) -> Optimality:
        """The subgradient conditions at ``x`` (see :class:`Optimality`)."""
        _, grad, _ = self.compiled.value_gradient_hessian(x)
        weight = float(self._weight())
        sign = np.where(self._penalized, np.sign(x), 0.0)
        zero = self._penalized & (x == 0.0)
        nonzero_violation = np.abs(grad + weight * sign)[~zero]
        zero_violation = np.maximum(np.abs(grad[zero]) - weight, 0.0)
        return Optimality(
            nonzero=float(nonzero_violation.max(initial=0.0) / weight),
            zero=float(zero_violation.max(initial=0.0) / weight),
            iterations=iterations,
        )

    def __call__(self, start=None, *, max_iterations: int | None = None) -> dict[str, np.ndarray]:
        """Find the MAP for the model's current data and ``laplace_b``.

        Parameters
        ----------
        start : ndarray or None
            Raveled starting point (its zeros and signs are the first active set); all zeros by default.
        max_iterations : int or None
            Cap on active-set iterations (``20 * (size + 10)`` by default).

        Returns
        -------
        dict
            Variable name -> value at the MAP; ``"_optimality"``: an :class:`Optimality`; ``"_x"``: the raveled
            point (a warm start for the next alpha).
        """
        x = (
            np.zeros(self.compiled.size) if start is None else np.asarray(start, dtype=float)
        ).copy()
        max_iterations = 20 * (x.size + 10) if max_iterations is None else max_iterations
        weight = float(self._weight())
        value, grad, hess = self.compiled.value_gradient_hessian(x)
        iterations = 0
        optimal_on_set = False
        while iterations < max_iterations:
            iterations += 1
            active = ~self._penalized | (x != 0.0)
            sign = np.where(self._penalized, np.sign(x), 0.0)
            entering = optimal_on_set
            if optimal_on_set:
                violation = np.where(active, -np.inf, np.abs(grad) - weight)
                j = int(np.argmax(violation))
                if not violation[j] > self._tolerance(grad, hess, x, weight):
                    break
                # With the set optimal, the entering coefficient moves in the direction of -g_j.
                active[j] = True
                sign[j] = -np.sign(grad[j])
            if not np.any(active):
                optimal_on_set = True
                continue
            current = x[active]
            restricted_grad = grad[active] + weight * sign[active]
            step, ray = self._newton_step(restricted_grad, hess[np.ix_(active, active)])
            # Stop at the first coefficient of the set that would cross zero; it leaves the set at exactly 0.
            # Along a ray (a singular Hessian: the objective is linear there) only a crossing stops the step.
            toward_zero = sign[active] * step < 0.0
            crossing = self._penalized[active] & (
                toward_zero if ray else sign[active] * (current + step) < 0.0
            )
            ratio = np.full(current.size, np.inf)
            ratio[crossing] = -current[crossing] / step[crossing]
            length = float(ratio.min()) if ray else min(1.0, float(ratio.min()))
            if not np.isfinite(length):
                raise FloatingPointError("the log posterior is unbounded along a ray: no MAP")
            full_length = length
            if not ray:
                length = self._line_search(x, value, active, step, restricted_grad @ step, length)
                if length == 0.0:
                    # No step decreases the objective beyond rounding: the set is as optimal as it gets.
                    # If the entering coefficient cannot move either, stop: Optimality reports how close.
                    if entering:
                        break
                    optimal_on_set = True
                    continue
            new = x.copy()
            new[active] = current + length * step
            new[np.flatnonzero(active)[ratio <= length]] = 0.0
            # No coefficient may change sign inside the set (rounding next to a crossing).
            flipped = self._penalized & (np.sign(new) * sign < 0.0)
            new[flipped] = 0.0
            value, grad, hess = self.compiled.value_gradient_hessian(new)
            optimal_on_set = not ray and length == full_length == 1.0 and not np.any(flipped)
            if optimal_on_set and not np.array_equal(new, x):
                # Another Newton step on the same set if rounding (or a non-quadratic f) left a residual.
                optimal_on_set = self._restricted_optimal(new, grad, hess, weight)
            x = new
        values = self.compiled.named_values(x)
        values["_optimality"] = self.optimality(x, iterations)
        values["_x"] = x
        return values

    def _line_search(self, x, value, active, step, slope, length, shrink=0.5, max_halvings=60):
        """The step length along ``step`` (from ``length``) that decreases the objective enough (Armijo).

        On the current orthant the objective is ``f + weight * sign^T beta``, with slope ``slope`` along
        ``step``. A quadratic ``f`` always accepts the Newton step (or the crossing before it); a
        non-quadratic ``f`` (the logistic likelihood) may need shorter steps far from the MAP. Differences at
        the rounding level of the objective count as no increase, so steps next to the MAP are accepted.
        """
        if not slope < 0.0:
            return 0.0  # not a descent direction (rounding at the optimum of the set)
        weight = float(self._weight())
        start = value + weight * np.abs(x[self._penalized]).sum()
        slack = 1e-13 * (abs(start) + 1.0)
        for _ in range(max_halvings):
            trial = x.copy()
            trial[active] = x[active] + length * step
            if self.objective(trial) <= start + 1e-4 * length * slope + slack:
                return length
            length *= shrink
        return 0.0

    def _tolerance(self, grad, hess, x, weight):
        """Rounding level of the subgradient conditions: the gradient's terms are about ``|H| |x|``."""
        scale = np.abs(hess) @ np.abs(x) + np.abs(grad) + weight
        return 1e-12 * float(np.max(scale))

    def _restricted_optimal(self, x, grad, hess, weight):
        active = ~self._penalized | (x != 0.0)
        sign = np.where(self._penalized, np.sign(x), 0.0)
        residual = np.abs(grad + weight * sign)[active]
        return bool(np.max(residual) <= self._tolerance(grad, hess, x, weight))

    @staticmethod
    def _newton_step(grad, hess):
        """``(-H^-1 g, False)`` with Jacobi scaling (the intercept's and the features' curvatures differ by
        ``n``); for a singular ``H`` (more active features than the data determine, e.g. ``p > n``) a
        direction ``(d, True)`` of its null space along which the restricted objective decreases."""
        scale = np.sqrt(np.diag(hess))
        scaled = hess / np.outer(scale, scale)
        try:
            return -scipy.linalg.solve(scaled, grad / scale, assume_a="pos") / scale, False
        except np.linalg.LinAlgError:
            _, vectors = np.linalg.eigh(scaled)
            direction = vectors[:, 0] / scale
            return (-direction if grad @ direction > 0.0 else direction), True


def warm_started_path(sparse_map: SparseMAP, settings):
    """The MAP at each setting of the model's ``pm.Data`` in turn, each started from the previous MAP.

    ``settings`` are dicts for ``pm.set_data`` (:func:`lasso_prior_data`, :func:`elasticnet_prior_data`). Each
    MAP is yielded as soon as it is found, while the model still holds its setting, so that the caller can fit
    or check other things on the same model there. The MAP is found to the method's tolerance, not to the bit:
    its last digits depend on where it started, so a run that must reproduce another's values walks the same
    path.
    """
    x = None
    for data in settings:
        pm.set_data(data, model=sparse_map.model)
        values = sparse_map(x)
        x = values["_x"]
        yield values


def laplace_posteriors(ds: Dataset, alphas, seeds, **sampling) -> dict:
    """NUTS under the Laplace twin of ``Lasso(alpha)`` (known noise) at each of ``alphas``, one seed each.

    One compiled model serves every alpha (the prior scale is ``pm.Data``); ``sampling`` is passed to
    :func:`models.fit.sample_nuts` (``draws``, ``tune``, ``chains``). Returns ``{alpha: DataTree}``.
    """
    compiled = compile_nuts(laplace_twin(ds, alphas[0]))
    posteriors = {}
    for alpha, seed, data in zip(alphas, seeds, lasso_path_data(ds, alphas), strict=True):
        posteriors[alpha] = sample_nuts(compiled, seed=int(seed), **sampling, **data)
    return posteriors


HORSESHOE_TARGET_ACCEPT = 0.99
"""NUTS target acceptance for the horseshoe: on the simulated sparse truth (n=100, p=40) nutpie's default 0.8 left
70-110 divergent transitions in 2 x 1,000 draws, 0.95 left 2-11 and 0.99 none (low-rank adaptation)."""


def sparse_truth(
    *, rng: np.random.Generator, n_samples: int = 100, n_features: int = 40, n_nonzero: int = 5
) -> Dataset:
    """A simulated sparse regression: ``n_nonzero`` of ``n_features`` coefficients are non-zero.

    Independent ``N(0, 1)`` features; non-zero coefficients of random sign and size uniform in [0.5, 2];
    intercept 2; noise sigma 1 (known).
    """
    X = rng.standard_normal((n_samples, n_features))
    true_coef = np.zeros(n_features)
    support = rng.choice(n_features, size=n_nonzero, replace=False)
    true_coef[support] = rng.choice([-1.0, 1.0], size=n_nonzero) * rng.uniform(0.5, 2.0, n_nonzero)
    y = 2.0 + X @ true_coef + rng.standard_normal(n_samples)
    return Dataset(
        name="sparse_truth",
        X=X,
        y=y,
        feature_names=tuple(f"x{j}" for j in range(n_features)),
        noise_sigma=1.0,
        true_coef=np.concatenate([[2.0], true_coef]),
        description=(
            f"simulated sparse truth: n={n_samples}, p={n_features}, {n_nonzero} non-zero coefficients "
            "(|w| in [0.5, 2]), independent N(0, 1) columns, noise sigma 1"
        ),
    )


class SupportRecovery(NamedTuple):
    """How a selection of features recovers a true support."""

    true_positives: int
    false_positives: int
    false_negatives: int
    f1: float


def support_recovery(selected, truth) -> SupportRecovery:
    """Counts of a selection against the true support, and ``F1 = 2 TP / (2 TP + FP + FN)``.

    ``selected`` and ``truth`` are boolean masks over the features; F1 is NaN when there is nothing to find
    and nothing was selected.
    """
    selected, truth = np.asarray(selected, dtype=bool), np.asarray(truth, dtype=bool)
    tp, fp = int(np.sum(selected & truth)), int(np.sum(selected & ~truth))
    fn = int(np.sum(~selected & truth))
    scored = 2 * tp + fp + fn
    return SupportRecovery(tp, fp, fn, 2 * tp / scored if scored else float("nan"))
