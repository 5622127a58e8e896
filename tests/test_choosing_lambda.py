"""choosing_lambda: its tables' pieces, and the content checks of its fast run (``check_fast_run``, run by
``tests/test_experiments.py``). BayesianRidge's gap and find_MAP's collapse are tested with their library
functions in ``tests/test_evidence.py``."""

import numpy as np
import pandas as pd
import pytest

from experiments import _cli, choosing_lambda
from models.registry import ridge_reference


def test_ridgecv_minimizes_the_exact_leave_one_out_squared_error(diabetes):
    alphas = np.logspace(-5, 3, 81)
    table, ridgecv_alpha = choosing_lambda.criteria_table(diabetes, alphas)
    # RidgeCV's efficient LOO is exact: the same residuals as the rank-one downdate, up to rounding.
    np.testing.assert_allclose(table.ridgecv_loo_mse, table.exact_loo_mse, rtol=1e-9)
    assert ridgecv_alpha == alphas[int(np.argmin(table.exact_loo_mse))]


def check_fast_run(folder, metadata):
    """The fast run (simulated ``well_conditioned`` only): every table's rows, finite choices, and Ridge's
    coefficients at each."""
    config = choosing_lambda.FAST
    for metric in ["ridgecv_alpha", "bayesianridge_alpha", "evidence_max_alpha", "loo_best_alpha"]:
        assert np.isfinite(metadata["metrics"][f"well_conditioned_{metric}"])
    choices = pd.read_csv(folder / "choices.csv")
    assert set(choices.method) == {*choosing_lambda.METHODS, "loo_exact_best"}
    coefficients = pd.read_csv(folder / "coefficients.csv")
    assert set(coefficients.method) == set(choosing_lambda.METHODS)
    # One coefficient per method and term (intercept and 10 features), Ridge's at the method's alpha.
    assert coefficients.groupby("method").feature.nunique().eq(11).all()
    assert len(coefficients) == 11 * len(choosing_lambda.METHODS)
    chosen = dict(zip(choices.method, choices.alpha, strict=True))
    data = choosing_lambda.load("well_conditioned", np.random.default_rng(config.seed).spawn(2)[0])
    for method in choosing_lambda.METHODS:
        # The same Ridge(solver="svd") solve at the alpha written to full precision, up to rounding.
        np.testing.assert_allclose(
            coefficients[coefficients.method == method].coef,
            ridge_reference(data.X, data.y, ridge_alpha=chosen[method]),
            rtol=1e-12,
        )
    criteria = pd.read_csv(folder / "criteria.csv")
    assert len(criteria) == len(config.alphas)
    # RidgeCV's efficient LOO is the exact one on every grid point (its check, 1e-8, also holds here).
    assert metadata["checks"]["well_conditioned_ridgecv_is_exact_loo_mse"]["passed"]
    loo = pd.read_csv(folder / "loo.csv")
    np.testing.assert_allclose(
        loo.alpha, config.loo_alphas, rtol=1e-15
    )  # written to full precision
    bayesian_ridge = pd.read_csv(folder / "bayesian_ridge.csv")
    assert list(bayesian_ridge.quantity) == [
        "bayesianridge",
        "bayesianridge_converged",
        "sklearn_objective_max",
        "sklearn_objective_max_flat",
        "evidence_max",
    ]


@pytest.mark.parametrize("argv", [["--data", "x.csv"], ["--seed", "abc"]])
def test_bad_arguments_are_a_one_line_error_with_exit_code_2(tmp_path, capsys, argv):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(choosing_lambda.main, argv + ["--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()
