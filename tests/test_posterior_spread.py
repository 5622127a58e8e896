import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats
import xarray as xr

from experiments import posterior_spread
from models import calibration
from models.exact import linear_posterior
from models.fit import compile_nuts
from models.linear import linear_regression


@pytest.fixture
def design(rng):
    return rng.standard_normal((60, 4))


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.5])
@pytest.mark.parametrize("level", [0.5, 0.9, 0.95])
def test_coverage_of_shifted_normal_intervals_matches_known_answer(rng, level, shift):
    # Interval m -/+ z around m ~ N(theta + shift, 1) covers theta with probability
    # Phi(z - shift) - Phi(-z - shift); shift = 0 is a calibrated interval.
    size = (4000, 3)
    theta = rng.standard_normal(size)
    m = theta + shift + rng.standard_normal(size)
    z = scipy.special.ndtri((1 + level) / 2)
    result = calibration.coverage(calibration.covers(m - z, m + z, theta), level=level)
    expected = scipy.special.ndtr(z - shift) - scipy.special.ndtr(-z - shift)
    assert abs(result.coverage - expected) / result.mcse < 4  # 4 MCSE: fails once in ~15,000 runs
    # Independent intervals: the error is the binomial one (or the floor when that is larger).
    binomial = np.sqrt(expected * (1 - expected) / theta.size)
    # The between-replication SE is estimated from 4,000 replications: measured at most 3% off over the
    # nine cases, so 10% leaves room.
    assert result.mcse == pytest.approx(
        max(binomial, np.sqrt(level * (1 - level) / theta.size)), rel=0.1
    )


def test_coverage_error_counts_replications_not_intervals(rng):
    # Ten identical copies of each replication's hit carry the information of one: the error must be
    # sqrt(p (1 - p) / R), not sqrt(p (1 - p) / (10 R)).
    hits = np.repeat(rng.random((2000, 1)) < 0.9, 10, axis=1)
    result = calibration.coverage(hits, level=0.9)
    # Estimated from 2,000 replications: its own error is a few percent (measured 0.5%).
    assert result.mcse == pytest.approx(np.sqrt(0.9 * 0.1 / 2000), rel=0.1)
    assert result.n_replications == 2000 and result.n_intervals == 20000


def test_coverage_error_is_not_zero_when_every_interval_covers():
    result = calibration.coverage(np.ones((30, 11), dtype=bool), level=0.95)
    assert result.coverage == 1.0
    assert result.mcse == pytest.approx(np.sqrt(0.95 * 0.05 / 330))  # the floor's own formula


def test_coverage_rejects_a_single_replication():
    with pytest.raises(ValueError, match="n_replications >= 2"):
        calibration.coverage(np.ones((1, 5), dtype=bool), level=0.9)


def test_draw_intervals_match_exact_quantiles(rng, design):
    y = design @ [1.0, -1.0, 0.5, 0.0] + rng.standard_normal(60)
    posterior = linear_posterior(design, y, ridge_alpha=1.0, noise_sigma=None)
    draws = posterior.draws(rng, 400_000)
    lower, upper = calibration.draw_intervals(draws, [0.5, 0.9])
    exact_lower, exact_upper = calibration.exact_intervals(posterior, [0.5, 0.9])
    # A 5% quantile of 4e5 independent draws has an error near 0.003 SD; 0.02 SD is about 7 of them.
    np.testing.assert_allclose(lower, exact_lower, atol=0.02 * posterior.sd.max())
    np.testing.assert_allclose(upper, exact_upper, atol=0.02 * posterior.sd.max())
    # The same Student-t quantile at (1 - 0.9) / 2, which is 0.05 to 1 ulp.
    np.testing.assert_allclose(exact_lower[1], posterior.quantile(0.05)[0], rtol=1e-12)


def test_exact_predictive_interval_covers_simulated_new_observations(rng, design):
    y = 3.0 + design @ [1.0, -1.0, 0.5, 0.0] + 2.0 * rng.standard_normal(60)
    posterior = linear_posterior(design, y, ridge_alpha=0.5, noise_sigma=None)
    x_new = rng.standard_normal((5, 4))
    lower, upper = calibration.exact_predictive_interval(posterior, x_new, 0.9)
    # Simulate the predictive: sigma**2 from its inverse-gamma posterior, coefficients given sigma,
    # noise.
    size = 200_000
    sigma2 = posterior.noise_rate / rng.gamma(posterior.noise_shape, 1.0, size=size)
    unit = posterior.scale_factor / np.sqrt(posterior.noise_rate / posterior.noise_shape)
    coef = posterior.mean + np.sqrt(sigma2)[:, None] * (rng.standard_normal((size, 5)) @ unit.T)
    design_new = np.column_stack([np.ones(5), x_new])
    y_new = coef @ design_new.T + np.sqrt(sigma2)[:, None] * rng.standard_normal((size, 5))
    inside = calibration.covers(lower, upper, y_new).mean(axis=0)
    # Binomial error of a 0.9 frequency over 2e5 draws is 0.00067; 0.004 is 6 of them.
    np.testing.assert_allclose(inside, 0.9, atol=0.004)


def test_exact_predictive_interval_needs_the_unknown_noise_posterior(rng, design):
    posterior = linear_posterior(design, rng.standard_normal(60), ridge_alpha=1.0, noise_sigma=1.0)
    with pytest.raises(ValueError, match="unknown-noise"):
        calibration.exact_predictive_interval(posterior, design, 0.9)


def test_prior_datasets_follow_the_prior(rng, design):
    alpha, (shape, rate) = 0.3, (3.0, 2.0)
    sim = calibration.linear_prior_datasets(
        design, ridge_alpha=alpha, size=20_000, rng=rng, noise_prior=(shape, rate), intercept=1.5
    )
    assert sim.truth.shape == (20_000, 5) and sim.y.shape == (20_000, 60)
    np.testing.assert_array_equal(sim.truth[:, 0], 1.5)
    standardized = sim.truth[:, 1:] * np.sqrt(alpha) / sim.sigma[:, None]
    noise = (sim.y - 1.5 - sim.truth[:, 1:] @ design.T) / sim.sigma[:, None]
    # p < 1e-4 comes once in 10,000 for a correct simulator (fixed seed: reproducible); a scale 5% off
    # moves the KS distance by ~0.012, above its critical ~0.008 at 80,000 values.
    for sample in (standardized.ravel(), noise.ravel()[:100_000]):
        assert scipy.stats.kstest(sample, "norm").pvalue > 1e-4
    precision = 1.0 / sim.sigma**2  # Gamma(shape, rate)
    # As above: a false alarm once in 10,000.
    assert scipy.stats.kstest(precision, scipy.stats.gamma(shape, scale=1 / rate).cdf).pvalue > 1e-4


def test_jeffreys_prior_cannot_simulate_data_sets(design):
    with pytest.raises(ValueError, match="proper noise prior"):
        calibration.linear_prior_datasets(
            design, ridge_alpha=1.0, size=10, rng=np.random.default_rng(3), noise_prior=(0.0, 0.0)
        )


def test_same_seed_gives_same_data_sets(design):
    draws = [
        calibration.linear_prior_datasets(
            design, ridge_alpha=1.0, size=10, rng=np.random.default_rng(3), noise_prior=(1.0, 1.0)
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(draws[0].y, draws[1].y)


def test_exact_posterior_is_calibrated_on_prior_draws_and_not_with_a_narrow_prior(rng, design):
    prior = (1.0, 1.0)
    sim = calibration.linear_prior_datasets(
        design, ridge_alpha=0.2, size=600, rng=rng, noise_prior=prior
    )
    levels = (0.5, 0.9)
    right = calibration.exact_coverage_hits(
        design, sim.y, sim.truth, ridge_alpha=0.2, levels=levels, noise_prior=prior
    )
    narrow = calibration.exact_coverage_hits(
        design, sim.y, sim.truth, ridge_alpha=2000.0, levels=levels, noise_prior=prior
    )
    for level, hits, narrow_hits in zip(levels, right, narrow, strict=True):
        assert abs(calibration.coverage(hits, level=level).z) < 4  # 4 MCSE
        # A prior 100x too narrow in SD shrinks the intervals far away from the truth.
        assert calibration.coverage(narrow_hits, level=level).z < -10


def test_coverage_rows_give_each_level_its_coverage_and_z(rng):
    levels = (0.5, 0.9)
    hits = rng.random((2, 40, 3)) < np.array(levels)[:, None, None]
    rows = calibration.coverage_rows(hits, levels)
    assert [row["level"] for row in rows] == [0.5, 0.9]
    for row, level_hits, level in zip(rows, hits, levels, strict=True):
        expected = calibration.coverage(level_hits, level=level)
        assert row == expected._asdict() | {"z": expected.z}
        assert row["z"] == (row["coverage"] - level) / row["mcse"]


def exact_draws_tree(posterior, rng, n_draws: int):
    """Independent draws of the unknown-noise posterior as a two-chain ``posterior`` group, as NUTS's."""
    sigma2 = posterior.noise_rate / rng.gamma(posterior.noise_shape, 1.0, size=2 * n_draws)
    unit = posterior.scale_factor / np.sqrt(posterior.noise_rate / posterior.noise_shape)
    z = rng.standard_normal((2 * n_draws, unit.shape[1])) @ unit.T
    coef = (posterior.mean + np.sqrt(sigma2)[:, None] * z).reshape(2, n_draws, -1)
    dims = ("chain", "draw")
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {
                    "intercept": (dims, coef[..., 0]),
                    "beta": ((*dims, "feature"), coef[..., 1:]),
                    "sigma": (dims, np.sqrt(sigma2).reshape(2, n_draws)),
                }
            )
        }
    )


def test_interval_table_sets_draws_beside_the_exact_posterior(rng, design):
    y = design @ [1.0, -1.0, 0.5, 0.0] + rng.standard_normal(60)
    posterior = linear_posterior(design, y, ridge_alpha=1.0, noise_sigma=None)
    draws = posterior.draws(rng, 40_000).reshape(2, 20_000, -1)
    table = calibration.interval_table(draws, posterior, 0.9)
    assert list(table.index) == list(posterior.names) and table.index.name == "feature"
    np.testing.assert_array_equal(table.exact_mean, posterior.mean)
    np.testing.assert_array_equal(table.exact_sd, posterior.sd)
    # (1 - 0.9) / 2 is 0.05 to rounding: the same quantile function at a probability 1 ulp apart.
    np.testing.assert_allclose(table.exact_lower, posterior.quantile(0.05)[0], rtol=1e-12)
    np.testing.assert_allclose(table.exact_upper, posterior.quantile(0.95)[0], rtol=1e-12)
    assert table.mean_z.max() < 4.0  # independent draws of the same posterior; 4 MCSE: 1 in ~3,000
    # SD and 5%/95% quantiles of 4e4 independent draws err by about 0.004 and 0.01 SD; 0.05 is 5+ of them.
    np.testing.assert_allclose(table.nuts_sd, table.exact_sd, rtol=0.05)
    for bound in ("lower", "upper"):
        np.testing.assert_allclose(
            table[f"nuts_{bound}"], table[f"exact_{bound}"], atol=0.05 * posterior.sd.max()
        )
    for prefix in ("", "exact_"):
        lower, upper = table[f"{prefix or 'nuts_'}lower"], table[f"{prefix or 'nuts_'}upper"]
        np.testing.assert_array_equal(table[f"{prefix}contains_zero"], (lower <= 0) & (upper >= 0))
    # Coefficients of +-1 measured on 60 rows with unit noise (SD ~0.13) are told apart from 0.
    assert not table.exact_contains_zero[["x0", "x1"]].any()


def test_predictive_table_draws_agree_with_the_exact_predictive_interval(rng, design):
    y = 3.0 + design @ [1.0, -1.0, 0.5, 0.0] + 2.0 * rng.standard_normal(60)
    posterior = linear_posterior(design, y, ridge_alpha=0.5, noise_sigma=None)
    x_new, y_new = rng.standard_normal((8, 4)), rng.normal(3.0, 4.0, size=8)
    index = pd.Index(np.arange(100, 108), name="obs_id")
    table, y_rep = calibration.predictive_table(
        exact_draws_tree(posterior, rng, 20_000),
        posterior,
        x_new,
        y_new,
        level=0.9,
        rng=rng,
        index=index,
    )
    assert y_rep.shape == (2, 20_000, 8)
    assert table.index.equals(index)
    np.testing.assert_array_equal(table.observed, y_new)
    exact_lower, exact_upper = calibration.exact_predictive_interval(posterior, x_new, 0.9)
    np.testing.assert_array_equal(table.exact_lower, exact_lower)
    # A 5% quantile of 4e4 independent draws errs by about 0.01 predictive SDs; 0.05 is 5 of them.
    half_width = (exact_upper - exact_lower) / 2
    np.testing.assert_allclose(table.nuts_lower, exact_lower, atol=0.05 * half_width.max())
    np.testing.assert_allclose(table.nuts_upper, exact_upper, atol=0.05 * half_width.max())
    np.testing.assert_array_equal(
        table.covered, (table.nuts_lower <= y_new) & (y_new <= table.nuts_upper)
    )
    np.testing.assert_array_equal(
        table.exact_covered, (exact_lower <= y_new) & (y_new <= exact_upper)
    )


@pytest.fixture(scope="module")
def small_twin():
    """A compiled unknown-noise twin of a small design, under the proper InverseGamma(1, 1) noise prior."""
    X = np.random.default_rng(11).standard_normal((30, 2))
    model = linear_regression(X, np.zeros(30), ridge_alpha=1.0, noise_prior=(1.0, 1.0))
    return X, compile_nuts(model)


@pytest.mark.slow
def test_prior_calibration_counts_exact_and_nuts_hits_on_the_same_data_sets(small_twin):
    X, compiled = small_twin
    levels, noise_prior, seeds = (0.5, 0.9), (1.0, 1.0), [5, 6, 7]
    coverage, fits = calibration.prior_calibration(
        X,
        compiled,
        ridge_alpha=1.0,
        levels=levels,
        n_exact=40,
        rng=np.random.default_rng(3),
        seeds=seeds,
        noise_prior=noise_prior,
        scale_factors=(0.1,),
        draws=1000,
        tune=500,
        chains=2,
    )
    sim = calibration.linear_prior_datasets(
        X, ridge_alpha=1.0, size=40, rng=np.random.default_rng(3), noise_prior=noise_prior
    )
    assert list(coverage.columns[:3]) == ["method", "prior_scale_factor", "level"]
    assert list(zip(coverage.method, coverage.prior_scale_factor, strict=True)) == [
        ("exact", 1.0),
        ("exact", 1.0),
        ("exact", 0.1),
        ("exact", 0.1),
        ("nuts", 1.0),
        ("nuts", 1.0),
    ]
    for factor, rows in coverage[coverage.method == "exact"].groupby("prior_scale_factor"):
        # A prior `factor` times the generating SD is Ridge's alpha / factor**2.
        hits = calibration.exact_coverage_hits(
            X, sim.y, sim.truth, ridge_alpha=1.0 / factor**2, levels=levels, noise_prior=noise_prior
        )
        assert rows.to_dict("records") == [
            {"method": "exact", "prior_scale_factor": factor} | row
            for row in calibration.coverage_rows(hits, levels)
        ]
    assert [fit["fit"] for fit in fits] == ["calibration_0", "calibration_1", "calibration_2"]
    np.testing.assert_array_equal([fit["true_sigma"] for fit in fits], sim.sigma[:3])
    assert all(fit["seconds"] > 0 and fit["divergences"] == 0 for fit in fits)

    # NUTS's intervals on the first data sets: the exact ones up to Monte Carlo error, so every truth
    # farther than 0.2 posterior SD from an exact bound (a quantile of ~1,000 effective draws errs by
    # about 0.05 SD) is inside or outside both.
    nuts_hits, _ = calibration.nuts_coverage_hits(
        compiled,
        sim.y[:3],
        sim.truth[:3],
        levels=levels,
        seeds=seeds,
        noise_shape=1.0,
        noise_rate=1.0,
        draws=1000,
        tune=500,
        chains=2,
    )
    assert nuts_hits.shape == (2, 3, 3)
    nuts = coverage[coverage.method == "nuts"]
    # The same seeds give the same draws; the mean of per-data-set fractions may round differently.
    np.testing.assert_allclose(nuts.coverage, nuts_hits.mean(axis=(1, 2)), rtol=1e-12)
    for i in range(3):
        exact = linear_posterior(
            X, sim.y[i], ridge_alpha=1.0, noise_sigma=None, noise_prior=noise_prior
        )
        lower, upper = calibration.exact_intervals(exact, levels)
        exact_hits = calibration.covers(lower, upper, sim.truth[i])
        clear = np.minimum(abs(sim.truth[i] - lower), abs(upper - sim.truth[i])) > 0.2 * exact.sd
        np.testing.assert_array_equal(nuts_hits[:, i][clear], exact_hits[clear])
        assert clear.sum() >= 3  # the comparison is not empty


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it)."""
    metrics = metadata["metrics"]
    required = [
        "n_coef_interval_contains_zero",
        "max_abs_posterior_corr",
        "heldout_coverage_90",
        "coverage_50",
        "coverage_90",
        "coverage_95",
        "nuts_coverage_90",
        "coverage_90_prior_10x_too_small",
        "coverage_90_prior_10x_too_large",
    ]
    assert set(required) <= set(metrics)
    assert metrics["max_abs_posterior_corr_pair"] == "s1-s2"
    coefficients = pd.read_csv(tmp_path / "coefficients.csv", index_col="feature")
    assert list(coefficients.index) == [
        "intercept",
        "age",
        "sex",
        "bmi",
        "bp",
        "s1",
        "s2",
        "s3",
        "s4",
        "s5",
        "s6",
    ]
    calibration_table = pd.read_csv(tmp_path / "calibration.csv")
    assert set(calibration_table.method) == {"exact", "nuts"}
    assert len(pd.read_csv(tmp_path / "nuts_fits.csv")) == posterior_spread.FAST.n_nuts + 1
    for name in [
        "correlation.csv",
        "prediction.csv",
        "coefficients.png",
        "correlation.png",
        "prediction.png",
        "calibration.png",
        "posterior.nc",
    ]:
        assert (tmp_path / name).stat().st_size > 0
