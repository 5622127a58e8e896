"""priorlab's library: model *code* (builders, the penalty <-> prior dictionary, exact posteriors, fitting,
diagnostics, data and result writing). Artifacts live in ``results/``, experiments in ``experiments/``.

Modules
-------
penalties    scikit-learn penalty conventions <-> prior scales
linear       the linear-regression twin of Ridge (PyMC)
exact        closed-form posteriors, the oracle for every numerical method
fit          find_MAP with defaults, a precise MAP, NUTS (nutpie), compiled once
diagnostics  convergence, relative errors, MCSE z-scores
data         bundled, simulated and user data, validated once
results      atomic writes of tables, figures, posteriors and metadata.json
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
