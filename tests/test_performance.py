import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from models.data import standard_regression
from models.diagnostics import relative_error
from models.fit import intercept_first
from models.linear import SuffstatFits, sufficient_statistics


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_statistics_in_chunks_equal_the_one_pass_statistics(rng, fit_intercept):
    X, y = standard_regression(1003, 4, rng)
    w = rng.gamma(2.0, 0.5, size=y.size)
    kwargs = dict(sample_weight=w, fit_intercept=fit_intercept)
    chunked = sufficient_statistics(X, y, chunk_rows=100, **kwargs)
    whole = sufficient_statistics(X, y, chunk_rows=y.size, **kwargs)
    design = np.column_stack([np.ones(y.size), X]) if fit_intercept else X
    assert chunked.keys() == whole.keys()
    for name in whole:
        # The same sums in a different order.
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-12)
    # The same sums as one matrix product: rounding only (measured 1e-14).
    np.testing.assert_allclose(whole["xtwx"], design.T @ (w[:, None] * design), rtol=1e-12)


@pytest.mark.slow
def test_suffstat_map_compiled_once_matches_ridge_for_any_data(rng):
    fits = SuffstatFits(ridge_alpha=3.0)
    for n in (50, 500):
        X, y = standard_regression(n, 6, rng)
        coef, compile_seconds = fits.map(6, sufficient_statistics(X, y))
        ridge = Ridge(alpha=3.0).fit(X, y)
        # Newton on the normal equations vs scikit-learn's solver, well-conditioned design.
        np.testing.assert_allclose(coef, np.r_[ridge.intercept_, ridge.coef_], rtol=1e-9)
        assert (compile_seconds > 0) == (n == 50)


def test_suffstat_map_matches_ridge_on_a_wide_design(rng):
    """p = 1000, as in the scaling benchmark's widest cells: the Newton step on the statistics is Ridge."""
    X, y = standard_regression(1100, 1000, rng)
    coef, _ = SuffstatFits(ridge_alpha=1.0).map(1000, sufficient_statistics(X, y))
    ridge = Ridge(alpha=1.0).fit(X, y)
    # Uncentered normal equations vs scikit-learn's Cholesky on centered X, condition number ~1e3: the
    # benchmark's 1e-8.
    assert relative_error(coef, intercept_first(ridge)) <= 1e-8


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it, in ``make test-all``)."""
    suffstat = pd.read_csv(tmp_path / "suffstat.csv", index_col="likelihood")
    assert set(suffstat.index) == {"suffstat", "rows"}
    assert suffstat.max_mean_z.notna().all()
    path = pd.read_csv(tmp_path / "path.csv", index_col="fits")
    # Newton on the normal equations vs scikit-learn's solver, well-conditioned design.
    assert (path.last_rel_err_vs_ridge < 1e-8).all()
    assert "suffstat_speedup_n1e5_p50" in metadata["metrics"]
