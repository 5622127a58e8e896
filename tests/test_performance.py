import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_fast
from sklearn.linear_model import Ridge

from experiments import performance
from models.linear import sufficient_statistics


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_statistics_in_chunks_equal_the_one_pass_statistics(rng, fit_intercept):
    X, y = performance.simulate(1003, 4, rng)
    w = rng.gamma(2.0, 0.5, size=y.size)
    kwargs = dict(sample_weight=w, fit_intercept=fit_intercept)
    chunked = sufficient_statistics(X, y, chunk_rows=100, **kwargs)
    whole = sufficient_statistics(X, y, chunk_rows=y.size, **kwargs)
    design = np.column_stack([np.ones(y.size), X]) if fit_intercept else X
    assert chunked.keys() == whole.keys()
    for name in whole:
        # The same sums in a different order.
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-12)
    np.testing.assert_allclose(whole["xtwx"], design.T @ (w[:, None] * design), rtol=1e-12)


def test_peak_memory_sees_an_allocation_after_reset():
    baseline = performance.reset_peak_memory()
    if np.isnan(baseline):
        pytest.skip("no /proc/self/clear_refs on this system")
    block = np.ones(50 * 2**20 // 8)  # 50 MiB, touched
    assert performance.peak_memory() - baseline >= 0.9 * block.nbytes
    del block
    after = performance.reset_peak_memory()
    assert performance.peak_memory() - after < 10 * 2**20


def test_cells_too_big_are_skipped_with_a_reason(rng):
    config = performance.Config(max_design_bytes=1e6)
    row = performance.grid_cell(10**6, 1000, config, None, rng, draws=10, tune=10)
    assert row["skipped"] == "the design alone is 7.5 GiB (float64)"


@pytest.mark.slow
def test_cells_beyond_the_nuts_limit_fit_the_map_and_skip_nuts(rng):
    config = performance.Config(max_nuts_p=3)
    fits = performance.SuffstatFits(config.ridge_alpha)
    row = performance.grid_cell(300, 4, config, fits, rng, draws=10, tune=10)
    assert row["nuts_skipped"] == "NUTS at p > 3 not run: too slow for the make-bench budget"
    assert "suffstat_ess_per_second" not in row
    # Newton on the normal equations vs scikit-learn's solver.
    assert row["map_rel_err_vs_ridge"] < 1e-9


def test_slopes_are_fitted_per_p_in_log_log():
    n = np.array([1e3, 1e4, 1e5])
    rows = [{"cell": "grid", "n": m, "p": 10, "map_seconds": 1e-6 * m} for m in n]
    rows += [{"cell": "grid", "n": m, "p": 100, "map_seconds": 1e-9 * m**2} for m in n]
    table = pd.DataFrame(rows).set_index(["cell", "n", "p"])
    found = performance.slopes(table, "map_seconds")
    np.testing.assert_allclose([found[10], found[100]], [1.0, 2.0], rtol=1e-10)


@pytest.mark.slow
def test_suffstat_map_compiled_once_matches_ridge_for_any_data(rng):
    fits = performance.SuffstatFits(ridge_alpha=3.0)
    for n in (50, 500):
        X, y = performance.simulate(n, 6, rng)
        coef, compile_seconds = fits.map(6, sufficient_statistics(X, y))
        ridge = Ridge(alpha=3.0).fit(X, y)
        # Newton on the normal equations vs scikit-learn's solver, well-conditioned design.
        np.testing.assert_allclose(coef, np.r_[ridge.intercept_, ridge.coef_], rtol=1e-9)
        assert (compile_seconds > 0) == (n == 50)


@pytest.mark.slow
@pytest.mark.extended
def test_performance_fast_run_writes_every_result(tmp_path):
    metadata = run_fast(performance.main, tmp_path)
    metadata["metrics"] |= json.loads((tmp_path / "timings" / "timings.json").read_text())[
        "metrics"
    ]
    for metric in [
        "suffstat_speedup_n1e5_p50",
        "nuts_seconds_n1e6_p100",
        "map_seconds_n1e6_p100",
        "ridge_seconds_n1e6_p100",
        "best_sampler_linear",
        "best_sampler_logistic",
    ]:
        assert metric in metadata["metrics"]
    scaling = pd.read_csv(tmp_path / "scaling.csv")
    assert set(scaling.cell) == {"headline", "grid"}
    assert scaling.query("cell == 'grid'").rows_skipped.notna().all()
    samplers = pd.read_csv(tmp_path / "samplers.csv")
    assert {"exact", "pymc"} <= set(samplers.sampler)
    for name in ["suffstat.csv", "path.csv", "samplers.png", "scaling_map.png", "scaling_nuts.png"]:
        assert (tmp_path / name).stat().st_size > 0
