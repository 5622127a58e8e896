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
