import time

import numpy as np
import pandas as pd
import pytest

from experiments import scaling


def test_cells_too_big_are_skipped_with_a_reason(rng):
    config = scaling.Config(max_design_bytes=1e6)
    row = scaling.grid_cell(10**6, 1000, config, None, rng, draws=10, tune=10)
    assert row["skipped"] == "the design alone is 7.5 GiB (float64)"


@pytest.mark.slow
def test_cells_beyond_the_nuts_limit_fit_the_map_and_skip_nuts(rng):
    config = scaling.Config(max_nuts_p=3)
    fits = scaling.SuffstatFits(config.ridge_alpha)
    row = scaling.grid_cell(300, 4, config, fits, rng, draws=10, tune=10)
    assert row["nuts_skipped"] == "NUTS at p > 3 not run: too slow for the make-bench budget"
    assert "suffstat_ess_per_second" not in row
    # Newton on the normal equations vs scikit-learn's solver.
    assert row["map_rel_err_vs_ridge"] < 1e-9


def test_best_seconds_repeats_short_fits_and_runs_long_ones_once():
    calls = []

    def fit(pause=0.0):
        time.sleep(pause)
        calls.append(pause)
        return len(calls)

    assert scaling.best_seconds(fit, repeats=3)[0] == 3  # microseconds each: every repeat runs
    calls.clear()
    result, wall, cpu = scaling.best_seconds(lambda: fit(0.02), budget=0.01)
    assert result == 1
    assert wall >= 0.02
    assert cpu < 0.01  # sleeping costs no CPU time


def test_slopes_are_fitted_per_p_in_log_log():
    n = np.array([1e3, 1e4, 1e5])
    rows = [{"cell": "grid", "n": m, "p": 10, "map_seconds": 1e-6 * m} for m in n]
    rows += [{"cell": "grid", "n": m, "p": 100, "map_seconds": 1e-9 * m**2} for m in n]
    table = pd.DataFrame(rows).set_index(["cell", "n", "p"])
    found = scaling.slopes(table, "map_seconds")
    # A least-squares line through exact powers in log-log: rounding only.
    np.testing.assert_allclose([found[10], found[100]], [1.0, 2.0], rtol=1e-10)


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it, in ``make test-all``)."""
    table = pd.read_csv(tmp_path / "scaling.csv")
    assert set(table.cell) == {"headline", "grid"}
    assert table.query("cell == 'grid'").rows_skipped.notna().all()
    # Newton on the normal equations vs scikit-learn's solver, well-conditioned designs.
    assert (table.map_rel_err_vs_ridge < 1e-8).all()
