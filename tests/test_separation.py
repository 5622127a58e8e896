from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from experiments import separation
from models import glm_data


def check_fast_run(folder, metadata):
    """The fast run's separable set: MAP = scikit-learn at every C, a slope that keeps growing, exact
    posteriors that cover their own MAP region, lbfgs without a penalty, and no NUTS at fast settings."""
    metrics = metadata["metrics"]
    assert metrics["separation_max_rel_err_map_precise"] <= 1e-6  # the target
    assert "separation_max_rel_err_map_default" not in metrics  # find_MAP is skipped when fast
    assert "reference" in metadata
    table = pd.read_csv(folder / "separation.csv")
    assert list(table.columns[:2]) == ["C", "feature"]
    assert "mean_z" not in table  # no NUTS points in the fast run
    slope = table[table.in_path & (table.feature == "x")]
    assert list(slope.C) == list(separation.FAST.path)
    assert np.all(
        np.diff(slope.map_precise) > 0
    )  # separable: the slope grows with C, never settles
    assert slope.map_precise.iloc[-1] > 10  # the path ends at C = 1e4, where the slope reads 16.2
    # The posterior mean sits above the MAP on the slope: the posterior leans toward larger slopes.
    assert np.all(slope.exact_mean > slope.map_precise)
    assert np.all((table.exact_q05 < table.exact_median) & (table.exact_median < table.exact_q95))
    unpenalized = pd.read_csv(folder / "unpenalized.csv")
    assert list(unpenalized.max_iter) == [10, 100, 10_000]
    # Separable: the loss goes to 0 without a penalty; lbfgs stops at its tol=1e-4 with 2e-4 (measured).
    assert unpenalized.mean_log_loss.iloc[-1] < 1e-3


@pytest.fixture(scope="module")
def separable():
    return glm_data.separable(np.random.default_rng(3))


def test_posterior_path_matches_sklearn_and_quadrature_brackets_the_mode(separable):
    """Two C values, no NUTS, no find_MAP: the precise MAP is scikit-learn's fit, the grid is closed."""
    x, y = separable
    config = replace(separation.FAST, path=(1.0, 100.0), posteriors=())
    table, grids, draws = separation.posterior_path(x, y, config, seeds=[])
    assert list(table.C) == [1.0, 1.0, 100.0, 100.0] and table.map_default.isna().all()
    # newton-cholesky at tol=1e-12 against Newton to machine precision (see test_glm).
    np.testing.assert_allclose(table.map_precise, table.sklearn, rtol=1e-8, atol=1e-10)
    assert table.grid_edge.max() <= 1e-12  # the box holds the posterior
    assert grids == {} and draws == {}


def test_lbfgs_without_penalty_stops_where_its_iterations_run_out(separable):
    x, y = separable
    fits = separation.unpenalized_fits(x, y)
    assert fits.convergence_warning.iloc[0]  # 10 iterations: scikit-learn says it did not converge
    assert fits.slope.iloc[0] < fits.slope.iloc[-1]  # more iterations, a larger slope: no maximum


def test_findings_add_the_nuts_sentence_only_when_nuts_ran():
    metrics = {
        "separation_max_rel_err_map_precise": 5e-12,
        "separation_max_grad_norm": 1e-15,
        "separation_slope_gain_per_decade": 4.4,
        "separation_map_slope_at_max_C": 16.2,
        "separation_unpenalized_slope_default_max_iter": 16.0,
        "separation_unpenalized_warned_default_max_iter": 0,
        "separation_mean_minus_map_in_sd_at_max_C": 1.69,
        "separation_max_grid_edge": 7e-15,
    }
    without = separation.findings(metrics)
    assert len(without) == 3 and "without a ConvergenceWarning" in without[1]
    assert "1.69 posterior SDs above the MAP" in without[2]
    sampled = metrics | {
        "separation_max_nuts_mean_z": 1.69,
        "separation_max_nuts_sd_ratio_err": 0.045,
        "max_nuts_rhat": 1.0018,
        "nuts_divergences": 0,
        "n_nuts_fits": 2,
    }
    assert separation.findings(sampled)[3].startswith("NUTS (2 fits)")
