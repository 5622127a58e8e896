import time

import numpy as np
import pandas as pd
import pytest

from experiments import scaling
from models.data import DataError, standard_regression
from models.linear import (
    coefficient_precision,
    coefficient_whitening,
    linear_regression,
    sufficient_statistics,
)


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


WHITENING_CASES = {
    "unknown_noise": {},
    "known_noise_weighted_no_intercept": {
        "noise_sigma": 1.3,
        "fit_intercept": False,
        "weighted": True,
    },
    "diagonal_prior_cov": {"relative_prior_cov": [0.5, 1.0, 2.0, 1.5]},
    "full_prior_cov": {
        "relative_prior_cov": [[1.0, 0.3, 0, 0], [0.3, 2.0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    },
    "flat_prior": {"ridge_alpha": 0.0},
}


@pytest.mark.parametrize("case", WHITENING_CASES)
def test_whitened_suffstat_model_is_a_change_of_variables(rng, case):
    """At any ``(z, sigma**2)`` the whitened log density is the unwhitened one at ``theta = shift + sigma
    F z`` plus the log Jacobian's ``k log(sigma)``: the same posterior for ``(theta, sigma**2)``."""
    kwargs = {"ridge_alpha": 0.7} | WHITENING_CASES[case]
    X, y = standard_regression(30, 4, rng)
    if kwargs.pop("weighted", False):
        kwargs["sample_weight"] = rng.uniform(0.5, 2.0, size=len(y))
    plain = linear_regression(X, y, likelihood="suffstat", **kwargs)
    whitened = linear_regression(X, y, likelihood="suffstat", whiten=True, **kwargs)
    logp_plain, logp_whitened = plain.compile_logp(), whitened.compile_logp()
    shift, factor = (whitened[name].get_value() for name in ("coef_shift", "coef_factor"))
    first = int(kwargs.get("fit_intercept", True))
    for _ in range(3):
        z, log_sigma_squared = rng.normal(size=len(shift)), rng.normal(0.0, 0.5)
        sigma = kwargs.get("noise_sigma") or np.exp(log_sigma_squared / 2)
        theta = shift + sigma * factor @ z
        point, plain_point = {"coef_whitened": z}, {"beta": theta[first:]}
        if first:
            plain_point["intercept"] = theta[0]
        if "noise_sigma" not in kwargs:
            point["sigma_squared_log__"] = plain_point["sigma_squared_log__"] = log_sigma_squared
        jacobian = len(theta) * np.log(sigma)
        # Two evaluations of log densities of size ~1e2: rounding only.
        assert logp_whitened(point) == pytest.approx(logp_plain(plain_point) + jacobian, abs=1e-9)


def test_whitening_makes_the_coefficient_precision_the_identity(rng):
    X, y = standard_regression(50, 6, rng)
    design = np.column_stack([np.ones(len(y)), X])
    precision = design.T @ design + np.diag([0.0] + [2.0] * 6)  # the intercept's prior is flat
    stats = sufficient_statistics(X, y)
    np.testing.assert_allclose(coefficient_precision(stats, ridge_alpha=2.0), precision, rtol=1e-12)
    whitening = coefficient_whitening(stats, ridge_alpha=2.0)
    factor = whitening["coef_factor"]
    # One Cholesky factorization of a matrix with condition number ~1e2: rounding only.
    np.testing.assert_allclose(factor.T @ precision @ factor, np.eye(7), atol=1e-12)
    np.testing.assert_allclose(precision @ whitening["coef_shift"], design.T @ y, rtol=1e-12)


def test_whitening_needs_the_sufficient_statistics(rng):
    X, y = standard_regression(20, 3, rng)
    with pytest.raises(DataError, match="whiten=True needs likelihood='suffstat'"):
        linear_regression(X, y, ridge_alpha=1.0, whiten=True)


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
    # The whitened NUTS fits' means against Ridge: 5 MCSE over 11 coefficients, a chance failure about
    # once in 150,000 fits.
    assert (table.suffstat_max_mean_z < 5).all()
