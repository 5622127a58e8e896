"""priorlab's experiments: one runnable module each, ``python -m experiments.<name>``.

Importing this package limits BLAS to one thread per process before NumPy loads (unless the caller set the
variables): sampler chains already run in parallel, and oversubscribing two cores was measured 3x slower.
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

EXPERIMENTS = {
    "ridge_equivalence": "Ridge is the MAP of a Normal prior: MAP vs Ridge vs exact posterior across the alpha path",
    "ridge_sampling": "NUTS samples the Ridge twin's exact posterior: means within MCSE bounds, SDs within 10%",
    "posterior_spread": "What the point estimate hides: posterior spread, correlation, prediction and calibration",
    "glm_equivalence": "LogisticRegression and PoissonRegressor are MAPs: twin MAP vs scikit-learn along C and alpha",
    "separation": "On separable data the logistic MAP grows without bound in C; the posterior stays proper",
    "glm_prediction": "The MAP is not the posterior: GLM posterior mean and median vs MAP; what predict_proba hides",
    "choosing_lambda": "Where alpha comes from: RidgeCV vs evidence (BayesianRidge) vs PSIS-LOO, three point choices",
    "hierarchical_alpha": "The whole posterior of alpha from a hierarchical twin vs quadrature; find_MAP collapses",
    "lasso_laplace": "The Lasso and ElasticNet are MAPs of Laplace(-Normal) priors, exact zeros included",
    "exact_zeros": "The Lasso's exact zeros sit inside a Laplace posterior with no mass at zero",
    "sparse_support": "Selecting features: LassoCV's zeros vs Laplace and horseshoe posterior intervals vs the truth",
    "approximations": "From a point to the whole posterior: MAP, Laplace, ADVI, Pathfinder, NUTS vs the exact answer",
    "twin_panel": "Every supported estimator's twin, on real and ill-conditioned tables: its MAP is the estimator",
    "twin_choices": "Why the twin samples standardized coordinates and certifies the l1 logistic (not saga)",
    "kernel_gp": "KernelRidge is a Gaussian process's posterior mean; full Bayes over its kernel vs type-II ML",
}
"""Every experiment, in the order ``make reproduce`` runs them, with its one-line claim."""

BENCHMARKS = {
    "performance": "Sufficient statistics vs row-wise NUTS, one compiled model for a path, a process pool",
    "scaling": "The twin's MAP vs Ridge and NUTS on sufficient statistics across n up to 1e6 and p up to 1000",
    "samplers": "PyMC's NUTS, nutpie, numpyro, blackjax and exact draws side by side: ESS per second",
    "first_answer": "Time to first answer: the twin vs bambi, fresh process to posterior file, cold and warm cache",
    "glm_scale": "Logistic and Poisson twins at n = 1e6, p = 100: Newton MAP, Laplace, PSIS-corrected draws vs NUTS",
    "out_of_core": "The Ridge twin on 1e8 Parquet rows: a streamed pass vs pyarrow's raw scan, here and on dask",
    "jax_samplers": "numpyro and blackjax on a GPU: full NUTS on the logistic twin at n = 1e6 vs the PSIS posterior",
}
"""Experiments that measure speed (``make bench``), not part of ``make reproduce``."""

TOOLS = {
    "report": "rebuild results/README.md from every experiment's metadata.json",
    "compare": "another results/ folder against the committed one: identical, equal to rounding, or within MC error",
    "inspect": "open a posterior file: summary table, convergence verdict, --plots DIR for trace/rank/forest/pair",
    "seed_study": "rerun experiments with seeds 1..N at their published settings: each check's failure rate",
    "twin": "the Bayesian twin of your own fitted estimator on your CSV: MAP check, posterior, predictive intervals",
}
"""Modules of this package that are commands but not experiments (``priorlab <tool>``, ``seed-study`` for
``seed_study``)."""
