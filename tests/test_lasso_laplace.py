"""lasso_laplace: its tables' pieces, and the content checks of its fast run (``check_fast_run``, run by
``tests/test_experiments.py``)."""

import numpy as np
import pandas as pd
import pytest

from experiments import _cli, lasso_laplace
from models.sparse import lasso_alpha_max, sparse_truth


def test_path_alphas_are_decreasing_and_include_the_extra_points(diabetes):
    config = lasso_laplace.FAST
    alphas = lasso_laplace.path_alphas(diabetes, config, extra=(0.0123,))
    assert np.all(np.diff(alphas) < 0) and 0.0123 in alphas
    assert alphas[0] > lasso_alpha_max(
        diabetes.X, diabetes.y
    )  # the path starts with an all-zero fit
    assert len(alphas) == config.n_path + 1


def test_fit_summary_counts_zero_pattern_disagreements():
    reference = np.array([1.0, 0.0, 2.0, 0.0, -1.0])
    exact = np.array([1.0, 0.0, 2.0 * (1 + 1e-9), 1e-12, -1.0])
    default = np.array([1.0, 1e-5, 2.1, -1e-4, -1.0])
    row = lasso_laplace.fit_summary("d", 0.1, reference, exact, default)
    assert (
        row["zero_pattern_agreement"] == 0.75
    )  # one of four features is non-zero where Lasso has 0
    assert row["max_rel_err_nonzero"] == pytest.approx(1e-9, rel=1e-6)
    assert row["default_zero_pattern_agreement"] == 0.5
    assert row["default_max_abs_at_zeros"] == pytest.approx(1e-4)


def test_support_table_counts_true_and_false_positives(rng):
    ds = sparse_truth(rng=rng, n_samples=30, n_features=6, n_nonzero=2)
    truth = ds.true_coef[1:] != 0.0
    estimate = truth.astype(float)
    estimate[np.flatnonzero(~truth)[0]] = 0.5  # one false positive
    estimate[np.flatnonzero(truth)[0]] = 0.0  # one false negative
    table = lasso_laplace.support_table(ds, {"lasso_cv_map": estimate}, lasso_laplace.FAST)
    row = table.loc["lasso_cv_map"]
    assert (row.true_positives, row.false_positives, row.false_negatives) == (1, 1, 1)
    assert row.f1 == pytest.approx(0.5)


def test_unknown_flag_is_a_one_line_error_and_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(lasso_laplace.main, ["--seed", "abc", "--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()


def check_fast_run(folder, metadata):
    """The fast run: the path on both data sets with the Lasso's exact zeros, and every support row."""
    metrics = metadata["metrics"]
    required = {
        "lasso_max_abs_err_map",
        "lasso_zero_pattern_agreement",
        "elasticnet_max_rel_err_map",
        "posterior_mass_near_zero",
        "support_lasso_cv_map_f1",
        "support_horseshoe_posterior_f1",
        "horseshoe_divergences",
    }
    assert required <= set(metrics)
    assert metrics["lasso_zero_pattern_agreement"] == 1.0
    path = pd.read_csv(folder / "path.csv")
    assert list(path.columns[:3]) == ["dataset", "alpha", "feature"]
    assert {"diabetes", "sparse_truth"} == set(path.dataset)
    assert (path.lasso == 0.0).sum() > 0 and ((path.lasso == 0.0) == (path.map_sparse == 0.0)).all()
    fits = pd.read_csv(folder / "fits.csv")
    assert len(fits) == metrics["n_path_fits"] == len(path.groupby(["dataset", "alpha"]))
    nuts = pd.read_csv(folder / "nuts.csv")
    # The NUTS points (fast: one fraction of alpha_max) and the cross-validated alpha, every feature.
    assert nuts.alpha.nunique() == len(lasso_laplace.FAST.nuts_fractions) + 1 == 2
    assert nuts.cv_alpha.sum() == lasso_laplace.FAST.sparse_shape[1]
    assert (
        (nuts.interval_low <= nuts.posterior_median) & (nuts.posterior_median <= nuts.interval_high)
    ).all()
    support = pd.read_csv(folder / "support.csv", index_col="method")
    assert set(support.index) == {"lasso_cv_map", "laplace_posterior", "horseshoe_posterior"}
    n_true = lasso_laplace.FAST.sparse_shape[2]
    assert (support.true_positives + support.false_negatives == n_true).all()
    assert metadata["config"]["horseshoe_target_accept"] == 0.99
