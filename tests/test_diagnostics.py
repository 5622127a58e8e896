import numpy as np
import pandas as pd
import pytest
import scipy.stats

from models import diagnostics


def test_nuts_health_reports_the_worst_fit_and_fails_its_checks_there():
    fits = pd.DataFrame(
        {
            "rhat_max": [1.002, 1.013, 1.004],
            "ess_bulk_min": [2400.0, 380.0, 1500.0],
            "ess_tail_min": [2000.0, 900.0, 1200.0],
            "divergences": [0, 0, 2],
            "retried": [False, True, False],
        }
    )
    metrics, targets = diagnostics.nuts_health(fits)
    assert metrics == {
        "max_nuts_rhat": 1.013,
        "min_nuts_ess_bulk": 380.0,
        "nuts_divergences": 2,
        "nuts_retried_fits": 1,
        "n_nuts_fits": 3,
    }
    checks = diagnostics.checks(targets)
    assert {name: check["passed"] for name, check in checks.items()} == {
        "nuts_rhat": False,
        "nuts_ess_bulk": False,
        "nuts_no_divergences": False,
    }
    _, healthy = diagnostics.nuts_health(fits.iloc[[0]])
    assert all(check["passed"] for check in diagnostics.checks(healthy).values())


def test_quantile_z_scores_are_small_at_the_true_quantiles_and_large_off_them(rng):
    draws = rng.standard_normal((2, 2000))  # independent draws: the MCSE is the iid one
    probs = [0.05, 0.5, 0.95]
    exact = scipy.stats.norm.ppf(probs)
    assert diagnostics.quantile_z_scores(draws, exact, probs).max() < 4.0  # 4 MCSE: 1 in 15,000
    # Off by 0.3 (9 MCSE of 4,000 draws at the 5% quantile, 15 at the median), each is flagged.
    assert diagnostics.quantile_z_scores(draws, exact + 0.3, probs).min() > 4.0


def test_correlation_table_lists_each_pair_once_sampled_beside_exact(rng):
    factor = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, -1.5, 0.5]])
    cov = factor @ factor.T
    draws = rng.standard_normal((2, 20_000, 3)) @ factor.T  # (chain, draw, coefficient)
    table = diagnostics.correlation_table(draws, cov, ["a", "b", "c"])
    assert list(table.index) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert table.index.names == ["feature", "other_feature"]
    sd = np.sqrt(np.diag(cov))
    expected = [
        cov[0, 1] / (sd[0] * sd[1]),
        cov[0, 2] / (sd[0] * sd[2]),
        cov[1, 2] / (sd[1] * sd[2]),
    ]
    np.testing.assert_allclose(table.exact, expected, rtol=1e-14)  # the same division
    # A correlation from 4e4 independent draws errs by (1 - r**2) / 200 <= 0.005; 0.03 is 6 of them.
    np.testing.assert_allclose(table.nuts, expected, atol=0.03)


def test_correlation_of_a_coefficient_without_spread_is_nan_or_uncorrelated_as_asked():
    """The third coefficient has zero variance (a point, or a feature ARD pruned): NaN in its row and column
    for a table shown to a user; 0 off the diagonal and 1 on it for scoring a point estimate."""
    cov = np.array([[4.0, -1.2, 0.0], [-1.2, 1.0, 0.0], [0.0, 0.0, 0.0]])
    undefined = diagnostics.correlation(cov)
    assert undefined[0, 1] == undefined[1, 0] == pytest.approx(-0.6, rel=1e-15)  # one division
    assert undefined[0, 0] == undefined[1, 1] == 1.0
    assert np.all(np.isnan(undefined[2])) and np.all(np.isnan(undefined[:, 2]))
    uncorrelated = diagnostics.correlation(cov, zero_variance="uncorrelated")
    np.testing.assert_array_equal(uncorrelated[:2, :2], undefined[:2, :2])
    np.testing.assert_array_equal(uncorrelated[2], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(uncorrelated[:, 2], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="zero_variance"):
        diagnostics.correlation(cov, zero_variance="zero")
