import numpy as np
import pandas as pd
import xarray as xr

from experiments import glm_prediction
from models.diagnostics import marginal_summary

METRICS = [
    "max_abs_mean_minus_map_in_sd",
    "max_abs_median_minus_map_in_sd",
    "max_abs_skewness",
    "predictive_max_abs_map_plugin_minus_proba",
]


def check_fast_run(folder, metadata):
    """One NUTS fit per family, marginal summaries that agree with their own numbers, held-out patients whose
    predict_proba is the MAP's plug-in probability, and the posteriors written."""
    assert set(METRICS) <= set(metadata["metrics"])
    assert {"standardization", "reference"} <= set(metadata)
    nuts = pd.read_csv(folder / "nuts.csv")
    assert list(nuts.columns[:4]) == ["dataset", "family", "penalty", "feature"]
    fits = nuts.drop_duplicates(["dataset", "penalty"])
    assert list(fits.dataset) == ["breast_cancer", "counts"] and list(fits.penalty) == [1.0, 1e-2]
    assert nuts.groupby("dataset").size().to_dict() == {"breast_cancer": 31, "counts": 5}
    # The distances are the columns they are computed from (rounding of a CSV round trip only).
    np.testing.assert_allclose(
        nuts.mean_minus_map_sd, (nuts["mean"] - nuts["map"]) / nuts.sd, rtol=1e-12
    )
    assert ((nuts.q05 < nuts["median"]) & (nuts["median"] < nuts.q95)).all()
    predictive = pd.read_csv(folder / "predictive.csv")
    assert len(predictive) == glm_prediction.FAST.predictive_cases
    assert {"predict_proba", "posterior_mean", "posterior_median", "q05", "q95"} <= set(predictive)
    assert predictive.case.is_unique and set(predictive.label) <= {0, 1}
    # predict_proba is the MAP's plug-in probability: both stop within ~1e-11 of the mode.
    np.testing.assert_allclose(predictive.map_plugin, predictive.predict_proba, atol=1e-8)
    assert (predictive.q05 <= predictive.posterior_median).all()
    assert (predictive.posterior_median <= predictive.q95).all()
    posterior = xr.open_datatree(folder / "posterior_logistic.nc")
    assert posterior["posterior"]["beta"].shape[-1] == 30  # breast_cancer's 30 features


def test_marginal_summary_measures_distances_from_the_mode_in_posterior_sds(rng):
    """A skewed marginal (Gamma) and a symmetric one, with modes known in closed form."""
    shape = 4.0
    draws = np.column_stack([rng.gamma(shape, 1.0, 200_000), rng.normal(2.0, 3.0, 200_000)])
    mode = np.array([shape - 1.0, 2.0])
    summary = marginal_summary(draws[None], mode)
    # Gamma(4, 1): mean 4, SD 2, skewness 1; the mean lies (4 - 3) / 2 = 0.5 SD above the mode.
    # Bounds at about 5 Monte Carlo SDs of 200,000 draws (measured over 200 seeds: 0.002 for the
    # distance, 0.009 for the skewness; 0.2% relative for the SD).
    np.testing.assert_allclose(summary["mean_minus_map_sd"], [0.5, 0.0], atol=0.01)
    np.testing.assert_allclose(summary["skewness"], [1.0, 0.0], atol=0.05)
    np.testing.assert_allclose(summary["sd"], [2.0, 3.0], rtol=0.01)
    assert np.all(summary["q05"] < summary["median"]) and np.all(summary["median"] < summary["q95"])
    np.testing.assert_array_equal(summary["map"], mode)
