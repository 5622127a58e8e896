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
