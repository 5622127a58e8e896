"""sparse_support: its tables' pieces, and the content checks of its fast run (``check_fast_run``, run by
``tests/test_experiments.py``)."""

import numpy as np
import pandas as pd
import pytest

from experiments import sparse_support
from models.sparse import sparse_truth


def test_support_table_counts_true_and_false_positives(rng):
    ds = sparse_truth(rng=rng, n_samples=30, n_features=6, n_nonzero=2)
    truth = ds.true_coef[1:] != 0.0
    estimate = truth.astype(float)
    estimate[np.flatnonzero(~truth)[0]] = 0.5  # one false positive
    estimate[np.flatnonzero(truth)[0]] = 0.0  # one false negative
    table = sparse_support.support_table(ds, {"lasso_cv_map": estimate}, sparse_support.FAST)
    row = table.loc["lasso_cv_map"]
    assert (row.true_positives, row.false_positives, row.false_negatives) == (1, 1, 1)
    assert row.f1 == pytest.approx(0.5)  # 2 TP / (2 TP + FP + FN) = 2 / 4, exact in binary


def test_best_f1_on_the_path_is_the_smallest_alpha_that_reaches_it():
    true_coef = np.array([2.0, 1.0, 0.0, 0.0])  # intercept first; one true non-zero
    path = {
        1.0: np.array([0.0, 0.0, 0.0]),  # nothing selected: F1 0
        0.5: np.array([0.8, 0.0, 0.0]),  # exact support: F1 1
        0.2: np.array([0.9, 0.0, 0.0]),  # exact support, smaller alpha
        0.1: np.array([0.95, 0.1, 0.0]),  # one false positive: F1 2/3
    }
    assert sparse_support.lasso_path_best_f1(path, true_coef) == (0.2, 1.0)


def test_nuts_seeds_are_the_last_two_of_the_stream_lasso_laplace_drew():
    config = sparse_support.FAST
    _, stream = np.random.default_rng(config.seed).spawn(2)
    drawn = stream.integers(2**31, size=len(config.nuts_fractions) + 2)
    assert sparse_support.nuts_seeds(config) == (drawn[-2], drawn[-1])


def check_fast_run(folder, metadata):
    """The fast run: every support row, the truth's support counted by each, and the horseshoe's settings."""
    metrics = metadata["metrics"]
    required = {
        "support_lasso_cv_map_f1",
        "support_laplace_posterior_f1",
        "support_horseshoe_posterior_f1",
        "support_lasso_path_best_f1",
        "horseshoe_divergences",
        "lasso_cv_alpha",
    }
    assert required <= set(metrics)
    support = pd.read_csv(folder / "support.csv", index_col="method")
    assert set(support.index) == {"lasso_cv_map", "laplace_posterior", "horseshoe_posterior"}
    n_true = sparse_support.FAST.sparse_shape[2]
    assert (support.true_positives + support.false_negatives == n_true).all()
    # The oracle picks its alpha knowing the truth: no worse than the Lasso at LassoCV's alpha.
    assert metrics["support_lasso_path_best_f1"] >= metrics["support_lasso_cv_map_f1"]
    assert metadata["config"]["horseshoe_target_accept"] == 0.99
    assert metadata["figures"] == ["support.png"]
    assert {"posterior_laplace.nc", "posterior_horseshoe.nc"} <= {p.name for p in folder.iterdir()}
