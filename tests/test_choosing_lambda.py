"""choosing_lambda: its tables' pieces, and the content checks of its fast run (``check_fast_run``, run by
``tests/test_experiments.py``)."""

import numpy as np
import pandas as pd
import pytest

from experiments import _cli, choosing_lambda


def test_ridgecv_minimizes_the_exact_leave_one_out_squared_error(diabetes):
    alphas = np.logspace(-5, 3, 81)
    table, ridgecv_alpha = choosing_lambda.criteria_table(diabetes, alphas)
    # RidgeCV's efficient LOO is exact: the same residuals as the rank-one downdate, up to rounding.
    np.testing.assert_allclose(table.ridgecv_loo_mse, table.exact_loo_mse, rtol=1e-9)
    assert ridgecv_alpha == alphas[int(np.argmin(table.exact_loo_mse))]


def test_bayesian_ridge_coef_is_ridge_at_its_alpha_and_sits_at_the_evidence_maximum(diabetes):
    table = choosing_lambda.bayesian_ridge_table(diabetes).set_index("quantity")
    assert table.coef_rel_err_vs_ridge["bayesianridge"] <= 1e-10  # the same SVD solve
    # Run to convergence, BayesianRidge lands on the maximum of its own objective (n rows, Gamma
    # hyperpriors), found here independently by Nelder-Mead.
    np.testing.assert_allclose(
        table.alpha["bayesianridge_converged"], table.alpha["sklearn_objective_max"], rtol=1e-6
    )
    # Its objective counts n rows where the twin's evidence has n - 1; that, not the hyperpriors, is
    # the gap to the evidence maximum, and it is far below the grid spacing (0.05 decades).
    gap = table.log10_alpha_minus_evidence_max
    assert abs(gap["sklearn_objective_max"] - gap["sklearn_objective_max_flat"]) < 1e-5
    assert 1e-4 < abs(gap["sklearn_objective_max_flat"]) < 0.01


@pytest.mark.slow
def test_find_map_collapses_tau_on_the_centered_hierarchical_model(diabetes):
    table = choosing_lambda.find_map_table(diabetes, (1.0,)).set_index("parametrization")
    assert table.tau["centered"] < 1e-4  # the posterior's 90% interval of tau is about 200-500
    assert table.beta_norm["centered"] < 1e-6
    assert table.tau["noncentered"] > 100.0


def check_fast_run(folder, metadata):
    """The fast run (simulated ``well_conditioned`` only): every table's rows, and finite choices."""
    config = choosing_lambda.FAST
    for metric in [
        "ridgecv_alpha",
        "bayesianridge_alpha",
        "evidence_max_alpha",
        "loo_best_alpha",
        "hierarchical_alpha_median",
        "hierarchical_alpha_q05",
        "hierarchical_alpha_q95",
        "hierarchical_map_tau",
    ]:
        assert np.isfinite(metadata["metrics"][f"well_conditioned_{metric}"])
    assert (
        metadata["metrics"]["well_conditioned_hierarchical_alpha_q05"]
        < metadata["metrics"]["well_conditioned_hierarchical_alpha_median"]
        < metadata["metrics"]["well_conditioned_hierarchical_alpha_q95"]
    )
    coefficients = pd.read_csv(folder / "coefficients.csv")
    assert set(coefficients.method) == set(choosing_lambda.METHODS)
    # One coefficient per method and term (intercept and 10 features); an interval for the posterior only.
    assert coefficients.groupby("method").feature.nunique().eq(11).all()
    hierarchical = coefficients[coefficients.method == "hierarchical"]
    assert (hierarchical.q05 < hierarchical.coef).all() and (
        hierarchical.coef < hierarchical.q95
    ).all()
    assert coefficients[coefficients.method != "hierarchical"].q05.isna().all()
    choices = pd.read_csv(folder / "choices.csv")
    assert set(choices.method) == {*choosing_lambda.METHODS, "loo_exact_best"}
    criteria = pd.read_csv(folder / "criteria.csv")
    assert len(criteria) == len(config.alphas)
    # RidgeCV's efficient LOO is the exact one on every grid point (its check, 1e-8, also holds here).
    assert metadata["checks"]["well_conditioned_ridgecv_is_exact_loo_mse"]["passed"]
    loo = pd.read_csv(folder / "loo.csv")
    np.testing.assert_allclose(
        loo.alpha, config.loo_alphas, rtol=1e-15
    )  # written to full precision
    assert set(pd.read_csv(folder / "hierarchical.csv").parametrization) == {"centered"}
    find_map = pd.read_csv(folder / "find_map.csv")
    assert set(find_map.parametrization) == {"centered", "noncentered"}
    assert len(find_map) == 2 * len(config.map_start_factors)


@pytest.mark.parametrize("argv", [["--data", "x.csv"], ["--seed", "abc"]])
def test_bad_arguments_are_a_one_line_error_with_exit_code_2(tmp_path, capsys, argv):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(choosing_lambda.main, argv + ["--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()
