import pandas as pd
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
