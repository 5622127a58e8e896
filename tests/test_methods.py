"""The approximation methods behind one interface: seeds from names, shared compilation, timing, SBC refits."""

import numpy as np
import pymc as pm
import pytest

from models import approximations as approx
from models import methods
from models.exact import linear_posterior


@pytest.fixture
def collinear_twin(designs):
    ds = designs["collinear"]
    reference = methods.exact_reference(ds, ridge_alpha=1.0)
    return ds, reference.model, reference.exact_posterior


def test_exact_reference_is_the_linear_twin_with_its_exact_posterior(designs):
    ds = designs["collinear"]
    reference = methods.exact_reference(ds, ridge_alpha=1.0)
    kwargs = {"ridge_alpha": 1.0, "noise_sigma": ds.noise_sigma}
    exact = linear_posterior(ds.X, ds.y, **kwargs)
    np.testing.assert_array_equal(reference.gaussian.mean, exact.mean)  # the same computation
    np.testing.assert_array_equal(reference.gaussian.cov, exact.cov)
    assert reference.names == ("intercept", *ds.feature_names)
    other = linear_posterior(ds.X, ds.y[::-1], **kwargs)
    np.testing.assert_array_equal(reference.exact_posterior(ds.y[::-1]).mean, other.mean)
    np.testing.assert_array_equal(reference.model["y_observed"].get_value(), ds.y)
    assert reference.draws is None and reference.check is None


def test_seeds_come_from_the_names_alone():
    # Fixed values: a seed that changed between processes (Python's salted hash) or with the other
    # methods of a run would fail here.
    assert methods.seeds_for(20261126, "collinear", "pathfinder") == [2880206476]
    assert methods.seeds_for(20261126, "sbc", "laplace", n=3) == [
        1453269935,
        1484167613,
        3813846094,
    ]
    first = methods.seeds_for(1, "collinear", "advi_meanfield", n=4)
    assert first == methods.seeds_for(1, "collinear", "advi_meanfield", n=4)
    assert first[0] != methods.seeds_for(1, "diabetes", "advi_meanfield")[0]
    assert first[0] != methods.seeds_for(2, "collinear", "advi_meanfield")[0]
    assert all(0 <= s < 2**32 for s in first)


def test_methods_needing_the_exact_posterior_come_only_with_it(collinear_twin):
    _, model, exact_posterior = collinear_twin
    without = methods.method_table(model, methods.Budget())
    with_exact = methods.method_table(model, methods.Budget(), exact_posterior=exact_posterior)
    assert set(with_exact) - set(without) == {"advi_meanfield_optimum", "exact_draws"}
    assert list(with_exact) == list(methods.METHODS)  # the order of a table of results


@pytest.mark.slow
def test_map_and_laplace_share_one_compiled_precise_map_and_match_the_exact_posterior(
    collinear_twin,
):
    ds, model, exact_posterior = collinear_twin
    table = methods.method_table(model, methods.Budget(), exact_posterior=exact_posterior)
    compiled = methods.Compiled(model, methods.Budget())
    point = methods.fit_timed(table["map"], compiled, seed=1)
    laplace = methods.fit_timed(table["laplace"], compiled, seed=1)
    assert compiled.get("laplace")[0] is compiled.get("laplace")[0]
    # The build is counted in both rows: each row says what it takes to have the method compiled.
    assert min(point.compile_seconds, laplace.compile_seconds) >= compiled.get("laplace")[1]
    exact = exact_posterior(ds.y)
    # rtol 1e-9: Newton to machine precision on a quadratic, condition number ~1e3 of the design.
    np.testing.assert_allclose(point.estimate.mean, exact.mean, rtol=1e-9)
    np.testing.assert_array_equal(point.estimate.cov, 0.0)
    np.testing.assert_allclose(laplace.estimate.cov, exact.cov, rtol=1e-9, atol=1e-14)


def test_uncompiled_and_untimed_methods_report_what_they_can(collinear_twin):
    _, model, exact_posterior = collinear_twin
    table = methods.method_table(model, methods.Budget(), exact_posterior=exact_posterior)
    compiled = methods.Compiled(model, methods.Budget())
    draws = methods.fit_timed(table["exact_draws"], compiled, seed=3)
    assert np.isnan(draws.compile_seconds) and draws.fit_seconds > 0
    assert draws.estimate.shape == (methods.Budget().exact_draws, 11)
    optimum = methods.fit_timed(table["advi_meanfield_optimum"], compiled, seed=3)
    assert np.isnan(optimum.compile_seconds) and np.isnan(optimum.fit_seconds)
    assert np.count_nonzero(optimum.estimate.cov - np.diag(np.diag(optimum.estimate.cov))) == 0


def test_calibration_ranks_refit_each_data_set_with_its_seed(collinear_twin, rng):
    ds, model, exact_posterior = collinear_twin
    budget = methods.Budget(exact_draws=50)
    method = methods.method_table(model, budget, exact_posterior=exact_posterior)["exact_draws"]
    compiled = methods.Compiled(model, budget)
    Y = ds.y + rng.standard_normal((3, ds.y.size))
    truth = rng.standard_normal((3, 11))
    ranks = methods.calibration_ranks(method, compiled, truth, Y, [5, 6, 7], 50)
    expected = [
        approx.sbc_ranks(t[None], exact_posterior(y).draws(np.random.default_rng(s), 50)[None])[0]
        for t, y, s in zip(truth, Y, [5, 6, 7], strict=True)
    ]
    np.testing.assert_array_equal(ranks, expected)
    np.testing.assert_array_equal(model["y_observed"].get_value(), Y[-1])
    pm.set_data({"y_observed": ds.y}, model=model)


def test_budget_of_settings_and_giving_every_method_the_same_number_of_draws():
    class Settings:  # an experiment's configuration: the budget's names and others
        advi_steps, advi_learning_rate, pathfinder_paths, pathfinder_draws = 50, 0.1, 2, 30
        draws, tune, chains, exact_draws, seed = 40, 20, 4, 60, 1

    budget = methods.Budget.of(Settings)
    assert budget == methods.Budget(50, 0.1, 2, 30, 40, 20, 4, 60)
    given = budget.giving(200)
    assert (given.draws * given.chains, given.pathfinder_draws, given.exact_draws) == (
        200,
        200,
        200,
    )
    assert given._replace(draws=40, pathfinder_draws=30, exact_draws=60) == budget  # nothing else


def test_fit_methods_seeds_each_method_by_its_name_and_scores_it(collinear_twin):
    ds, model, exact_posterior = collinear_twin
    reference = methods.exact_reference(ds, ridge_alpha=1.0)
    budget = methods.Budget(exact_draws=400)
    compiled = methods.Compiled(reference.model, budget)
    only = ("advi_meanfield_optimum", "exact_draws")  # formulas and draws: nothing to compile
    fitted = methods.fit_methods(reference, budget, compiled, seed=5, model="collinear", only=only)
    assert list(fitted) == list(only)
    (seed,) = methods.seeds_for(5, "collinear", "exact_draws")
    expected = exact_posterior(ds.y).draws(np.random.default_rng(seed), 400)
    np.testing.assert_array_equal(fitted["exact_draws"].estimate, expected)
    rows, ratio_rows = methods.score_fits(fitted, reference, model="collinear")
    assert [(row["model"], row["method"]) for row in rows] == [("collinear", m) for m in only]
    assert rows[1]["w2_from"] == "fitted Gaussian" and rows[1]["fit_seconds"] > 0
    assert len(ratio_rows) == 2 * 11 and ratio_rows[0]["coefficient"] == "intercept"
    scores, ratios = approx.score(fitted["exact_draws"].estimate, reference.gaussian)
    assert rows[1]["w2_relative"] == scores["w2_relative"]
    assert [r["sd_ratio"] for r in ratio_rows[11:]] == list(ratios)


def test_known_sigma_datasets_follow_the_twin_prior(collinear_twin):
    ds, _, _ = collinear_twin
    truth, Y = methods.known_sigma_datasets(
        ds, ridge_alpha=4.0, size=4000, rng=np.random.default_rng(2)
    )
    assert truth.shape == (4000, 11) and Y.shape == (4000, ds.y.size)
    np.testing.assert_array_equal(truth[:, 0], 0.0)  # the flat intercept's truth
    # beta ~ N(0, sigma^2 / 4): the SD of 40,000 draws is within 2% (its standard error is 0.35%).
    np.testing.assert_allclose(truth[:, 1:].std(), ds.noise_sigma / 2.0, rtol=0.02)
    residual = Y - truth[:, 1:] @ ds.X.T
    np.testing.assert_allclose(residual.std(), ds.noise_sigma, rtol=0.02)  # many more draws still


def test_calibrate_ranks_every_method_tests_them_and_restores_the_data(collinear_twin, rng):
    ds, model, exact_posterior = collinear_twin
    budget = methods.Budget(exact_draws=99)
    table = methods.method_table(model, budget, exact_posterior=exact_posterior)
    compiled = methods.Compiled(model, budget)
    truth, Y = methods.known_sigma_datasets(ds, ridge_alpha=1.0, size=40, rng=rng)
    lines = []
    chosen = {"exact": table["exact_draws"]}
    ranks, tests = methods.calibrate(
        chosen, compiled, truth, Y, seed=3, n_draws=99, bins=4, progress=lines.append
    )
    np.testing.assert_array_equal(model["y_observed"].get_value(), ds.y)  # restored
    seeds = methods.seeds_for(3, "sbc", "exact", n=40)  # the name given, not the method's
    expected = methods.calibration_ranks(table["exact_draws"], compiled, truth, Y, seeds, 99)
    np.testing.assert_array_equal(ranks["exact"], expected)
    uniformity = approx.rank_uniformity(expected, 99, bins=4)
    np.testing.assert_array_equal(tests.p_value, uniformity.p_values)
    np.testing.assert_array_equal(tests.chi2, uniformity.statistic)
    assert (tests.p_value_bonferroni == uniformity.p_value).all() and len(tests) == 11
    assert lines == ["SBC: exact on 40 data sets"]
    pm.set_data({"y_observed": ds.y}, model=model)  # calibration_ranks leaves the last data set


def test_reference_targets_bound_a_nuts_reference():
    check = {"draws": 8000, "rhat_max": 1.004, "ess_bulk_min": 1500.0, "divergences": 0}
    targets = methods.reference_targets(check, min_draws=8000)
    assert targets == {
        "draws": (8000, ">=", 8000),
        "rhat": (1.004, "<=", 1.01),
        "ess_bulk": (1500.0, ">=", 1000),
        "divergences": (0, "<=", 0),
    }


def test_breast_cancer_twin_is_malignant_against_standardized_features():
    model = methods.breast_cancer_twin(1.0)
    features = model.coords["feature"]
    assert len(features) == 30 and features[0] == "mean_radius"
    y = model["y_observed"].get_value()
    assert y.sum() == 212 and y.size == 569  # scikit-learn's 212 malignant of 569 patients
