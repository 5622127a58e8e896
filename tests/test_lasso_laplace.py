import numpy as np
import pandas as pd
import pytest
from conftest import run_fast
from sklearn.linear_model import Lasso

from experiments import _cli, lasso_laplace
from models.sparse import sparse_truth


def test_alpha_max_is_where_the_lasso_becomes_all_zero(diabetes):
    alpha = lasso_laplace.alpha_max(diabetes)
    # A tight tolerance: with the default one, coordinate descent stops at 0 just below alpha_max too.
    for factor, all_zero in [(1 + 1e-9, True), (1 - 1e-3, False)]:
        lasso = Lasso(alpha=alpha * factor, tol=1e-12).fit(diabetes.X, diabetes.y)
        assert np.all(lasso.coef_ == 0.0) == all_zero


def test_path_alphas_are_decreasing_and_include_the_extra_points(diabetes):
    config = lasso_laplace.FAST
    alphas = lasso_laplace.path_alphas(diabetes, config, extra=(0.0123,))
    assert np.all(np.diff(alphas) < 0) and 0.0123 in alphas
    assert alphas[0] > lasso_laplace.alpha_max(diabetes)  # the path starts with an all-zero fit
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


@pytest.mark.slow
def test_fast_run_writes_every_result_and_passes_its_checks(tmp_path):
    metadata = run_fast(lasso_laplace.main, tmp_path)
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
    path = pd.read_csv(tmp_path / "path.csv")
    assert list(path.columns[:3]) == ["dataset", "alpha", "feature"]
    assert {"diabetes", "sparse_truth"} == set(path.dataset)
    assert (path.lasso == 0.0).sum() > 0 and ((path.lasso == 0.0) == (path.map_sparse == 0.0)).all()
    support = pd.read_csv(tmp_path / "support.csv", index_col="method")
    assert set(support.index) == {"lasso_cv_map", "laplace_posterior", "horseshoe_posterior"}
    for name in [
        "fits.csv",
        "elasticnet.csv",
        "nuts.csv",
        "path.png",
        "posterior_vs_map.png",
        "support.png",
        "posterior_laplace.nc",
        "posterior_horseshoe.nc",
    ]:
        assert (tmp_path / name).stat().st_size > 0
