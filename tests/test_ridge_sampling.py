"""Content checks of the ridge_sampling fast run (run by ``tests/test_experiments.py``)."""

import pandas as pd
import pytest

from experiments import ridge_sampling
from models.diagnostics import z_bound


def check_fast_run(folder, metadata):
    nuts = pd.read_csv(folder / "nuts.csv")
    assert {"exact_mean", "nuts_mean", "mean_z", "sd_ratio", "rhat_max", "ess_bulk_min"} <= set(
        nuts.columns
    )
    assert set(nuts.noise) == {"known", "unknown"}
    assert set(nuts.alpha) == set(ridge_sampling.FAST.alphas)
    assert metadata["metrics"]["n_means_compared"] == len(nuts)


def test_the_bound_is_bonferroni_at_the_family_rate():
    """P(max of k |z| > bound) <= k P(|z| > bound) = the family rate: the two-sided normal quantile of
    rate / k; 1.96 for one z at 5%, 4.44 for the published 110 means at 0.1%."""
    assert z_bound(1, family_rate=0.05) == pytest.approx(
        1.959963984540054, rel=1e-12
    )  # a table value
    # The quantile is 4.4377: the docstring's 4.44, to two decimals.
    assert 4.43 < z_bound(110) < 4.45
    assert z_bound(220) > z_bound(110)  # more means, a wider bound
