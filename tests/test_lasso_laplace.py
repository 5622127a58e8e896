"""lasso_laplace: its tables' pieces, and the content checks of its fast run (``check_fast_run``, run by
``tests/test_experiments.py``)."""

import numpy as np
import pandas as pd
import pytest

from experiments import _cli, lasso_laplace


def test_fit_summary_counts_zero_pattern_disagreements():
    reference = np.array([1.0, 0.0, 2.0, 0.0, -1.0])
    exact = np.array([1.0, 0.0, 2.0 * (1 + 1e-9), 1e-12, -1.0])
    default = np.array([1.0, 1e-5, 2.1, -1e-4, -1.0])
    row = lasso_laplace.fit_summary("d", 0.1, reference, exact, default)
    assert (
        row["zero_pattern_agreement"] == 0.75
    )  # one of four features is non-zero where Lasso has 0
    # 1 + 1e-9 is stored to ~1e-16, which is 1e-7 of the 1e-9 it should give: rel=1e-6.
    assert row["max_rel_err_nonzero"] == pytest.approx(1e-9, rel=1e-6)
    assert row["default_zero_pattern_agreement"] == 0.5
    assert row["default_max_abs_at_zeros"] == pytest.approx(1e-4)  # |-1e-4| copied: exact


def test_unknown_flag_is_a_one_line_error_and_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(lasso_laplace.main, ["--seed", "abc", "--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()


def check_fast_run(folder, metadata):
    """The fast run: the path on both data sets with the Lasso's exact zeros, and ElasticNet's points."""
    metrics = metadata["metrics"]
    required = {
        "lasso_max_abs_err_map",
        "lasso_zero_pattern_agreement",
        "elasticnet_max_rel_err_map",
        "map_default_zero_pattern_agreement",
    }
    assert required <= set(metrics)
    assert metrics["lasso_zero_pattern_agreement"] == 1.0
    path = pd.read_csv(folder / "path.csv")
    assert list(path.columns[:3]) == ["dataset", "alpha", "feature"]
    assert {"diabetes", "sparse_truth"} == set(path.dataset)
    assert (path.lasso == 0.0).sum() > 0 and ((path.lasso == 0.0) == (path.map_sparse == 0.0)).all()
    fits = pd.read_csv(folder / "fits.csv")
    assert len(fits) == metrics["n_path_fits"] == len(path.groupby(["dataset", "alpha"]))
    # The simulated path: n_path points, exact_zeros' NUTS points (fast: one) and LassoCV's alpha.
    fast = lasso_laplace.FAST
    assert (fits.dataset == "sparse_truth").sum() == fast.n_path + len(fast.nuts_fractions) + 1
    enet = pd.read_csv(folder / "elasticnet.csv")
    assert set(enet.l1_ratio) == set(fast.l1_ratios) and set(enet.dataset) == set(path.dataset)
    assert ((enet.elasticnet == 0.0) == (enet.map_sparse == 0.0)).all()
