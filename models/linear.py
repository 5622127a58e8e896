"""The Bayesian twin of Ridge: linear regression with a Normal prior, as a PyMC model.

``y_i ~ N(intercept + x_i beta, sigma**2 / w_i)`` with a flat prior on the intercept and
``beta ~ N(0, sigma**2 / ridge_alpha * Sigma0)``. Its MAP is ``Ridge(alpha=ridge_alpha)`` (on the whitened
features ``X L``, ``L L^T = Sigma0``, mapped back by ``L``) whether ``sigma`` is known or not: with the
conjugate prior ``sigma**2 ~ InverseGamma`` the mode in ``beta`` does not depend on ``sigma``.

The design, the response, the sample weights and ``ridge_alpha`` are ``pm.Data``, so one compiled model serves a
whole alpha path (``pm.set_data({"ridge_alpha": a})``). ``ridge_alpha = 0`` builds a flat prior instead: a
different model structure, whose MAP is the least-squares fit.
"""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import scipy.linalg

from models.data import DataError, check_number, standard_regression
from models.exact import NOISE_PRIOR, noise_prior_terms
from models.fit import QuadraticMAP, coefficients
from models.measure import Stopwatch, nutpie_fit
from models.penalties import whitening_factor

__all__ = [
    "linear_regression",
    "SUFFSTAT_ROWS",
    "likelihood_for",
    "sufficient_statistics",
    "coefficient_precision",
    "coefficient_whitening",
    "SuffstatFits",
]


def linear_regression(
    X,
    y,
    *,
    ridge_alpha: float,
    noise_sigma: float | None = None,
    sample_weight=None,
    fit_intercept: bool = True,
    relative_prior_cov=None,
    noise_prior: tuple[float, float] = NOISE_PRIOR,
    feature_names=None,
    likelihood: str = "rows",
    whiten: bool = False,
) -> pm.Model:
    """Build the linear twin of ``Ridge(alpha=ridge_alpha)``.

    Parameters
    ----------
    X : array_like, shape (n, p)
    y : array_like, shape (n,)
    ridge_alpha : float
        Ridge's penalty strength (scikit-learn's convention, no 1/n); 0 means a flat prior.
    noise_sigma : float or None
        Known noise standard deviation (Gaussian posterior) or None: ``sigma**2 ~ InverseGamma(*noise_prior)``
        and ``beta | sigma`` scales with ``sigma`` (Student-t posterior).
    sample_weight : array_like or None
        Row ``i`` has noise variance ``sigma**2 / w_i``, as in ``Ridge.fit(..., sample_weight=w)``.
    fit_intercept : bool
        Add an intercept with a flat (unpenalized) prior.
    relative_prior_cov : array_like or None
        ``Sigma0``, diagonal (1-D) or full (2-D); identity when None.
    noise_prior : (float, float)
        Inverse-gamma shape ``a`` and rate ``b`` of ``sigma**2``; ``(0, 0)``, the default, is Jeffreys'
        ``1 / sigma**2`` (see :data:`models.exact.NOISE_PRIOR`). Written as the unnormalized density
        ``sigma**2 ** -(a + 1) * exp(-b / sigma**2)`` on a ``HalfFlat`` ``sigma_squared``, with ``a`` and ``b``
        as ``pm.Data`` (``noise_shape``, ``noise_rate``): Jeffreys' prior and a proper one are then the same
        compiled model, and a calibration study swaps one for the other without compiling again.
    feature_names : sequence of str or None
        Coordinates of the ``feature`` dim.
    likelihood : {"rows", "suffstat"}
        ``"rows"``: an observed ``y`` with one term per row (posterior predictive and pointwise
        log-likelihood come for free). ``"suffstat"``: the same log-likelihood from the sufficient statistics
        (:func:`sufficient_statistics`, ``pm.Data`` named ``xtwx``, ``xtwy``, ``ytwy``, ``n_obs``,
        ``sum_log_weight``) as a ``pm.Potential``: ``O(p**2)`` per gradient whatever ``n``, the same posterior.
    whiten : bool
        ``likelihood="suffstat"`` only: sample the coefficients ``theta = (intercept, beta)`` through
        ``coef_whitened`` (dim ``coefficient``), ``theta = coef_shift + sigma * coef_factor @ coef_whitened``,
        with ``coef_shift`` and ``coef_factor`` the ``pm.Data`` of :func:`coefficient_whitening` (the
        posterior mean, and ``L^-T`` for the Cholesky factor ``L`` of :func:`coefficient_precision`).
        Given ``sigma``, ``coef_whitened`` is then a posteriori exactly ``N(0, I)``, independent of
        ``sigma``: a dense preconditioner that NUTS cannot learn from a diagonal mass matrix (at n = 1e3,
        p = 1000, ``X^T X`` is nearly singular and the prior alone holds some directions). It is a change of
        variables, not a different model: the log density is the unwhitened one's at ``theta`` plus the log
        Jacobian ``k * log(sigma) + log|det coef_factor|`` (``k`` coefficients) less its constant part
        ``log|det coef_factor|``, so ``intercept`` and ``beta`` (deterministics) have the same posterior.
        Any ``coef_shift`` and invertible ``coef_factor`` give that posterior; the ones for the
        data and ``ridge_alpha`` given here make it isotropic (after ``pm.set_data`` of new statistics or
        ``ridge_alpha``, give the matching ones with them). The default keeps ``beta`` and ``intercept``
        free, as :class:`models.fit.QuadraticMAP` and the MAP fits need.

    Returns
    -------
    pm.Model
        Free variables ``intercept`` (when fitted), ``beta`` (dim ``feature``) and ``sigma_squared`` (unknown
        noise), or ``coef_whitened`` and ``sigma_squared`` when ``whiten``; observed ``y`` (dim ``obs_id``)
        or the potential ``y_loglike``.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    ridge_alpha = check_number("ridge_alpha", ridge_alpha)
    if likelihood not in ("rows", "suffstat"):
        raise DataError(f"likelihood must be 'rows' or 'suffstat', got {likelihood!r}")
    if whiten and likelihood != "suffstat":
        raise DataError("whiten=True needs likelihood='suffstat'")
    sample_weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    feature_names = [f"x{j}" for j in range(p)] if feature_names is None else list(feature_names)
    coords = {"feature": feature_names}
    if likelihood == "rows":
        coords["obs_id"] = np.arange(n)
    if whiten:
        coords["coefficient"] = (["intercept"] if fit_intercept else []) + feature_names

    with pm.Model(coords=coords) as model:
        if noise_sigma is None:
            shape, rate = noise_prior_terms(noise_prior)
            noise_shape, noise_rate = pm.Data("noise_shape", shape), pm.Data("noise_rate", rate)
            sigma_squared = pm.HalfFlat("sigma_squared")
            pm.Potential(
                "noise_prior",
                -(noise_shape + 1.0) * pt.log(sigma_squared) - noise_rate / sigma_squared,
            )
            sigma = pm.Deterministic("sigma", pt.sqrt(sigma_squared))
        else:
            sigma = pt.as_tensor(float(noise_sigma))

        if whiten:
            stats = sufficient_statistics(
                X, y, sample_weight=sample_weight, fit_intercept=fit_intercept
            )
            _whitened_suffstat_model(
                stats,
                sigma,
                ridge_alpha=ridge_alpha,
                relative_prior_cov=relative_prior_cov,
                fit_intercept=fit_intercept,
            )
            return model
        if ridge_alpha == 0:
            beta = pm.Flat("beta", dims="feature")
        else:
            ridge_alpha_ = pm.Data("ridge_alpha", float(ridge_alpha))
            prior_sigma = sigma / pt.sqrt(ridge_alpha_)
            if relative_prior_cov is None:
                beta = pm.Normal("beta", 0.0, prior_sigma, dims="feature")
            elif np.ndim(relative_prior_cov) == 1:
                relative_sd = np.sqrt(np.asarray(relative_prior_cov, dtype=float))
                beta = pm.Normal("beta", 0.0, prior_sigma * relative_sd, dims="feature")
            else:
                chol = prior_sigma * whitening_factor(relative_prior_cov)
                beta = pm.MvNormal("beta", mu=np.zeros(p), chol=chol, dims="feature")
        intercept = pm.Flat("intercept") if fit_intercept else None

        if likelihood == "rows":
            X_ = pm.Data("X", X, dims=("obs_id", "feature"))
            y_ = pm.Data("y_observed", y, dims="obs_id")
            sample_weight_ = pm.Data("sample_weight", sample_weight, dims="obs_id")
            mu = X_ @ beta if intercept is None else intercept + X_ @ beta
            noise = sigma / pt.sqrt(sample_weight_)
            pm.Normal("y", mu=mu, sigma=noise, observed=y_, dims="obs_id")
        else:
            stats = sufficient_statistics(
                X, y, sample_weight=sample_weight, fit_intercept=fit_intercept
            )
            data = {name: pm.Data(name, value) for name, value in stats.items()}
            theta = beta if intercept is None else pt.concatenate([intercept[None], beta])
            _suffstat_loglike(data, theta, sigma)
    return model


def _suffstat_loglike(data, theta, sigma):
    """The Gaussian log-likelihood of ``theta = (intercept, beta)`` from the statistics' ``pm.Data``."""
    weighted_rss = data["ytwy"] - 2.0 * theta @ data["xtwy"] + theta @ data["xtwx"] @ theta
    pm.Potential(
        "y_loglike",
        -0.5 * weighted_rss / sigma**2
        - data["n_obs"] * pt.log(sigma)
        + 0.5 * data["sum_log_weight"]
        - 0.5 * data["n_obs"] * np.log(2.0 * np.pi),
    )


def _whitened_suffstat_model(stats, sigma, *, ridge_alpha, relative_prior_cov, fit_intercept):
    """The rest of :func:`linear_regression` with ``whiten=True``, in its model context (see its docstring)."""
    data = {name: pm.Data(name, value) for name, value in stats.items()}
    whitening = coefficient_whitening(
        stats,
        ridge_alpha=ridge_alpha,
        fit_intercept=fit_intercept,
        relative_prior_cov=relative_prior_cov,
    )
    shift = pm.Data("coef_shift", whitening["coef_shift"], dims="coefficient")
    factor = pm.Data("coef_factor", whitening["coef_factor"], dims=("coefficient", "coefficient"))
    whitened = pm.Flat("coef_whitened", dims="coefficient")
    theta = shift + sigma * (factor @ whitened)
    # d theta / d coef_whitened = sigma * coef_factor: the sigma part of the log Jacobian (the rest is constant).
    pm.Potential("coef_jacobian", theta.shape[0] * pt.log(sigma))
    if fit_intercept:
        pm.Deterministic("intercept", theta[0])
    beta = pm.Deterministic("beta", theta[int(fit_intercept) :], dims="feature")
    if ridge_alpha > 0:
        prior_sigma = sigma / pt.sqrt(pm.Data("ridge_alpha", float(ridge_alpha)))
        if relative_prior_cov is not None and np.ndim(relative_prior_cov) == 2:
            chol = prior_sigma * whitening_factor(relative_prior_cov)
            prior = pm.MvNormal.dist(mu=pt.zeros_like(beta), chol=chol)
        else:
            relative_sd = 1.0 if relative_prior_cov is None else np.sqrt(relative_prior_cov)
            prior = pm.Normal.dist(0.0, prior_sigma * relative_sd, shape=beta.shape)
        pm.Potential("beta_prior", pm.logp(prior, beta).sum())
    _suffstat_loglike(data, theta, sigma)


SUFFSTAT_ROWS = 10_000
"""Above this many rows the twin is better sampled through its sufficient statistics (the same posterior at
``O(p**2)`` per gradient instead of ``O(n p)``): at n = 1e5, p = 50 they sampled in 0.44 s where the row-wise
likelihood took 189 s (``python -m experiments.performance``)."""


def likelihood_for(n_rows: int) -> str:
    """``"suffstat"`` above :data:`SUFFSTAT_ROWS` rows, else ``"rows"`` (the row-wise likelihood)."""
    return "suffstat" if n_rows > SUFFSTAT_ROWS else "rows"


def sufficient_statistics(
    X, y, *, sample_weight=None, fit_intercept=True, chunk_rows: int = 100_000
) -> dict[str, np.ndarray]:
    """``X^T W X``, ``X^T W y``, ``y^T W y``, ``n`` and ``sum(log w)`` of the Gaussian likelihood.

    ``X`` gets a leading column of ones when ``fit_intercept``. With these the log-likelihood and its gradient
    cost ``O(p**2)`` whatever ``n`` is. Summed over blocks of ``chunk_rows`` rows, so no full-size copy of
    ``X`` is made (at n = 1e6, p = 100 a copy is 0.8 GB). ``X^T W X`` is formed as ``R^T R`` with
    ``R = W^(1/2) X``, which NumPy hands to BLAS's symmetric rank-k update: half the flops of a general
    product (at n = 1e4, p = 1000: 2.9 s against 4.4 s). Without weights ``R`` is the block of ``X`` itself
    and the intercept's row is a column sum: no copy at all (each fresh copy of a 1e4 x 1000 block cost
    0.16 s of page faults, as much as the product).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    k = X.shape[1] + int(fit_intercept)
    xtwx, xtwy = np.zeros((k, k)), np.zeros(k)
    for start in range(0, len(y), chunk_rows):
        rows = slice(start, start + chunk_rows)
        block, block_w = X[rows], w[rows]
        root_weighted = block if sample_weight is None else block * np.sqrt(block_w)[:, None]
        gram, wy = root_weighted.T @ root_weighted, block_w * y[rows]
        if fit_intercept:
            column_sums = block_w @ block
            xtwx[0, 0] += block_w.sum()
            xtwx[0, 1:] += column_sums
            xtwx[1:, 0] += column_sums
            xtwx[1:, 1:] += gram
            xtwy[0] += wy.sum()
            xtwy[1:] += block.T @ wy
        else:
            xtwx += gram
            xtwy += block.T @ wy
    return {
        "xtwx": xtwx,
        "xtwy": xtwy,
        "ytwy": np.asarray(y @ (w * y)),
        "n_obs": np.asarray(float(len(y))),
        "sum_log_weight": np.asarray(np.log(w).sum()),
    }


def coefficient_precision(
    stats, *, ridge_alpha: float, fit_intercept: bool = True, relative_prior_cov=None
) -> np.ndarray:
    """``X^T W X + ridge_alpha * blockdiag(0, Sigma0^-1)``: ``sigma**2`` times the posterior precision of
    ``(intercept, beta)`` given ``sigma`` (the intercept's prior is flat; ``ridge_alpha = 0`` is flat too)."""
    k = len(stats["xtwy"])
    first = int(fit_intercept)
    if relative_prior_cov is None or np.ndim(relative_prior_cov) == 1:
        relative_precision = np.ones(k - first)
        if relative_prior_cov is not None:
            relative_precision = 1.0 / np.asarray(relative_prior_cov, dtype=float)
        prior_precision = np.zeros(k)
        prior_precision[first:] = ridge_alpha * relative_precision
        return stats["xtwx"] + np.diag(prior_precision)
    prior_precision = np.zeros((k, k))
    prior_precision[first:, first:] = ridge_alpha * np.linalg.inv(relative_prior_cov)
    return stats["xtwx"] + prior_precision


def coefficient_whitening(
    stats, *, ridge_alpha: float, fit_intercept: bool = True, relative_prior_cov=None
) -> dict[str, np.ndarray]:
    """``coef_shift`` (the posterior mean of ``(intercept, beta)``) and ``coef_factor`` (``L^-T``, upper
    triangular, ``L L^T`` = :func:`coefficient_precision`): the ``pm.Data`` of ``linear_regression(...,
    whiten=True)``. ``theta = coef_shift + sigma * coef_factor @ z`` has the exact conditional posterior of the
    coefficients given ``sigma`` when ``z ~ N(0, I)``. One Cholesky factorization: 0.1 s at p = 1000.
    """
    precision = coefficient_precision(
        stats,
        ridge_alpha=ridge_alpha,
        fit_intercept=fit_intercept,
        relative_prior_cov=relative_prior_cov,
    )
    chol = scipy.linalg.cholesky(precision, lower=True)
    shift = scipy.linalg.cho_solve((chol, True), stats["xtwy"])
    inverse = scipy.linalg.solve_triangular(chol, np.eye(len(shift)), lower=True)
    return {"coef_shift": shift, "coef_factor": inverse.T}


class SuffstatFits:
    """The sufficient-statistics twin compiled once per ``p`` (MAP and nutpie), refit with new statistics.

    The compiled functions depend on the number of features only: they are built from a tiny design and
    then given the statistics of any data set (``pm.set_data`` / nutpie's ``with_data``), from
    :func:`sufficient_statistics` or any source that sums the same blocks.

    ``whiten=True`` samples NUTS on ``linear_regression(..., whiten=True)`` (the same posterior, the
    coefficients preconditioned by :func:`coefficient_whitening` of each data set's statistics); the MAP
    always uses the unwhitened model.
    """

    def __init__(
        self, ridge_alpha: float, noise_sigma: float | None = None, *, whiten: bool = False
    ):
        self.ridge_alpha, self.noise_sigma, self.whiten = ridge_alpha, noise_sigma, whiten
        self._maps, self._nuts = {}, {}

    def _model(self, p, *, whiten=False):
        X, y = standard_regression(p + 2, p, np.random.default_rng(0))
        return linear_regression(
            X,
            y,
            ridge_alpha=self.ridge_alpha,
            noise_sigma=self.noise_sigma,
            likelihood="suffstat",
            whiten=whiten,
        )

    def map(self, p, stats, ridge_alpha=None) -> tuple[np.ndarray, float]:
        """The MAP coefficients for ``stats``, and the seconds spent compiling (0 when cached).

        The log-density is quadratic in ``(intercept, beta)`` given ``sigma**2``, and their mode does not
        depend on ``sigma**2``: :class:`models.fit.QuadraticMAP` takes a Newton step from the model's compiled
        gradient with the exact precision ``(X^T W X + alpha D) / sigma**2`` (``D`` the identity without the
        intercept's entry), one Cholesky factorization. At p = 1000, n = 1e3 this took the fit from 35 s
        (:class:`models.fit.PreciseMAP`: 65 evaluations of a compiled 1001 x 1001 Hessian) to milliseconds.
        """
        compile_seconds = 0.0
        if p not in self._maps:
            clock = Stopwatch()
            model = self._model(p)
            self._maps[p] = (model, QuadraticMAP(model, ["intercept", "beta"]))
            compile_seconds = clock.lap()
        model, quadratic_map = self._maps[p]
        alpha = self.ridge_alpha if ridge_alpha is None else ridge_alpha
        pm.set_data(stats | {"ridge_alpha": alpha}, model=model)
        prior_alpha = alpha if self.ridge_alpha > 0 else 0.0  # ridge_alpha = 0 built a flat prior
        if self.noise_sigma is None:
            # Where QuadraticMAP holds sigma**2 (a HalfFlat, sampled on the log scale).
            noise_variance = float(np.exp(quadratic_map.start["sigma_squared_log__"]))
        else:
            noise_variance = self.noise_sigma**2
        precision = coefficient_precision(stats, ridge_alpha=prior_alpha) / noise_variance
        return coefficients(quadratic_map(precision)), compile_seconds

    def nuts(self, p, stats, *, seed, draws, tune, chains, adaptation="low_rank"):
        """NUTS (nutpie) for ``stats``: ``(idata, compile seconds (0 when cached), sampling seconds)``.

        ``adaptation``: nutpie's mass matrix adaptation (:func:`models.fit.sample_nuts`). With ``whiten`` the
        sampling seconds include computing the preconditioner (one Cholesky factorization).
        """
        compiled = self._nuts.get(p)
        clock = Stopwatch()
        data = dict(stats)
        if self.whiten:
            data |= coefficient_whitening(stats, ridge_alpha=self.ridge_alpha)
        whitening_seconds = clock.lap()
        idata, compile_s, sampling_s, compiled = nutpie_fit(
            self._model(p, whiten=self.whiten) if compiled is None else None,
            seed=seed,
            draws=draws,
            tune=tune,
            chains=chains,
            compiled=compiled,
            adaptation=adaptation,
            **{k: np.asarray(v, dtype=float) for k, v in data.items()},
        )
        self._nuts[p] = compiled
        return idata, compile_s, whitening_seconds + sampling_s
