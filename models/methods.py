"""The approximation spectrum behind one interface: each method compiled once per model, fitted with a seed.

:func:`method_table` names every method (the MAP, the Laplace approximation and pymc-extras' own, mean-field
and full-rank ADVI, Pathfinder, NUTS with nutpie and with PyMC, independent exact draws) with what it
compiles and how it fits the model's *current* data (``pm.Data``: ``pm.set_data`` and fit again).
:class:`Compiled` builds each compiled object once per model and shares it: the MAP and the Laplace
approximation use one :class:`models.fit.PreciseMAP`. :func:`fit_timed` runs one method and splits its wall
time into compile and fit; :func:`seeds_for` gives a method seeds derived from its name, so that switching
one method off changes no other method's draws. :func:`fit_methods` fits every method of the table on a
model and :func:`score_fits` scores the fits; :func:`calibration_ranks` refits a method on simulated data
sets for simulation-based calibration, :func:`calibrate` several methods, with a test of their ranks.
:class:`Reference` is what they are scored against: the exact posterior of the known-sigma linear twin
(:func:`exact_reference`) or a long NUTS run (:func:`nuts_reference`, on :func:`breast_cancer_twin`, say),
whose convergence :func:`reference_targets` checks; :func:`known_sigma_datasets` simulates from the first.

The model must be a twin with a ``y_observed`` ``pm.Data`` and coefficients ``intercept`` and ``beta``.
"""

import functools
import time
import warnings
import zlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
import pymc as pm
from sklearn.datasets import load_breast_cancer

from models import approximations as approx
from models.diagnostics import convergence
from models.exact import linear_posterior
from models.fit import coefficients, compile_nuts, posterior_coefficients, sample_nuts
from models.glm import logistic_regression
from models.glm_data import standardize
from models.linear import linear_regression

__all__ = [
    "METHODS",
    "Reference",
    "exact_reference",
    "nuts_reference",
    "reference_targets",
    "known_sigma_datasets",
    "breast_cancer_twin",
    "Budget",
    "Method",
    "Fitted",
    "seeds_for",
    "compilers",
    "Compiled",
    "sample_pymc",
    "method_table",
    "fit_timed",
    "fit_methods",
    "score_fits",
    "calibration_ranks",
    "calibrate",
]

METHODS = (
    "map",
    "laplace",
    "laplace_pmx_bfgs",
    "laplace_pmx_trust_ncg",
    "advi_meanfield",
    "advi_fullrank",
    "advi_meanfield_optimum",
    "pathfinder",
    "nuts_nutpie",
    "nuts_pymc",
    "exact_draws",
)
"""Every method of :func:`method_table`, in its order."""


class Reference(NamedTuple):
    """A model and the posterior its approximations are scored against (coefficients intercept first).

    ``gaussian``: the exact posterior, or the Gaussian fitted to the reference draws; ``exact_posterior(y)``:
    the exact posterior at response ``y`` (None without one); ``draws`` and ``check`` (its convergence and
    number of draws): those of a NUTS reference.
    """

    model: pm.Model
    names: tuple[str, ...]
    gaussian: approx.Gaussian
    exact_posterior: Callable | None = None
    draws: np.ndarray | None = None
    check: dict | None = None

    def method_table(self, budget: "Budget") -> dict[str, "Method"]:
        """:func:`method_table` of the model, with the methods that need its exact posterior if it has one."""
        return method_table(self.model, budget, exact_posterior=self.exact_posterior)


def exact_reference(dataset, *, ridge_alpha: float) -> Reference:
    """The known-sigma linear twin of a :class:`models.data.Dataset` (its ``noise_sigma`` known) and its
    exact Gaussian posterior."""
    kwargs = {"ridge_alpha": ridge_alpha, "noise_sigma": dataset.noise_sigma}
    names = dataset.feature_names
    model = linear_regression(dataset.X, dataset.y, feature_names=names, **kwargs)
    posterior = functools.partial(linear_posterior, dataset.X, feature_names=names, **kwargs)
    exact = posterior(dataset.y)
    return Reference(model, exact.names, approx.Gaussian(exact.mean, exact.cov), posterior)


def nuts_reference(model: pm.Model, *, seed: int, draws: int, chains: int) -> Reference:
    """A long nutpie run (``draws`` tuning steps, then ``draws`` per chain) as the reference posterior."""
    idata = sample_nuts(compile_nuts(model), seed=seed, draws=draws, tune=draws, chains=chains)
    samples = posterior_coefficients(idata)
    check = convergence(idata)._asdict() | {"draws": int(samples.shape[0] * samples.shape[1])}
    names = ("intercept", *model.coords["feature"])
    return Reference(model, names, approx.fitted_gaussian(samples), None, samples, check)


def reference_targets(check: dict, *, min_draws: int) -> dict:
    """What a NUTS reference's ``check`` must pass to be one, as :func:`models.diagnostics.checks` targets
    (by name: ``draws``, ``rhat``, ``ess_bulk``, ``divergences``): at least ``min_draws`` draws, R-hat at
    most 1.01, bulk ESS at least 1,000 and no divergence."""
    return {
        "draws": (check["draws"], ">=", min_draws),
        "rhat": (check["rhat_max"], "<=", 1.01),
        "ess_bulk": (check["ess_bulk_min"], ">=", 1000),
        "divergences": (check["divergences"], "<=", 0),
    }


def known_sigma_datasets(
    dataset, *, ridge_alpha: float, size: int, rng
) -> tuple[np.ndarray, np.ndarray]:
    """``size`` data sets from the prior of :func:`exact_reference`'s twin on ``dataset``'s fixed design.

    ``beta ~ N(0, sigma**2 / ridge_alpha)``, ``y = X beta + sigma * eps`` with the data set's known
    ``noise_sigma`` (:func:`models.calibration.linear_prior_datasets` draws sigma too). The intercept's prior
    is flat: its truth is fixed at 0, which location equivariance allows.

    Returns
    -------
    truth : ndarray, shape (size, 1 + p)
        Intercept first.
    y : ndarray, shape (size, n)
    """
    X, sigma = dataset.X, dataset.noise_sigma
    beta = rng.standard_normal((size, X.shape[1])) * sigma / np.sqrt(ridge_alpha)
    y = beta @ X.T + sigma * rng.standard_normal((size, X.shape[0]))
    return np.column_stack([np.zeros(size), beta]), y


def breast_cancer_twin(logistic_C: float) -> pm.Model:
    """The logistic twin on scikit-learn's breast_cancer, all 569 patients: y = 1 for malignant, the 30
    features standardized (names with underscores for spaces)."""
    bunch = load_breast_cancer()
    X, _ = standardize(bunch.data)
    names = tuple(f.replace(" ", "_") for f in bunch.feature_names)
    y = (bunch.target == 0).astype(float)
    return logistic_regression(X, y, logistic_C=logistic_C, feature_names=names)


class Budget(NamedTuple):
    """How long each method runs (the names are those of the experiments' settings)."""

    advi_steps: int = 10_000
    advi_learning_rate: float = 0.03
    pathfinder_paths: int = 4
    pathfinder_draws: int = 1000
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    exact_draws: int = 2000

    @classmethod
    def of(cls, settings) -> "Budget":
        """The budget in ``settings`` (an experiment's configuration, say): its attributes of these names."""
        return cls(**{name: getattr(settings, name) for name in cls._fields})

    def giving(self, n_draws: int) -> "Budget":
        """This budget with ``n_draws`` draws from every method that draws (NUTS: over all its chains)."""
        return self._replace(
            draws=n_draws // self.chains, pathfinder_draws=n_draws, exact_draws=n_draws
        )


class Method(NamedTuple):
    """One method: ``fit(compiled, seed)`` fits the model's current data.

    ``compiled`` is the object that :func:`compilers` builds under the key ``compile`` (None without one: the
    call compiles inside, and is timed whole). ``fit`` returns a :class:`models.approximations.Gaussian`,
    draws of shape ``(..., k)``, Pathfinder's ``(draws, info)`` or NUTS's ``DataTree``; ``record(info)``
    gives what to keep of the fit (convergence, Pareto k). ``timed=False``: a formula, not a method one runs.
    """

    fit: Callable
    compile: str | None = None
    record: Callable | None = None
    timed: bool = True


class Fitted(NamedTuple):
    """One timed fit: the estimate (a Gaussian or draws of shape ``(..., k)``), its record, and seconds."""

    estimate: object
    record: dict
    compile_seconds: float
    fit_seconds: float


def seeds_for(seed: int, *names: str, n: int = 1) -> list[int]:
    """``n`` seeds in [0, 2**32) of the stream named ``names`` (a model and a method, say) under ``seed``.

    The names enter through CRC-32, a stable hash (Python's ``hash`` of a string is salted per process), so
    a method draws the same numbers whichever other methods run.
    """
    keys = [zlib.crc32(name.encode()) for name in names]
    return [int(s) for s in np.random.SeedSequence([seed, *keys]).generate_state(n)]


def compilers(model: pm.Model, budget: Budget) -> dict[str, Callable]:
    """What the methods compile, by key: functions that build it for ``model``."""
    optimizer = pm.adam(learning_rate=budget.advi_learning_rate)
    return {
        # One PreciseMAP for both: the MAP is its mode, Laplace adds the inverse of its exact Hessian.
        "laplace": lambda: approx.Laplace(model),
        "advi": lambda: approx.CompiledADVI(model, "advi", obj_optimizer=optimizer),
        "fullrank_advi": lambda: approx.CompiledADVI(
            model, "fullrank_advi", obj_optimizer=optimizer
        ),
        "pathfinder": lambda: approx.CompiledPathfinder(model, num_paths=budget.pathfinder_paths),
        "nutpie": lambda: compile_nuts(model),
    }


class Compiled:
    """The objects compiled for one model, each built once at its first request and then shared."""

    def __init__(self, model: pm.Model, budget: Budget):
        self.model, self._build, self._built = model, compilers(model, budget), {}

    def get(self, key: str | None) -> tuple[object, float]:
        """(object, seconds it took to build) under ``key``; (None, NaN) for no key."""
        if key is None:
            return None, np.nan
        if key not in self._built:
            start = time.perf_counter()
            built = self._build[key]()
            self._built[key] = built, time.perf_counter() - start
        return self._built[key]


def sample_pymc(model: pm.Model, *, seed: int, draws: int, tune: int, chains: int):
    """PyMC's own NUTS, quietly; chains in turn (``cores=1``: spawning processes costs seconds)."""
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pm.sample(
            draws=draws, tune=tune, chains=chains, random_seed=seed, cores=1, progressbar=False
        )


def method_table(
    model: pm.Model, budget: Budget, *, exact_posterior: Callable | None = None
) -> dict[str, Method]:
    """Every method, by name (in the order of a table of results), with ``budget``'s settings.

    ``exact_posterior(y)`` (the exact posterior at response ``y``, e.g. :func:`models.exact.linear_posterior`
    with the design and prior fixed) adds ``exact_draws`` and ``advi_meanfield_optimum``, the mean-field
    Gaussian converged ADVI must reach (:func:`models.approximations.mean_field_optimum`).
    """
    nuts = {"draws": budget.draws, "tune": budget.tune, "chains": budget.chains}

    def y():
        return model["y_observed"].get_value()

    def point(laplace, seed):
        mode = coefficients(laplace.map())
        return approx.Gaussian(mode, np.zeros((mode.size, mode.size)))

    def advi(fit, seed):
        return fit(budget.advi_steps, seed=seed)

    def nuts_record(name):
        return lambda idata: {name: convergence(idata)._asdict()}

    def optimum(_, seed):
        posterior = exact_posterior(y())
        return approx.mean_field_optimum(posterior.mean, posterior.cov)

    table = {
        "map": Method(point, "laplace"),
        "laplace": Method(lambda laplace, seed: laplace(), "laplace"),
        "laplace_pmx_bfgs": Method(lambda _, seed: approx.pmx_laplace(model, "BFGS", seed=seed)),
        "laplace_pmx_trust_ncg": Method(
            lambda _, seed: approx.pmx_laplace(model, "trust-ncg", seed=seed)
        ),
        "advi_meanfield": Method(advi, "advi"),
        "advi_fullrank": Method(advi, "fullrank_advi"),
        "advi_meanfield_optimum": Method(optimum, timed=False),
        "pathfinder": Method(
            lambda pathfinder, seed: pathfinder(seed=seed, num_draws=budget.pathfinder_draws),
            "pathfinder",
            lambda info: {"pathfinder_pareto_k": info["pareto_k"]},
        ),
        "nuts_nutpie": Method(
            lambda nutpie, seed: sample_nuts(nutpie, seed=seed, y_observed=y(), **nuts),
            "nutpie",
            nuts_record("nuts_nutpie"),
        ),
        "nuts_pymc": Method(
            lambda _, seed: sample_pymc(model, seed=seed, **nuts), record=nuts_record("nuts_pymc")
        ),
        "exact_draws": Method(
            lambda _, seed: exact_posterior(y()).draws(
                np.random.default_rng(seed), budget.exact_draws
            )
        ),
    }
    if exact_posterior is None:  # the two methods that need it
        del table["advi_meanfield_optimum"], table["exact_draws"]
    return table


def _estimate_and_info(fitted) -> tuple:
    """(estimate, info): a Gaussian or draws as they are, Pathfinder's pair as it is, NUTS's ``DataTree``
    as its coefficient draws and itself."""
    if isinstance(fitted, approx.Gaussian | np.ndarray):
        return fitted, None
    return fitted if isinstance(fitted, tuple) else (posterior_coefficients(fitted), fitted)


def fit_timed(method: Method, compiled: Compiled, seed: int) -> Fitted:
    """Fit ``method`` with ``seed`` on the model's current data, with its compile and fit seconds.

    A compiled method fits twice with the same seed: PyTensor builds some C thunks at the first call, so
    the first fit's extra time over the second (a refit, whose answer is kept) counts as compilation, on
    top of building the compiled object (once per model: a method that shares it counts it too). Without
    ``compile`` the compile time is NaN and the one call is the fit time; ``timed=False`` gives NaN for both.
    """
    built, compile_seconds = compiled.get(method.compile)
    first = 0.0
    if method.compile is not None:
        start = time.perf_counter()
        method.fit(built, seed)
        first = time.perf_counter() - start
    start = time.perf_counter()
    estimate, info = _estimate_and_info(method.fit(built, seed))
    fit_seconds = time.perf_counter() - start
    record = method.record(info) if method.record is not None else {}
    if not method.timed:
        return Fitted(estimate, record, np.nan, np.nan)
    return Fitted(estimate, record, compile_seconds + max(first - fit_seconds, 0.0), fit_seconds)


def fit_methods(
    reference: Reference, budget: Budget, compiled: Compiled, *, seed: int, model: str, only=None
) -> dict[str, Fitted]:
    """Every method of :func:`method_table` that applies to ``reference`` (those in ``only``, if given),
    in the table's order, fitted by :func:`fit_timed`, each seeded by ``seeds_for(seed, model, method)``.

    ``compiled`` holds what was compiled for ``reference.model`` (with ``budget``); ``model`` names it.
    """
    table = reference.method_table(budget)
    return {
        method: fit_timed(table[method], compiled, *seeds_for(seed, model, method))
        for method in table
        if only is None or method in only
    }


def score_fits(fitted: dict[str, Fitted], reference: Reference, **keys) -> tuple[list, list]:
    """Rows scoring each fit against ``reference.gaussian`` (:func:`models.approximations.score`).

    Returns one row per method (``keys``, e.g. ``model=name``, then ``method``, the scores, and the compile
    and fit seconds) and one row per (method, coefficient) with its ``sd_ratio``.
    """
    rows, ratio_rows = [], []
    for method, fit in fitted.items():
        scores, ratios = approx.score(fit.estimate, reference.gaussian)
        times = {"compile_seconds": fit.compile_seconds, "fit_seconds": fit.fit_seconds}
        rows.append(keys | {"method": method} | scores | times)
        ratio_rows += [
            keys | {"method": method, "coefficient": c, "sd_ratio": r}
            for c, r in zip(reference.names, ratios, strict=True)
        ]
    return rows, ratio_rows


def calibration_ranks(method: Method, compiled: Compiled, truth, datasets, seeds, n_draws: int):
    """Simulation-based calibration ranks of one method (:func:`models.approximations.sbc_ranks`).

    Parameters
    ----------
    method : Method
        Its budget should give ``n_draws`` draws where it draws (:class:`Budget`).
    compiled : Compiled
        Of the model the data sets are simulated from; each is set as its ``y_observed`` in turn.
    truth : array_like, shape (n_datasets, k)
    datasets : array_like, shape (n_datasets, n)
    seeds : sequence of int, one per data set
    n_draws : int
        Draws per data set: a Gaussian answer is sampled (with the data set's seed), draws are kept.

    Returns
    -------
    ndarray of int, shape (n_datasets, k)
    """
    built, _ = compiled.get(method.compile)
    draws = np.empty((len(datasets), n_draws, np.shape(truth)[1]))
    for i, (y, seed) in enumerate(zip(datasets, seeds, strict=True)):
        pm.set_data({"y_observed": y}, model=compiled.model)
        estimate, _ = _estimate_and_info(method.fit(built, seed))
        if isinstance(estimate, approx.Gaussian):
            estimate = estimate.draws(np.random.default_rng(seed), n_draws)
        draws[i] = np.reshape(estimate, (n_draws, -1))
    return approx.sbc_ranks(truth, draws)


def calibrate(
    chosen: dict[str, Method],
    compiled: Compiled,
    truth,
    datasets,
    *,
    seed: int,
    n_draws: int,
    bins: int,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Simulation-based calibration of several methods on the same data sets, each tested for uniform ranks.

    The model's ``y_observed`` is set to each data set in turn and restored at the end.

    Parameters
    ----------
    chosen : dict of str to Method
        The methods by name; ``name`` refits data set ``i`` with ``seeds_for(seed, "sbc", name, n)[i]``.
    compiled, truth, datasets, n_draws
        As for :func:`calibration_ranks`.
    bins : int
        Of :func:`models.approximations.rank_uniformity`.
    progress : callable or None
        Called with a line saying which method starts.

    Returns
    -------
    ranks : dict of str to ndarray of int, shape (n_datasets, k)
    table : pandas.DataFrame
        One row per (method, coefficient): ``chi2`` and ``p_value`` of its ranks, the method's Bonferroni
        ``p_value_bonferroni`` over the coefficients and its ``seconds``.
    """
    observed = compiled.model["y_observed"].get_value()
    ranks, rows = {}, []
    for name, method in chosen.items():
        if progress is not None:
            progress(f"SBC: {name} on {len(datasets)} data sets")
        start = time.perf_counter()
        seeds = seeds_for(seed, "sbc", name, n=len(datasets))
        ranks[name] = calibration_ranks(method, compiled, truth, datasets, seeds, n_draws)
        seconds = time.perf_counter() - start
        test = approx.rank_uniformity(ranks[name], n_draws, bins=bins)
        rows += [
            {"method": name, "coefficient": j, "chi2": s, "p_value": pv}
            | {"p_value_bonferroni": test.p_value, "seconds": seconds}
            for j, (s, pv) in enumerate(zip(test.statistic, test.p_values, strict=True))
        ]
    pm.set_data({"y_observed": observed}, model=compiled.model)
    return ranks, pd.DataFrame(rows)
