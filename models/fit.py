"""Fitting a twin: the MAP as PyMC's defaults give it, a precise MAP, and NUTS.

:class:`CompiledDensity` is the one compiled core of the MAPs and the Laplace approximation: a model's
log-density over its free variables joined into one vector, with its gradient, Hessian and the map back to named
values, each compiled once at its first use. :class:`PreciseMAP` (Newton with the exact Hessian),
:class:`QuadraticMAP` (one Newton step with a known precision, gradient only),
:class:`models.sparse.SparseMAP` and :class:`models.approximations.Laplace` are built on it.

Every fit is compiled once per model structure. Data and prior scales are ``pm.Data``: change them with
``pm.set_data`` (MAP) or pass them to :func:`sample_nuts` (nutpie's ``with_data``) and refit without
recompiling.
"""

import functools
import warnings

import numpy as np
import pymc as pm
import pytensor
import scipy.linalg
import scipy.optimize
from pymc.pytensorf import join_nonshared_inputs
from pymc.util import get_default_varnames

__all__ = [
    "COMPILE_MODE",
    "map_default",
    "CompiledDensity",
    "PreciseMAP",
    "QuadraticMAP",
    "coefficients",
    "intercept_first",
    "posterior_coefficients",
    "compile_nuts",
    "sample_nuts",
    "RETRY_TARGET_ACCEPT",
    "sample_nuts_retrying",
]

COMPILE_MODE = "CVM"
"""PyTensor mode for the functions compiled here: the C backend. Its compiled pieces are cached per operation,
so a new model (another shape, other constants) compiled in 1.5-4 s here against 7-17 s with PyTensor 3's
default numba backend; at these sizes a fit takes milliseconds either way. nutpie keeps numba."""


def map_default(model: pm.Model) -> dict[str, np.ndarray]:
    """``pm.find_MAP`` as a user calls it: PyMC's defaults (L-BFGS-B from the model's initial point).

    Kept behind this one function because ``find_MAP``'s return type and starting-point jitter are announced
    to change in PyMC 6.4. Returns the values of the free variables and deterministics, untransformed.
    ``find_MAP`` compiles its functions at every call; they are compiled with PyTensor's C backend (mode
    ``"CVM"``) rather than PyTensor 3's default numba backend (``"FAST_RUN"`` is numba there too), which took
    several times longer to compile a new graph here (:data:`COMPILE_MODE`). The
    optimizer, its settings and its start are PyMC's defaults.
    """
    with warnings.catch_warnings(), pytensor.config.change_flags(mode=COMPILE_MODE):
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        return pm.find_MAP(model=model, progressbar=False, include_transformed=False)


class CompiledDensity:
    """A scalar function of a model's free variables joined into one vector, each piece compiled once.

    The vector joins the model's value variables (the unconstrained, transformed space) in the order of
    ``model.value_vars``, each raveled: :attr:`names`, :attr:`slices`, :meth:`ravel`, :meth:`unravel` and
    :meth:`index` say where each sits, and :attr:`initial_point` is the model's initial point. The function is
    ``model.logp(jacobian=False)`` by default: the log-density without the Jacobian terms of the transforms,
    what ``find_MAP`` maximizes and what :class:`PreciseMAP`, :class:`QuadraticMAP` and the Laplace
    approximation use. :class:`models.sparse.SparseMAP` passes its own graph (the smooth part of the negative
    log posterior).

    Every compiled piece (:attr:`value`, :attr:`gradient`, :attr:`value_gradient_hessian`,
    :attr:`named_values`) is built at its first use and then kept, so a caller pays only for what it asks:
    :class:`QuadraticMAP` compiles the gradient and never the ``p x p`` Hessian. A caller that times its
    compile apart from its fits asks for its pieces up front (:meth:`compile`). The layout alone compiles
    nothing but the model's initial point (:class:`models.approximations.CompiledPathfinder` uses it so).

    Parameters
    ----------
    model : pm.Model
    density_graph : TensorVariable or None
        A scalar graph of the model's value variables to compile in place of ``model.logp(jacobian=False)``.
    mode : str or pytensor Mode
        How the pieces are compiled (:data:`COMPILE_MODE` by default; see :class:`PreciseMAP`).
    """

    def __init__(self, model: pm.Model, *, density_graph=None, mode=COMPILE_MODE):
        self.model = model
        self.mode = mode
        self.initial_point = model.initial_point()
        self.names = [v.name for v in model.value_vars]
        sizes = [int(np.size(self.initial_point[name])) for name in self.names]
        offsets = np.cumsum([0, *sizes])
        self.slices = {
            name: slice(int(offsets[i]), int(offsets[i + 1])) for i, name in enumerate(self.names)
        }
        self.size = int(offsets[-1])
        self.joined_initial_point = self.ravel(self.initial_point)
        self._density_graph = density_graph

    def ravel(self, values: dict) -> np.ndarray:
        """The joined vector of a point given by name (every value variable)."""
        missing = set(self.names) - set(values)
        if missing:
            raise ValueError(
                f"the joined vector needs every free variable; missing {sorted(missing)}"
            )
        return np.concatenate([np.ravel(values[name]) for name in self.names]).astype(float)

    def unravel(self, x, names=None) -> dict[str, np.ndarray]:
        """The value variables ``names`` (all by default) at the joined vector ``x``, shaped as in the model
        (transformed space; no compiled function)."""
        names = self.names if names is None else names
        return {
            name: x[self.slices[name]].reshape(np.shape(self.initial_point[name])) for name in names
        }

    def index(self, names) -> np.ndarray:
        """Positions in the joined vector of the value variables ``names``, in that order."""
        return np.concatenate(
            [np.arange(self.slices[name].start, self.slices[name].stop) for name in names]
        )

    @functools.cached_property
    def _graphs(self):
        """The density and its gradient as graphs of the joined vector, and the vector itself."""
        graph = (
            self.model.logp(jacobian=False) if self._density_graph is None else self._density_graph
        )
        [density], joined = join_nonshared_inputs(
            self.initial_point, [graph], self.model.value_vars
        )
        return density, pytensor.grad(density, joined), joined

    def _compile(self, inputs, outputs, **kwargs):
        # Without a linked BLAS PyTensor warns of slow products; at these sizes a call takes milliseconds.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            return pytensor.function(inputs, outputs, mode=self.mode, **kwargs)

    @functools.cached_property
    def value(self):
        """Compiled ``x -> density``."""
        density, _, joined = self._graphs
        return self._compile([joined], density)

    @functools.cached_property
    def gradient(self):
        """Compiled ``x -> gradient of the density`` (``O(p**2)`` per call on a ``p x p`` quadratic form)."""
        _, grad, joined = self._graphs
        return self._compile([joined], grad)

    @functools.cached_property
    def value_gradient_hessian(self):
        """Compiled ``x -> [density, gradient, Hessian]``; the Hessian is one batched graph
        (``vectorize=True``) rather than a scan over its rows."""
        density, grad, joined = self._graphs
        hess = pytensor.gradient.jacobian(grad, joined, vectorize=True)
        return self._compile([joined], [density, grad, hess])

    @functools.cached_property
    def named_values(self):
        """Compiled ``x -> {name: value}``: the free variables (untransformed) and deterministics at ``x``."""
        outputs = get_default_varnames(self.model.unobserved_value_vars, include_transformed=False)
        values, joined = join_nonshared_inputs(self.initial_point, outputs, self.model.value_vars)
        function = self._compile([joined], values, on_unused_input="ignore")
        names = [v.name for v in outputs]
        return lambda x: dict(zip(names, function(x), strict=True))

    def compile(self, *pieces: str) -> None:
        """Compile the named pieces now (``"value_gradient_hessian"``, ``"named_values"``, ...): for a caller
        that times its compile apart from its fits."""
        for piece in pieces:
            getattr(self, piece)


class PreciseMAP:
    """The MAP to machine precision, compiled once for a model and reusable after ``pm.set_data``.

    Maximizes the log-density (without Jacobian terms, as ``find_MAP`` does) over the unconstrained values with
    a trust-region method using the exact Hessian, in coordinates scaled by the square root of the Hessian's
    diagonal at the start (Jacobi scaling: columns on scales 1e6 apart become well conditioned). The optimum is
    then polished with Newton steps and mapped back exactly (a division by the same scale). The log-density,
    its gradient and Hessian, and the map to named values are a :class:`CompiledDensity`, compiled here.

    Parameters
    ----------
    model : pm.Model
    mode : str or pytensor Mode
        How its functions are compiled: :data:`COMPILE_MODE` (C code, cached per operation) by default;
        ``"FAST_COMPILE"`` (Python implementations, no C compilation) answers sooner on a cold cache when the
        function is called a few times only, as one twin fit does.

    Attributes
    ----------
    compiled : CompiledDensity
    """

    def __init__(self, model: pm.Model, *, mode=COMPILE_MODE):
        self.model = model
        self.compiled = CompiledDensity(model, mode=mode)
        self.compiled.compile("value_gradient_hessian", "named_values")

    def __call__(self, start=None, *, max_steps: int = 200) -> dict[str, np.ndarray]:
        """Find the MAP for the model's current data.

        Newton's method with a backtracking line search while the scaled Hessian of the negative log-density
        is positive definite (always, for the concave Gaussian and GLM twins: one step solves a quadratic);
        scipy's trust-region ``trust-exact`` otherwise. The search stops when the Newton decrement falls to
        the rounding level of the log-density; a few full Newton steps, each kept only while it shrinks the
        gradient, then take the point to machine precision.

        Parameters
        ----------
        start : ndarray or None
            Starting point in the raveled unconstrained space; the model's initial point by default.
        max_steps : int

        Returns
        -------
        dict
            Variable name -> value at the MAP (untransformed); ``"_grad_norm"``: the final scaled gradient norm.
        """
        x = self.compiled.joined_initial_point if start is None else np.asarray(start, dtype=float)
        # Rescale at the first optimum found: the Hessian at the start can be far from the one at the mode.
        for _ in range(2):
            x, grad_norm = self._newton(x, max_steps=max_steps)
        values = self.compiled.named_values(x)
        values["_grad_norm"] = grad_norm
        return values

    def precision(self, values: dict, names) -> np.ndarray:
        """The negative Hessian of the log-density (no Jacobian terms) at a point, from the compiled function.

        Parameters
        ----------
        values : dict
            Values of the model's free variables, all untransformed (e.g. the MAP).
        names : sequence of str
            Variables whose block to return, rows and columns in this order.
        """
        _, _, hess = self.compiled.value_gradient_hessian(self.compiled.ravel(values))
        index = self.compiled.index(names)
        return -hess[np.ix_(index, index)]

    def _newton(self, x0, *, max_steps):
        _, _, hess0 = self.compiled.value_gradient_hessian(x0)
        scale = np.sqrt(np.abs(np.diag(hess0)))
        scale[scale == 0.0] = 1.0

        def objective(u):
            logp, grad, hess = self.compiled.value_gradient_hessian(u / scale)
            return -logp, -grad / scale, -hess / np.outer(scale, scale)

        u = x0 * scale
        value, grad, hess = objective(u)
        for _ in range(max_steps):
            try:
                step = -scipy.linalg.solve(hess, grad, assume_a="pos")
            except (np.linalg.LinAlgError, ValueError):
                result = scipy.optimize.minimize(
                    lambda v: objective(v)[0],
                    u,
                    jac=lambda v: objective(v)[1],
                    hess=lambda v: objective(v)[2],
                    method="trust-exact",
                    options={"gtol": 1e-10, "maxiter": 1000},
                )
                u = result.x
                value, grad, hess = objective(u)
                continue
            # Newton decrement: twice the predicted decrease; below rounding of the value, stop the search.
            if -(grad @ step) <= 1e-13 * max(1.0, abs(value)):
                break
            length = 1.0
            new = objective(u + step)
            while not new[0] <= value + 1e-4 * length * (grad @ step) and length > 1e-10:
                length /= 2.0
                new = objective(u + length * step)
            if length <= 1e-10:
                break
            u = u + length * step
            value, grad, hess = new
        # Polish: full Newton steps, each kept only while it shrinks the gradient (ends at rounding level).
        for _ in range(4):
            try:
                step = -scipy.linalg.solve(hess, grad, assume_a="pos")
            except (np.linalg.LinAlgError, ValueError):
                break
            new = objective(u + step)
            if not np.linalg.norm(new[1]) < np.linalg.norm(grad):
                break
            u = u + step
            value, grad, hess = new
        return u / scale, float(np.linalg.norm(grad))


class QuadraticMAP:
    """The MAP of a model whose log-density is quadratic in some of its free variables: a Newton step from the
    model's compiled gradient and a precision matrix that the caller knows in closed form.

    For a quadratic log-density (no Jacobian terms) in the variables ``names``, such as the linear twin's
    coefficients given the noise, one Newton step ``x + Q^-1 grad(x)`` from any point is the maximum over them
    (``Q``: the negative Hessian); a second step removes the rounding of the first. Only the gradient is
    compiled: it is ``O(p**2)`` per call on the sufficient-statistics twin, where :class:`PreciseMAP`'s
    compiled ``p x p`` Hessian (one Hessian-vector product per column, ``O(p**3)``) took 0.5 s per call and
    about a minute to compile at p = 1000. The other free variables stay at the model's initial point, so the
    precision passed in must be the one at that point.

    Parameters
    ----------
    model : pm.Model
    names : sequence of str
        The free variables the log-density is quadratic in; they must have no transform (their value
        variables carry the same names).
    mode : str or pytensor Mode
        How the gradient is compiled (:data:`COMPILE_MODE` by default).

    Attributes
    ----------
    start : dict
        The model's initial point (value variables), where the variables other than ``names`` are held.
    compiled : CompiledDensity
        The log-density; only its gradient is compiled.
    """

    def __init__(self, model: pm.Model, names, *, mode=COMPILE_MODE):
        self.compiled = CompiledDensity(model, mode=mode)
        self.start = self.compiled.initial_point
        if set(names) - set(self.compiled.names):
            raise ValueError(f"QuadraticMAP needs untransformed free variables, got {list(names)}")
        self.compiled.compile("gradient")
        self.names = list(names)
        self._index = self.compiled.index(self.names)

    def __call__(self, precision) -> dict[str, np.ndarray]:
        """The maximum over ``names`` for the model's current data.

        Parameters
        ----------
        precision : ndarray
            The negative Hessian of the log-density in ``names`` (rows and columns in that order) at the
            model's initial point; positive definite.

        Returns
        -------
        dict
            Name -> value at the maximum; ``"_grad_norm"``: the norm of the gradient in ``names`` there.
        """
        factor = scipy.linalg.cho_factor(precision)
        x = self.compiled.joined_initial_point.copy()
        for _ in range(2):
            x[self._index] += scipy.linalg.cho_solve(factor, self.compiled.gradient(x)[self._index])
        values = self.compiled.unravel(x, self.names)
        values["_grad_norm"] = float(np.linalg.norm(self.compiled.gradient(x)[self._index]))
        return values


def coefficients(values, *, names=("intercept", "beta")) -> np.ndarray:
    """Concatenate named parameters of a point (a dict of arrays) into one coefficient vector.

    Names missing from ``values`` (a model without intercept) are skipped.
    """
    return np.concatenate([np.atleast_1d(values[name]) for name in names if name in values])


def intercept_first(estimator, fit_intercept: bool = True) -> np.ndarray:
    """A fitted scikit-learn linear model's coefficients as one vector, intercept first (as :func:`coefficients`
    orders the twin's); without the intercept when ``fit_intercept`` is false."""
    coef = np.ravel(estimator.coef_)
    if not fit_intercept:
        return coef
    return np.concatenate([[float(np.ravel(estimator.intercept_)[0])], coef])


def posterior_coefficients(idata, *, names=("intercept", "beta")) -> np.ndarray:
    """Posterior draws of the coefficient vector, shape ``(chain, draw, n_coef)``."""
    posterior = idata["posterior"]
    parts = []
    for name in names:
        if name in posterior:
            values = posterior[name].values
            parts.append(values[..., None] if values.ndim == 2 else values)
    return np.concatenate(parts, axis=-1)


def compile_nuts(model: pm.Model):
    """Compile a model for nutpie once (numba backend); refit with new data through :func:`sample_nuts`."""
    import nutpie  # imported where it is used: 0.9 s of start-up that an exact posterior does not need

    return nutpie.compile_pymc_model(model)


def sample_nuts(
    compiled,
    *,
    seed: int,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    adaptation: str = "low_rank",
    target_accept: float = 0.8,
    **data,
):
    """Sample a compiled model with nutpie, after replacing its ``pm.Data`` values by ``data``.

    The mass matrix adaptation defaults to nutpie's ``low_rank``: on the diabetes ridge posterior at
    alpha = 1e-3 (strongly correlated serum coefficients) it gave a minimum bulk ESS of about 2,100 from
    2 x 1,000 draws where ``diag`` gave about 300. Its cost per draw grows with the dimension: on the
    sufficient-statistics ridge posterior at n = 1e4, p = 1000 (near-isotropic after diagonal scaling) it took
    499 s for 2 chains x 1,000 iterations where ``diag`` took 40 s, both at 15 leapfrog steps per draw and
    a similar ESS (942 and 1,048 from 1,000 draws; 2-core machine at load average 10). Raise
    ``target_accept`` (smaller steps) for posteriors with funnels, such as the horseshoe's.

    Returns
    -------
    xarray.DataTree
        With ``posterior`` and ``sample_stats`` groups; warm-up draws are not kept.
    """
    import nutpie

    if data:
        compiled = compiled.with_data(**data)
    return nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=chains,
        seed=seed,
        save_warmup=False,
        progress_bar=False,
        adaptation=adaptation,
        target_accept=target_accept,
    )


RETRY_TARGET_ACCEPT = 0.95
"""The smaller step size of the one retry of :func:`sample_nuts_retrying`."""


def sample_nuts_retrying(compiled, *, seed: int, target_accept: float = 0.8, **kwargs):
    """:func:`sample_nuts`, and once more with ``target_accept`` :data:`RETRY_TARGET_ACCEPT` (smaller steps,
    same seed) when the first run has divergent transitions: the standard remedy for a posterior whose
    curvature varies (a weak prior on nearly separated classes). Divergences left after the retry are
    reported by the caller's checks.

    Returns
    -------
    (xarray.DataTree, str)
        The draws, and what was done: empty when the first run had no divergences, else a sentence with
        the first run's count.
    """
    idata = sample_nuts(compiled, seed=seed, target_accept=target_accept, **kwargs)
    divergences = int(idata["sample_stats"]["diverging"].sum())
    if divergences == 0 or target_accept >= RETRY_TARGET_ACCEPT:
        return idata, ""
    retried = sample_nuts(compiled, seed=seed, target_accept=RETRY_TARGET_ACCEPT, **kwargs)
    note = (
        f"{divergences} divergent transitions at target_accept {target_accept:g}: sampled again at "
        f"{RETRY_TARGET_ACCEPT:g}"
    )
    return retried, note
