"""exact_zeros: the content checks of its fast run (``check_fast_run``, run by ``tests/test_experiments.py``)."""

import numpy as np
import pandas as pd
import pytest

from experiments import exact_zeros


def test_posterior_summary_reads_draws_of_every_coefficient():
    draws = np.stack([np.linspace(-1.0, 1.0, 1001), np.linspace(2.0, 4.0, 1001)], axis=-1)
    summary = exact_zeros.posterior_summary(draws[None], np.array([0.101, 0.101]), exact_zeros.FAST)
    assert np.allclose(summary["posterior_median"], [0.0, 3.0])
    # Draws 0.002 apart: the 101 in [-0.1, 0.1] are within 0.101 of 0, the next ones (0.102) are not.
    assert np.allclose(summary["p_near_zero"], [101 / 1001, 0.0])
    assert np.allclose(summary["interval_low"], [-0.9, 2.1]) and np.allclose(
        summary["interval_high"], [0.9, 3.9]
    )


def check_fast_run(folder, metadata):
    """The fast run: the posterior at the NUTS points and at LassoCV's alpha, every feature, against the MAP."""
    metrics = metadata["metrics"]
    required = {"posterior_mass_near_zero", "prior_mass_near_zero", "laplace_nuts_rhat_max"}
    assert required <= set(metrics)
    nuts = pd.read_csv(folder / "nuts.csv")
    # The NUTS points (fast: one fraction of alpha_max) and the cross-validated alpha, every feature.
    assert nuts.alpha.nunique() == len(exact_zeros.FAST.nuts_fractions) + 1 == 2
    assert nuts.cv_alpha.sum() == exact_zeros.FAST.sparse_shape[1]
    assert (
        (nuts.interval_low <= nuts.posterior_median) & (nuts.posterior_median <= nuts.interval_high)
    ).all()
    at_zeros = nuts[~nuts.cv_alpha & (nuts.map_sparse == 0.0)]
    assert len(at_zeros) > 0  # the MAP has exact zeros there
    # The metric is this mean; the CSV round trip may cost the last digit.
    assert metrics["posterior_mass_near_zero"] == pytest.approx(
        at_zeros.p_near_zero.mean(), rel=1e-12
    )
    assert (at_zeros.p_near_zero < 1.0).all()  # no point mass at zero
    assert metadata["figures"] == ["posterior_vs_map.png"]
