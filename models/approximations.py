"""Approximate posteriors and how far they are from the right answer.

Scores (all on the coefficient vector, intercept first, as :class:`models.exact.LinearPosterior`):

* :func:`gaussian_w2`: the 2-Wasserstein distance between two Gaussians in closed form, computed through the
  polar factor so that it stays accurate when the two are nearly equal (no ``sqrt`` of a cancelled trace).
* :func:`draws_w2`: W2 between the Gaussian *fitted to draws* (their mean and covariance) and a reference
  Gaussian. For draws that are not Gaussian this is the Gelbrich lower bound on the W2 between the two
  distributions; for draws of a Gaussian it carries the Monte Carlo error of the fitted moments.
* :func:`empirical_w2`: exact optimal transport between two equal-size samples (an assignment problem), for
  small samples; it is biased upwards at finite size in more than one dimension.
* :func:`sd_ratios`, :func:`correlation_error`: marginal spread and dependence against a reference.
* :func:`score`: all of these for one approximation (a Gaussian or draws) against a reference Gaussian.

Approximations compiled once per model (data are ``pm.Data``: ``pm.set_data`` and call again):

* :class:`Laplace`: the Gaussian at the precise MAP (:class:`models.fit.PreciseMAP`) with the inverse of the
  exact Hessian of the negative log-density, both from one :class:`models.fit.CompiledDensity`.
* :class:`CompiledADVI`: mean-field or full-rank ADVI (PyMC's objective and optimizers) with the step function
  compiled once and the variational parameters reset before each fit.
* :class:`CompiledPathfinder`: multi-path Pathfinder from pymc-extras' own pieces (single-path function
  compiled once, paths run serially, Pareto-smoothed importance resampling); its draws are read with the joined
  layout of :class:`models.fit.CompiledDensity`.
* :func:`mean_field_optimum`: for a Gaussian target, the mean-field Gaussian that minimizes ``KL(q || p)``
  (what converged mean-field ADVI must reach): the exact mean, variances ``1 / diag(precision)``.
* :func:`pmx_laplace`: pymc-extras' own ``fit_laplace``, as a :class:`Gaussian`, to compare against.

Simulation-based calibration (Talts et al. 2018): :func:`sbc_ranks`, :func:`rank_uniformity`,
:func:`ecdf_difference` and the band it stays in when calibrated, :func:`ecdf_band`.
"""

import warnings
from typing import NamedTuple

import numpy as np
import pymc as pm
import scipy.linalg
import scipy.optimize
import scipy.stats
from pymc.pytensorf import reseed_rngs
from pytensor.tensor.random.type import RandomType

from models.diagnostics import correlation
from models.fit import COMPILE_MODE, CompiledDensity, PreciseMAP, coefficients

COEFFICIENTS = ("intercept", "beta")
"""Free variables that make up the coefficient vector, in order."""


class Gaussian(NamedTuple):
    """A Gaussian approximation of the coefficient vector."""

    mean: np.ndarray
    cov: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def draws(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Independent draws, shape ``(size, k)``."""
        factor = _psd_sqrt(self.cov)
        return self.mean + rng.standard_normal((size, self.mean.size)) @ factor


def _psd_sqrt(cov) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (negative rounding eigenvalues clipped)."""
    values, vectors = np.linalg.eigh(np.asarray(cov, dtype=float))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def gaussian_w2(mean_a, cov_a, mean_b, cov_b) -> float:
    """2-Wasserstein distance between ``N(mean_a, cov_a)`` and ``N(mean_b, cov_b)``.

    ``W2**2 = |m_a - m_b|**2 + B**2`` with the Bures distance ``B = min_U ||A - B_ U||_F`` over orthogonal
    ``U`` (``A``, ``B_`` the symmetric square roots of the covariances), attained at the polar factor of
    ``B_ A``. Forming the residual ``A - B_ U`` directly keeps the relative accuracy near machine precision
    when the covariances agree, where the textbook trace formula loses half the digits to cancellation.
    A zero covariance (a point estimate) is allowed.
    """
    root_a, root_b = _psd_sqrt(cov_a), _psd_sqrt(cov_b)
    w, _, vt = np.linalg.svd(root_a @ root_b)
    # max_U tr(U^T B_ A) = nuclear norm of B_ A, attained at U = (w vt)^T applied as B_ @ U.
    bures = np.linalg.norm(root_a - root_b @ (w @ vt).T)
    shift = np.asarray(mean_a, dtype=float) - np.asarray(mean_b, dtype=float)
    return float(np.sqrt(shift @ shift + bures**2))


def fitted_gaussian(draws) -> Gaussian:
    """Mean and covariance of draws of shape ``(..., k)`` (chains pooled)."""
    draws = np.asarray(draws, dtype=float).reshape(-1, np.shape(draws)[-1])
    return Gaussian(draws.mean(axis=0), np.cov(draws, rowvar=False))


def draws_w2(draws, mean, cov) -> float:
    """W2 between the Gaussian fitted to ``draws`` and ``N(mean, cov)`` (see the module docstring)."""
    fitted = fitted_gaussian(draws)
    return gaussian_w2(fitted.mean, fitted.cov, mean, cov)


def empirical_w2(draws_a, draws_b) -> float:
    """Exact W2 between two empirical distributions of equal size ``n`` (an ``O(n**3)`` assignment)."""
    a = np.asarray(draws_a, dtype=float).reshape(-1, np.shape(draws_a)[-1])
    b = np.asarray(draws_b, dtype=float).reshape(-1, np.shape(draws_b)[-1])
    if a.shape != b.shape:
        raise ValueError(f"empirical_w2 needs samples of one shape, got {a.shape} and {b.shape}")
    cost = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def sd_ratios(cov, reference_cov) -> np.ndarray:
    """Approximate over reference marginal SD per coefficient."""
    return np.sqrt(np.diag(cov) / np.diag(reference_cov))


def correlation_error(cov, reference_cov) -> float:
    """Largest absolute difference between the two correlation matrices (0 to 2); a coefficient without
    spread (a point estimate) counts as uncorrelated with the others (:func:`models.diagnostics.correlation`)."""
    a, b = (correlation(c, zero_variance="uncorrelated") for c in (cov, reference_cov))
    return float(np.max(np.abs(a - b)))


def score(estimate, reference: Gaussian) -> tuple[dict, np.ndarray]:
    """How far one approximation is from a reference Gaussian, and its SD ratio per coefficient.

    Parameters
    ----------
    estimate : Gaussian or array_like of shape (..., k)
        A Gaussian approximation (a point when its covariance is zero), or draws (chains pooled).
    reference : Gaussian

    Returns
    -------
    (dict, ndarray)
        The scores: ``w2_to_exact`` (:func:`gaussian_w2`; for draws, of the Gaussian fitted to them, see
        :func:`draws_w2`), ``w2_relative`` (over the reference's root total variance ``sqrt(trace(cov))``,
        so that the reference's mean as a point scores 1), ``sd_ratio_min`` and ``sd_ratio_max``
        (:func:`sd_ratios`), ``correlation_error`` and ``w2_from`` (``"closed form"`` or ``"fitted
        Gaussian"``); and the SD ratios.
    """
    gaussian = estimate if isinstance(estimate, Gaussian) else fitted_gaussian(estimate)
    w2 = gaussian_w2(gaussian.mean, gaussian.cov, reference.mean, reference.cov)
    ratios = sd_ratios(gaussian.cov, reference.cov)
    scores = {
        "w2_to_exact": w2,
        "w2_relative": w2 / np.sqrt(np.trace(reference.cov)),
        "sd_ratio_min": ratios.min(),
        "sd_ratio_max": ratios.max(),
        "correlation_error": correlation_error(gaussian.cov, reference.cov),
        "w2_from": "closed form" if isinstance(estimate, Gaussian) else "fitted Gaussian",
    }
    return scores, ratios


def most_correlated_pair(cov) -> tuple[int, int]:
    """The two slope coefficients (index 0, the intercept, left out) with the largest absolute correlation."""
    corr = correlation(cov, zero_variance="uncorrelated")[1:, 1:]
    np.fill_diagonal(corr, 0.0)
    i, j = np.unravel_index(np.argmax(np.abs(corr)), corr.shape)
    return int(i) + 1, int(j) + 1


def marginal_density(estimate, j: int, grid) -> np.ndarray | None:
    """Density of coefficient ``j`` on ``grid``: normal for a :class:`Gaussian` (None for one without
    spread, a point), a Gaussian kernel density estimate for draws of shape ``(..., k)``."""
    if isinstance(estimate, Gaussian):
        sd = np.sqrt(estimate.cov[j, j])
        return None if sd == 0 else scipy.stats.norm.pdf(grid, estimate.mean[j], sd)
    return scipy.stats.gaussian_kde(np.asarray(estimate)[..., j].ravel())(grid)


def mean_field_optimum(mean, cov) -> Gaussian:
    """The mean-field Gaussian closest to ``N(mean, cov)`` in ``KL(q || p)``: exact mean, variances
    ``1 / diag(cov^-1)`` (each marginal's conditional variance; never more than the marginal variance)."""
    precision = np.linalg.inv(np.asarray(cov, dtype=float))
    return Gaussian(np.asarray(mean, dtype=float), np.diag(1.0 / np.diag(precision)))


class Laplace:
    """The Laplace approximation at the precise MAP with the exact Hessian, compiled once for a model.

    The mode comes from :class:`models.fit.PreciseMAP` (Newton with the exact Hessian); the covariance is the
    inverse of the exact Hessian of ``-model.logp(jacobian=False)`` there, from the same
    :class:`models.fit.CompiledDensity` (:meth:`models.fit.PreciseMAP.precision`), in the order of
    ``names``. The coefficient variables must be untransformed (true of the linear and GLM twins) so that the
    Gaussian is on the coefficients themselves.

    Parameters
    ----------
    model : pm.Model
    names : sequence of str
        Free variables of the coefficient vector, in order.
    precise_map : PreciseMAP or None
        An already compiled :class:`models.fit.PreciseMAP` of ``model`` to reuse.
    """

    def __init__(self, model: pm.Model, *, names=COEFFICIENTS, precise_map=None):
        self.model = model
        self.names = tuple(name for name in names if name in model.named_vars)
        self.map = PreciseMAP(model) if precise_map is None else precise_map
        if set(self.names) != set(self.map.compiled.names):
            raise ValueError(
                "Laplace here needs untransformed free variables that are all coefficients"
            )

    def __call__(self) -> Gaussian:
        """Fit at the model's current data: Gaussian(MAP, inverse exact Hessian)."""
        values = self.map()
        mode = coefficients(values, names=self.names)
        hess = self.map.precision(values, self.names)
        factor = scipy.linalg.cho_factor(hess)
        cov = scipy.linalg.cho_solve(factor, np.eye(mode.size))
        return Gaussian(mode, (cov + cov.T) / 2.0)


class CompiledADVI:
    """Mean-field (``"advi"``) or full-rank (``"fullrank_advi"``) ADVI, compiled once, refit after set_data.

    PyMC's own objective, initialization and optimizer; :meth:`__call__` resets the variational parameters
    to their initial values and reseeds the Monte Carlo gradient stream, so every fit starts afresh. The
    optimizer's own state (e.g. Adam's moments) is part of the compiled update and is reset too.

    Parameters
    ----------
    model : pm.Model
    method : {"advi", "fullrank_advi"}
    obj_optimizer : callable or None
        A ``pm.adam(...)``-style optimizer; PyMC's default (``adagrad_window``, learning rate 1e-3) when None.
    names : sequence of str
    """

    METHODS = {"advi": pm.ADVI, "fullrank_advi": pm.FullRankADVI}

    def __init__(
        self, model: pm.Model, method: str = "advi", *, obj_optimizer=None, names=COEFFICIENTS
    ):
        if method not in self.METHODS:
            raise ValueError(f"unknown ADVI method {method!r}; choose from {sorted(self.METHODS)}")
        self.method = method
        self.names = tuple(name for name in names if name in model.named_vars)
        self.inference = self.METHODS[method](model=model)
        self.group = self.inference.approx.groups[0]
        kwargs = {} if obj_optimizer is None else {"obj_optimizer": obj_optimizer}
        self._step = self.inference.objective.step_function(
            score=True, compile_kwargs={"mode": COMPILE_MODE}, **kwargs
        )
        # Everything the step updates (variational parameters, optimizer state, the Monte Carlo stream) and
        # nothing else: the model's pm.Data are inputs too and must keep what pm.set_data gave them.
        graph = self._step.maker.fgraph
        updated = [graph.inputs[j] for j in graph.update_mapping.values()]
        self._rngs = [v for v in updated if isinstance(v.type, RandomType)]
        self._initial = {
            v: np.array(v.get_value(borrow=False)) for v in updated if v not in self._rngs
        }
        self.losses = np.array([])
        # The C thunks are built at the first call; take that here so that fits time the fitting only.
        self._step()
        missing = set(self._names_in_ordering()) - set(self.names)
        if missing:
            raise ValueError(
                f"ADVI covers free variables outside the coefficients: {sorted(missing)}"
            )

    def _names_in_ordering(self):
        return list(self.group.ordering)

    def __call__(self, n: int, *, seed: int) -> Gaussian:
        """Run ``n`` optimizer steps from the initial parameters; the Gaussian in coefficient order."""
        for variable, value in self._initial.items():
            variable.set_value(value.copy())
        reseed_rngs(self._rngs, seed)
        self.losses = np.array([self._step() for _ in range(n)])
        order = np.concatenate(
            [
                np.arange(self.group.ordering[name][1].start, self.group.ordering[name][1].stop)
                for name in self.names
            ]
        )
        mean = self.group.mean.eval()[order]
        if self.method == "advi":
            cov = np.diag(self.group.std.eval()[order] ** 2)
        else:
            cov = self.group.cov.eval()[np.ix_(order, order)]
        return Gaussian(mean, cov)


class CompiledPathfinder:
    """Multi-path Pathfinder (pymc-extras) with the single-path function compiled once.

    Mirrors ``pymc_extras.fit_pathfinder(parallel=False)``: ``num_paths`` paths from jittered starts, each an
    L-BFGS run whose best-ELBO normal approximation gives ``num_draws_per_path`` draws, then Pareto-smoothed
    importance resampling to ``num_draws`` draws. Only the compile is done once (data stay ``pm.Data``).

    Parameters
    ----------
    model : pm.Model
    num_paths, num_draws, num_draws_per_path, num_elbo_draws, jitter : as ``fit_pathfinder``'s defaults
    names : sequence of str
    """

    def __init__(
        self,
        model: pm.Model,
        *,
        num_paths: int = 4,
        num_draws: int = 1000,
        num_draws_per_path: int = 1000,
        num_elbo_draws: int = 10,
        jitter: float = 2.0,
        names=COEFFICIENTS,
    ):
        from pymc_extras.inference.pathfinder.lbfgs import LBFGSConfig
        from pymc_extras.inference.pathfinder.single_path import make_single_pathfinder_fn

        self.names = tuple(name for name in names if name in model.named_vars)
        self.num_paths, self.num_draws = num_paths, num_draws
        layout = CompiledDensity(model)  # the joined layout only: nothing of it is compiled
        self._fn = make_single_pathfinder_fn(
            model,
            num_draws=num_draws_per_path,
            num_elbo_draws=num_elbo_draws,
            jitter=jitter,
            lbfgs_config=LBFGSConfig().set_default_maxcor(layout.size),
            compile_kwargs={"mode": COMPILE_MODE},
        )
        values = [model.rvs_to_values[model[name]].name for name in self.names]
        if set(values) != set(layout.names):
            raise ValueError(
                "Pathfinder here needs a model whose free variables are all coefficients"
            )
        # The single-path draws are joined as CompiledDensity joins the value variables.
        self._order = layout.index(values)

    def __call__(self, *, seed: int, num_draws: int | None = None) -> tuple[np.ndarray, dict]:
        """Draws, shape ``(num_draws, k)`` in coefficient order (the constructor's ``num_draws`` by
        default; at most ``num_paths * num_draws_per_path``), and a summary (the Pareto k of PSIS)."""
        num_draws = self.num_draws if num_draws is None else num_draws
        from pymc.util import _get_seeds_per_chain
        from pymc_extras.inference.pathfinder.results import MultiPathfinderResult

        *path_seeds, choice_seed = _get_seeds_per_chain(seed, self.num_paths + 1)
        results = [self._fn(s) for s in path_seeds]
        combined = (
            MultiPathfinderResult.from_path_results(results)
            .with_counts(num_paths=self.num_paths, num_draws=num_draws)
            .with_importance_sampling(num_draws=num_draws, method="psis", random_seed=choice_seed)
        )
        if combined.all_paths_failed:
            raise RuntimeError("every Pathfinder path failed")
        samples = np.asarray(combined.samples).reshape(-1, self._order.size)
        info = {"pareto_k": float(np.nan if combined.pareto_k is None else combined.pareto_k)}
        return samples[:, self._order], info


def pmx_laplace(model: pm.Model, optimize_method: str, *, seed: int) -> Gaussian:
    """pymc-extras' ``fit_laplace`` with ``optimize_method``: its mean and covariance in coefficient order.

    Its covariance is the inverse Hessian of the optimizer's result: with ``"BFGS"`` (its default) the
    quasi-Newton approximation that BFGS built along its path, with ``"trust-ncg"`` one from exact
    Hessian-vector products. ``fit_laplace`` compiles inside the call (with :data:`models.fit.COMPILE_MODE`
    here) and names its rows ``intercept`` and ``beta[<feature>]``; the model needs a ``feature`` dim.
    """
    import pymc_extras as pmx  # imported where it is used: seconds of start-up

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = pmx.fit_laplace(
            optimize_method,
            model=model,
            progressbar=False,
            random_seed=seed,
            draws=10,
            compile_kwargs={"mode": COMPILE_MODE},
        )
    rows = list(idata.fit["mean_vector"].coords["rows"].values)
    wanted = ["intercept"] + [f"beta[{name}]" for name in model.coords["feature"]]
    order = [rows.index(name) for name in wanted]
    mean = idata.fit["mean_vector"].values[order]
    cov = idata.fit["covariance_matrix"].values[np.ix_(order, order)]
    return Gaussian(mean, cov)


def sbc_ranks(truth, draws) -> np.ndarray:
    """Rank of each true value among its posterior draws: the number of draws below it.

    Parameters
    ----------
    truth : array_like, shape (n_datasets, k)
    draws : array_like, shape (n_datasets, n_draws, k)

    Returns
    -------
    ndarray of int, shape (n_datasets, k)
        Values in ``0 .. n_draws``; uniform on them when the posterior is calibrated and the draws independent.
    """
    truth = np.asarray(truth, dtype=float)
    draws = np.asarray(draws, dtype=float)
    return np.sum(draws < truth[:, None, :], axis=1)


class Uniformity(NamedTuple):
    """Chi-square test of uniform SBC ranks, per coefficient and combined.

    ``statistic[j]`` is Pearson's chi-square of coefficient ``j``'s ranks over ``bins`` equal bins
    (``bins - 1`` degrees of freedom); ``p_value`` is the smallest per-coefficient p-value times the number
    of coefficients (Bonferroni, capped at 1): a valid level for the hypothesis "every marginal is
    uniform" whatever the dependence between coefficients.
    """

    statistic: np.ndarray
    p_values: np.ndarray
    p_value: float
    bins: int

    @property
    def max_statistic(self) -> float:
        return float(np.max(self.statistic))


def rank_uniformity(ranks, n_draws: int, *, bins: int = 10) -> Uniformity:
    """Test SBC ranks (values ``0 .. n_draws``) for uniformity over ``bins`` bins of rank values.

    Rank value ``v`` falls in bin ``floor(v * bins / (n_draws + 1))``; each bin's expected count is the
    number of data sets times the share of the ``n_draws + 1`` rank values it holds (equal shares when
    ``bins`` divides ``n_draws + 1``).
    """
    ranks = np.asarray(ranks, dtype=int)
    if ranks.ndim != 2 or np.any(ranks < 0) or np.any(ranks > n_draws):
        raise ValueError(f"ranks must be a 2-D array of values in 0 .. {n_draws}")
    value_bins = np.arange(n_draws + 1) * bins // (n_draws + 1)
    share = np.bincount(value_bins, minlength=bins) / (n_draws + 1)
    expected = ranks.shape[0] * share
    counts = np.stack([np.bincount(value_bins[column], minlength=bins) for column in ranks.T])
    statistic = np.sum((counts - expected) ** 2 / expected, axis=1)
    p_values = scipy.stats.chi2.sf(statistic, bins - 1)
    return Uniformity(statistic, p_values, float(min(1.0, p_values.min() * p_values.size)), bins)


def ecdf_difference(ranks, n_draws: int, grid=None) -> tuple[np.ndarray, np.ndarray]:
    """``ECDF(u) - u`` of the fractional ranks ``(rank + 0.5) / (n_draws + 1)``, per coefficient.

    Returns the grid (default: 101 points in [0, 1]) and the differences, shape ``(len(grid), k)``.
    """
    grid = np.linspace(0.0, 1.0, 101) if grid is None else np.asarray(grid, dtype=float)
    u = (np.asarray(ranks, dtype=float) + 0.5) / (n_draws + 1)
    ecdf = np.mean(u[None, :, :] <= grid[:, None, None], axis=1)
    return grid, ecdf - grid[:, None]


def ecdf_band(n_datasets: int, level: float = 0.95) -> float:
    """Half-width of the ``level`` band of ``ECDF(u) - u`` over all ``u``, for one ECDF of ``n_datasets``
    uniform values: the asymptotic Kolmogorov-Smirnov quantile over ``sqrt(n_datasets)`` (1.358 at 95%).

    It holds for one coefficient's line; with several lines, more of them leave it by chance.
    """
    return float(scipy.stats.kstwobign.ppf(level) / np.sqrt(n_datasets))


__all__ = [
    "Gaussian",
    "Laplace",
    "CompiledADVI",
    "CompiledPathfinder",
    "Uniformity",
    "correlation_error",
    "draws_w2",
    "ecdf_band",
    "ecdf_difference",
    "empirical_w2",
    "fitted_gaussian",
    "gaussian_w2",
    "marginal_density",
    "mean_field_optimum",
    "most_correlated_pair",
    "pmx_laplace",
    "rank_uniformity",
    "sbc_ranks",
    "score",
    "sd_ratios",
]
