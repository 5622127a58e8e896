import numpy as np
import pandas as pd
import pytest
from conftest import run_fast
from sklearn.linear_model import BayesianRidge

from experiments import _cli, choosing_lambda
from models.evidence import Evidence

FILES = [
    "criteria.csv",
    "loo.csv",
    "choices.csv",
    "coefficients.csv",
    "bayesian_ridge.csv",
    "hierarchical.csv",
    "find_map.csv",
    "alpha_posterior.png",
    "coefficients.png",
    "criteria.png",
    "map_collapse.png",
    "posterior_well_conditioned.nc",
    "metadata.json",
]


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


def test_sklearn_objective_with_n_minus_1_rows_has_the_evidence_maximum(diabetes):
    evidence = Evidence(diabetes.X, diabetes.y)
    fit = BayesianRidge(tol=1e-14, max_iter=100_000).fit(diabetes.X, diabetes.y)
    start = np.log([fit.alpha_, fit.lambda_])
    evidence.n_rows = evidence.n_residual  # no extra row: the twin's own evidence
    alpha = choosing_lambda.sklearn_objective_argmax(evidence, start, hyperprior=0.0)
    np.testing.assert_allclose(alpha, Evidence(diabetes.X, diabetes.y).maximize(), rtol=1e-6)


@pytest.mark.slow
def test_find_map_collapses_tau_on_the_centered_hierarchical_model(diabetes):
    table = choosing_lambda.find_map_table(diabetes, (1.0,)).set_index("parametrization")
    assert table.tau["centered"] < 1e-4  # the posterior's 90% interval of tau is about 200-500
    assert table.beta_norm["centered"] < 1e-6
    assert table.tau["noncentered"] > 100.0


@pytest.mark.slow
def test_fast_run_writes_every_result(tmp_path):
    metadata = run_fast(choosing_lambda.main, tmp_path)
    for name in FILES:
        assert (tmp_path / name).stat().st_size > 0
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
    coefficients = pd.read_csv(tmp_path / "coefficients.csv")
    assert set(coefficients.method) == set(choosing_lambda.METHODS)


@pytest.mark.parametrize("argv", [["--data", "x.csv"], ["--seed", "abc"]])
def test_bad_arguments_are_a_one_line_error_with_exit_code_2(tmp_path, capsys, argv):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(choosing_lambda.main, argv + ["--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()
