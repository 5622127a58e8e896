"""Approximate posteriors and their scores: W2, SD ratios, correlation error, Laplace, ADVI, Pathfinder, SBC."""

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import scipy.linalg
import scipy.stats

from experiments import approximations as experiment
from models import approximations as approx
from models import methods
from models.exact import linear_posterior
from models.fit import COMPILE_MODE
from models.linear import linear_regression


def random_cov(rng, k):
    basis = rng.standard_normal((k, k))
    return basis @ basis.T / k + 0.1 * np.eye(k)


def textbook_w2(mean_a, cov_a, mean_b, cov_b):
    root_b = scipy.linalg.sqrtm(cov_b).real
    cross = scipy.linalg.sqrtm(root_b @ cov_a @ root_b).real
    bures2 = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(cross)
    return np.sqrt(np.sum((mean_a - mean_b) ** 2) + max(bures2, 0.0))


def test_gaussian_w2_in_one_dimension_is_mean_and_sd_difference():
    w2 = approx.gaussian_w2([1.0], [[4.0]], [-2.0], [[9.0]])
    np.testing.assert_allclose(w2, np.hypot(3.0, 1.0), rtol=1e-14)  # closed form; rounding only


def test_gaussian_w2_of_commuting_covariances_compares_their_roots():
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    w2 = approx.gaussian_w2(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b))
    # Diagonal covariances: square roots of exact numbers on both sides; rounding only (measured 0).
    np.testing.assert_allclose(w2, np.linalg.norm(np.sqrt(a) - np.sqrt(b)), rtol=1e-14)


def test_gaussian_w2_matches_the_trace_formula_on_random_covariances(rng):
    for k in (2, 5, 11):
        mean_a, mean_b = rng.standard_normal(k), rng.standard_normal(k)
        cov_a, cov_b = random_cov(rng, k), random_cov(rng, k)
        # Both take sqrtm of well-conditioned matrices (eigenvalues >= 0.1) and W2 is far from 0: measured
        # 6e-16 relative; 1e-12 leaves room for other LAPACK builds.
        np.testing.assert_allclose(
            approx.gaussian_w2(mean_a, cov_a, mean_b, cov_b),
            textbook_w2(mean_a, cov_a, mean_b, cov_b),
            rtol=1e-12,
        )


def test_gaussian_w2_of_nearly_equal_gaussians_keeps_its_digits(rng):
    cov = random_cov(rng, 8)
    perturbed = cov * (1.0 + 1e-10)
    # W2 of a scaled covariance: |1 - sqrt(1 + 1e-10)| * sqrt(trace) = 5e-11 sqrt(trace).
    expected = (np.sqrt(1.0 + 1e-10) - 1.0) * np.sqrt(np.trace(cov))
    w2 = approx.gaussian_w2(np.zeros(8), perturbed, np.zeros(8), cov)
    np.testing.assert_allclose(w2, expected, rtol=1e-3)  # the trace formula gives ~1e-8 here
    # Identical Gaussians: only the rounding of the polar factor is left (measured 5e-16 * sqrt(trace)).
    assert approx.gaussian_w2(np.zeros(8), cov, np.zeros(8), cov) < 1e-14 * np.sqrt(np.trace(cov))


def test_point_estimate_is_as_far_as_the_root_total_variance(rng):
    cov = random_cov(rng, 4)
    w2 = approx.gaussian_w2(np.ones(4), np.zeros((4, 4)), np.zeros(4), cov)
    # A zero covariance takes the closed-form branch: a trace and a square root, rounding only (measured 0).
    np.testing.assert_allclose(w2, np.sqrt(4.0 + np.trace(cov)), rtol=1e-12)


def test_draws_w2_shrinks_with_more_exact_draws(rng):
    cov = random_cov(rng, 5)
    gaussian = approx.Gaussian(np.zeros(5), cov)
    small = approx.draws_w2(gaussian.draws(rng, 200), gaussian.mean, cov)
    large = approx.draws_w2(gaussian.draws(rng, 20_000), gaussian.mean, cov)
    assert large < small / 4  # the error falls like 1/sqrt(n): 100x the draws, 10x less
    # Measured 0.008 * sqrt(trace) at 20,000 draws (0.097 at 200): 0.05 is six times that.
    assert large < 0.05 * np.sqrt(np.trace(cov))


def test_empirical_w2_in_one_dimension_matches_sorted_samples(rng):
    a, b = rng.standard_normal((50, 1)), rng.normal(1.0, 2.0, size=(50, 1))
    expected = np.sqrt(np.mean((np.sort(a[:, 0]) - np.sort(b[:, 0])) ** 2))
    # The same sorted pairs matched another way: rounding only (measured 0).
    np.testing.assert_allclose(approx.empirical_w2(a, b), expected, rtol=1e-12)
    assert approx.empirical_w2(a, a[::-1]) == 0.0


def test_sd_ratios_and_correlation_error_of_a_known_pair():
    exact = np.array([[1.0, 0.9], [0.9, 1.0]])
    diagonal = np.diag([0.25, 4.0])
    np.testing.assert_allclose(approx.sd_ratios(diagonal, exact), [0.5, 2.0])
    # Square roots and a difference of exact binary numbers: a few ulps at most.
    assert approx.correlation_error(diagonal, exact) == pytest.approx(0.9, rel=1e-14)
    assert approx.correlation_error(exact, exact) == 0.0
    assert approx.correlation_error(np.zeros((2, 2)), exact) == pytest.approx(0.9, rel=1e-14)


def test_mean_field_optimum_is_the_conditional_spread():
    rho, sd = 0.99, np.array([2.0, 3.0])
    cov = np.outer(sd, sd) * np.array([[1.0, rho], [rho, 1.0]])
    optimum = approx.mean_field_optimum(np.zeros(2), cov)
    # 1 / diag(inverse covariance) against the closed form: rounding only (measured 1.2e-15).
    np.testing.assert_allclose(optimum.sd, sd * np.sqrt(1.0 - rho**2), rtol=1e-12)


def test_sbc_ranks_count_draws_below_the_truth():
    draws = np.array([[[0.0, 5.0], [1.0, 6.0], [2.0, 7.0]]])
    np.testing.assert_array_equal(approx.sbc_ranks([[1.5, 4.0]], draws), [[2, 0]])


def test_rank_uniformity_matches_pearson_chi_square_and_rejects_clumped_ranks(rng):
    ranks = rng.integers(0, 200, size=(300, 3))  # values 0..199: n_draws = 199
    test = approx.rank_uniformity(ranks, 199, bins=10)
    counts = np.bincount(ranks[:, 0] // 20, minlength=10)
    np.testing.assert_allclose(test.statistic[0], scipy.stats.chisquare(counts).statistic)
    assert test.p_value > 0.01  # uniform ranks; this seed's p-value is far from the boundary
    # Every rank in 2 of 10 bins: chi-square ~1,000 on 9 df, p measured 4e-253.
    clumped = approx.rank_uniformity(np.where(ranks < 100, 0, 199), 199, bins=10)
    assert clumped.p_value < 1e-20


def test_rank_uniformity_handles_bins_that_do_not_divide_the_rank_values(rng):
    ranks = rng.integers(0, 201, size=(400, 2))  # 201 values into 10 bins
    test = approx.rank_uniformity(ranks, 200, bins=10)
    assert test.p_value > 0.01  # uniform ranks, fixed seed: measured 0.23, far from the boundary
    with pytest.raises(ValueError, match="values in 0 .. 200"):
        approx.rank_uniformity(ranks + 1, 200)


def test_ecdf_difference_of_calibrated_ranks_is_small(rng):
    ranks = rng.integers(0, 100, size=(2000, 2))
    grid, diff = approx.ecdf_difference(ranks, 99)
    assert grid[0] == 0.0 and grid[-1] == 1.0
    assert np.max(np.abs(diff)) < 1.63 / np.sqrt(2000)  # KS 99% band, one ECDF per column


def test_ecdf_band_is_the_kolmogorov_quantile_and_holds_for_uniform_values(rng):
    assert approx.ecdf_band(100) == pytest.approx(0.1358, abs=1e-4)  # 1.358 / sqrt(100), the table
    assert approx.ecdf_band(100, 0.99) == pytest.approx(0.1628, abs=1e-4)  # 1.628 / sqrt(100)
    # Continuous uniform values stay inside the 95% band in about 95% of 400 replications (the band is
    # asymptotic; at n = 200 it is slightly conservative): 3 binomial SDs are 3.3 percentage points.
    grid = np.linspace(0.0, 1.0, 2001)
    inside = [
        np.max(np.abs(np.mean(rng.uniform(size=200)[:, None] <= grid, axis=0) - grid))
        <= approx.ecdf_band(200)
        for _ in range(400)
    ]
    assert 0.91 < np.mean(inside) < 0.99


@pytest.fixture(scope="module")
def collinear_twin(designs):
    ds = designs["collinear"]
    kwargs = {"ridge_alpha": 1.0, "noise_sigma": ds.noise_sigma}
    model = linear_regression(ds.X, ds.y, **kwargs)
    return ds, kwargs, model


@pytest.mark.slow
def test_laplace_at_the_precise_map_is_the_exact_gaussian_and_refits_after_set_data(collinear_twin):
    ds, kwargs, model = collinear_twin
    laplace = approx.Laplace(model)
    for y in (ds.y, ds.y[::-1] + 3.0):
        pm.set_data({"y_observed": y}, model=model)
        fit = laplace()
        exact = linear_posterior(ds.X, y, **kwargs)
        # rtol 1e-9: Newton to machine precision on a quadratic, condition number ~1e3 of the design.
        np.testing.assert_allclose(fit.mean, exact.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fit.cov, exact.cov, rtol=1e-9, atol=1e-14)
        # Full-rank covariances, so W2 is first order in the moments' errors: measured 4e-14 * sqrt(trace);
        # 1e-9 is the rtol of the moments above.
        assert approx.gaussian_w2(*fit, exact.mean, exact.cov) <= 1e-9 * np.sqrt(
            np.trace(exact.cov)
        )
    pm.set_data({"y_observed": ds.y}, model=model)


@pytest.mark.slow
def test_compiled_meanfield_advi_reaches_the_mean_field_optimum_and_refits_reproducibly(
    collinear_twin,
):
    ds, kwargs, model = collinear_twin
    exact = linear_posterior(ds.X, ds.y, **kwargs)
    optimum = approx.mean_field_optimum(exact.mean, exact.cov)
    advi = approx.CompiledADVI(model, "advi", obj_optimizer=pm.adam(learning_rate=0.03))
    first = advi(6000, seed=3)
    again = advi(6000, seed=3)
    np.testing.assert_array_equal(first.mean, again.mean)  # reset + reseed: the same fit
    # The last iterate of Adam at a constant learning rate of 0.03 wanders: per coefficient by up to 25%
    # (measured 0.80 to 1.17 here), on average (geometric mean over 11 coefficients) by about 6%. The
    # mean-field optimum is 0.11 of the exact SD, so these bands still tell the two apart by far.
    ratio = first.sd / optimum.sd
    assert np.all((ratio > 0.65) & (ratio < 1.5))
    assert abs(np.exp(np.mean(np.log(ratio))) - 1.0) < 0.15
    assert np.max(first.sd / exact.sd) < 1.1 and np.min(first.sd / exact.sd) < 0.2


@pytest.mark.slow
def test_compiled_pathfinder_gives_the_draws_of_fit_pathfinder(collinear_twin):
    import pymc_extras as pmx

    _, _, model = collinear_twin
    draws, _ = approx.CompiledPathfinder(model, num_paths=2, num_draws=200)(seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = pmx.fit_pathfinder(
            model=model,
            num_paths=2,
            num_draws=200,
            random_seed=11,
            parallel=False,
            progressbar=False,
            compile_kwargs={"mode": COMPILE_MODE},
        )
    posterior = idata["posterior"]
    library = np.column_stack(
        [posterior["intercept"].values.reshape(-1), posterior["beta"].values.reshape(-1, 10)]
    )
    # Same seeds, same compiled pieces: the same draws up to rounding in the compiled graphs.
    np.testing.assert_allclose(np.sort(draws, axis=0), np.sort(library, axis=0), rtol=1e-8)


@pytest.mark.slow
def test_pmx_laplace_default_bfgs_spread_differs_from_trust_ncg_which_is_exact(diabetes):
    kwargs = {"ridge_alpha": 0.01, "noise_sigma": diabetes.noise_sigma}
    model = linear_regression(diabetes.X, diabetes.y, **kwargs)
    exact = linear_posterior(diabetes.X, diabetes.y, **kwargs)
    trust = approx.pmx_laplace(model, "trust-ncg", seed=1)
    bfgs = approx.pmx_laplace(model, "BFGS", seed=1)
    np.testing.assert_allclose(trust.sd / exact.sd, 1.0, atol=1e-6)  # exact Hessian-vector products
    assert np.max(np.abs(bfgs.sd / exact.sd - 1.0)) > 0.01  # the quasi-Newton inverse Hessian


def check_fast_run(folder, metadata):
    """The fast run's content (``tests/test_experiments.py`` runs it and checks that every file is written):
    every method scored, the deterministic ones exact, SBC ranks in range, the samplers' diagnostics kept,
    and no per-method copy of ``methods.csv`` among the metrics."""
    config = experiment.FAST
    for name in ("methods.csv", "sd_ratios.csv", "sbc.csv", "sbc_ranks.csv", "metadata.json"):
        assert (folder / name).stat().st_size > 0, name
    assert metadata["figures"] == ["accuracy_vs_time.png", "marginals.png", "sbc_ecdf.png"]
    table = pd.read_csv(folder / "methods.csv").set_index(["model", "method"])
    assert list(table.index) == [("collinear", method) for method in config.methods]
    run = [["collinear", method] for method in config.methods]
    laplace, point = table.loc[("collinear", "laplace")], table.loc[("collinear", "map")]
    # Laplace is exact on the linear twin up to rounding; the MAP (the exact mean, no spread) scores 1.
    assert laplace.w2_relative < 1e-10 and laplace.sd_ratio_min > 1 - 1e-9
    # The MAP's W2 is sqrt(trace) over sqrt(trace): exact up to rounding and the CSV's round trip.
    assert point.w2_relative == pytest.approx(1.0, rel=1e-9) and point.sd_ratio_max == 0.0
    assert (table.w2_from == "fitted Gaussian").sum() == 3  # pathfinder, nuts_nutpie, exact_draws
    ratios = pd.read_csv(folder / "sd_ratios.csv")
    assert len(ratios) == len(table) * 11 and ratios.sd_ratio.ge(0).all()
    ranks = pd.read_csv(folder / "sbc_ranks.csv")
    assert set(ranks.method) == set(config.sbc_methods)
    assert len(ranks) == len(config.sbc_methods) * config.sbc_datasets * 11
    assert ranks["rank"].between(0, config.sbc_draws).all()
    sbc = pd.read_csv(folder / "sbc.csv")
    assert sbc.p_value_bonferroni.between(0, 1).all() and set(sbc.method) == set(ranks.method)
    diagnostics = metadata["diagnostics"]["collinear"]
    assert set(diagnostics["nuts_nutpie"]) == {
        "rhat_max",
        "ess_bulk_min",
        "ess_tail_min",
        "divergences",
    }
    assert np.isfinite(diagnostics["pathfinder_pareto_k"])
    assert metadata["references"] == {}
    quoted = {key for key in experiment.QUOTED if key.split(".")[:2] in run}
    calibration = {f"sbc.{method}.p_value" for method in config.sbc_methods} | {"sbc.datasets"}
    assert set(metadata["metrics"]) == quoted | calibration


def test_every_configured_method_has_an_entry_in_the_method_table():
    for config in (experiment.Config(), experiment.FAST):
        assert set(config.methods) <= set(methods.METHODS)
        assert set(config.sbc_methods) <= set(methods.METHODS) | {"exact"}  # exact: exact_draws


def test_score_of_the_reference_itself_is_zero_and_of_its_mean_is_one(rng):
    cov = random_cov(rng, 4)
    reference = approx.Gaussian(rng.standard_normal(4), cov)
    scores, ratios = approx.score(reference, reference)
    assert scores["w2_to_exact"] < 1e-14 * np.sqrt(np.trace(cov))  # rounding of the polar factor
    np.testing.assert_allclose(ratios, 1.0, rtol=1e-14)  # the same SDs divided: measured exactly 1
    point, _ = approx.score(approx.Gaussian(reference.mean, np.zeros((4, 4))), reference)
    assert point["w2_relative"] == pytest.approx(1.0, rel=1e-12)  # closed form over closed form
    assert point["w2_from"] == "closed form" and point["sd_ratio_max"] == 0.0
    draws, _ = approx.score(reference.draws(rng, 50_000), reference)
    assert draws["w2_from"] == "fitted Gaussian"
    assert draws["w2_relative"] < 0.03  # Monte Carlo error of 50,000 draws: about 0.01 here


def test_most_correlated_pair_skips_the_intercept():
    corr = np.eye(4)
    corr[0, 1] = corr[1, 0] = 0.99  # the intercept's correlation: not a slope pair
    corr[2, 3] = corr[3, 2] = -0.6
    assert approx.most_correlated_pair(corr * 4.0) == (2, 3)


def test_marginal_density_of_a_gaussian_draws_and_a_point(rng):
    gaussian = approx.Gaussian(np.array([0.0, 2.0]), np.diag([1.0, 4.0]))
    grid = np.linspace(-4.0, 8.0, 7)
    np.testing.assert_allclose(
        approx.marginal_density(gaussian, 1, grid), scipy.stats.norm.pdf(grid, 2.0, 2.0)
    )
    kde = approx.marginal_density(gaussian.draws(rng, 20_000), 1, grid)
    # A kernel density estimate of 20,000 draws: within 0.01 of a density whose peak is 0.2.
    np.testing.assert_allclose(kde, scipy.stats.norm.pdf(grid, 2.0, 2.0), atol=0.01)
    assert (
        approx.marginal_density(approx.Gaussian(gaussian.mean, np.zeros((2, 2))), 1, grid) is None
    )


def test_bad_seed_gets_one_line_error_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(["--seed", "x", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
