"""priorlab's library: model *code*. Artifacts live in ``results/``, experiments in ``experiments/``.

Every module names what it offers in ``__all__``; anything else is internal. The modules stay one flat
package (``models.<module>``) and are grouped here by the stage of the work they serve: users' scripts and
every experiment import them as ``from models.exact import linear_posterior``, and subpackages would change
those paths without adding anything a reader cannot see from this map.

Twins: the Bayesian model of each penalized estimator
    registry       every twin kind in one place: estimators matched, penalty read, builder, reference refit,
                   MAP solver, exact posterior or NUTS, tolerance and its reason, prediction
    penalties      scikit-learn's penalty conventions <-> prior scales (the dictionary)
    linear         Ridge-type twins (isotropic, diagonal, full prior; known or Jeffreys' noise), sufficient statistics
    glm            logistic and Poisson twins; sparse: Lasso, ElasticNet, horseshoe; quantile, tweedie
                   (Gamma, Tweedie), kernel (KernelRidge as a Gaussian process): their twins
    twin           ``fit_twin``: the twin of a user's fitted estimator or pipeline; bayesian_twin: its
                   scikit-learn estimator, ``BayesianTwin``
Oracles: the exact answers everything is checked against
    exact          closed-form posteriors (Gaussian, Student-t) and the whitened design they share with
    evidence       the marginal likelihood in alpha, exact LOO, the hierarchical twin and its quadrature
Inference: from a model to a point or a posterior
    fit            find_MAP with PyMC's defaults, a precise MAP (Newton), NUTS (nutpie), compiled once; the
                   compiled log-density (gradient, Hessian) that every MAP and the Laplace approximation share
    approximations Laplace, ADVI, Pathfinder and their scores (W2, SD ratios, SBC); methods: the table of them
    loglik         the pointwise log-likelihood (PSIS-LOO); large_glm: Newton + Laplace + PSIS over row blocks
Checks
    diagnostics    convergence, relative errors, MCSE z-scores, pass/fail checks; calibration: coverage
Data, results and running
    data           bundled, simulated and user data, validated once (one exception type, ``DataError``);
                   glm_data: GLM data sets and paths; streaming: sufficient statistics from any source
    results        atomic result sets: tables, figures, posteriors, metadata.json; reading posteriors back
    executor       replicated fits in a process pool; measure: stopwatch, peak memory, timed samplers
"""

import os

# Compile numba code (nutpie's and PyMC's log-density) for a generic x86-64 CPU, not for this machine's: code
# generated for the host CPU gave other draws than generic code for the same seed (other instructions, other
# rounding), so a machine with another CPU would not reproduce the committed NUTS tables. Set
# NUMBA_CPU_NAME=host to override; it has no effect once numba was imported.
os.environ.setdefault("NUMBA_CPU_NAME", "generic")

import pytensor  # noqa: E402

# Without fast-math. With PyTensor's default fast-math flags (reassociation, contraction, approximate
# functions) the same model and seed gave other draws on a cold compile cache than on a warm one: a function
# loaded from the cache is linked, not inlined, and fast-math then rounds differently. Without them, cold and
# warm caches give the same bits (tested). Override with PYTENSOR_FLAGS=numba__fastmath=True.
if "numba__fastmath" not in os.environ.get("PYTENSOR_FLAGS", ""):
    pytensor.config.numba__fastmath = False
