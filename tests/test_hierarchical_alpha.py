"""hierarchical_alpha: its seed streams, and the content checks of its fast run (``check_fast_run``, run by
``tests/test_experiments.py``). Its library pieces (``nuts_against_quadrature``, ``hierarchical_find_map``)
are tested in ``tests/test_evidence.py``."""

import numpy as np
import pandas as pd
import pytest

from experiments import _cli, choosing_lambda, hierarchical_alpha


@pytest.mark.parametrize(
    ("point", "hierarchical"),
    [
        (choosing_lambda.Config(), hierarchical_alpha.Config()),
        (choosing_lambda.FAST, hierarchical_alpha.FAST),
    ],
)
def test_nuts_streams_continue_where_choosing_lambdas_psis_loo_seeds_end(point, hierarchical):
    # Before the split one stream per data set drew the PSIS-LOO seeds, then the hierarchical fits' seeds.
    assert (hierarchical.seed, hierarchical.datasets) == (point.seed, point.datasets)
    assert hierarchical.loo_seeds_skipped == len(point.loo_alphas)
    before = np.random.default_rng(point.seed).spawn(2)[1].spawn(len(point.datasets))
    for stream in before:
        stream.integers(2**31, size=len(point.loo_alphas))
    expected = [stream.integers(2**31, size=2) for stream in before]
    streams = hierarchical_alpha.nuts_streams(hierarchical)
    assert [list(stream.integers(2**31, size=2)) for stream in streams] == [
        list(seeds) for seeds in expected
    ]


def check_fast_run(folder, metadata):
    """The fast run (simulated ``well_conditioned`` only): the posterior of alpha in order, every table's
    rows, and the coefficients' posterior means inside their intervals."""
    config = hierarchical_alpha.FAST
    metrics = {
        key.removeprefix("well_conditioned_"): value for key, value in metadata["metrics"].items()
    }
    for metric in ["alpha_median", "alpha_q05", "alpha_q95", "map_tau", "tau_median"]:
        assert np.isfinite(metrics[f"hierarchical_{metric}"])
    q05, median, q95 = (metrics[f"hierarchical_alpha_{q}"] for q in ("q05", "median", "q95"))
    assert q05 < median < q95
    hierarchical = pd.read_csv(folder / "hierarchical.csv")
    assert list(hierarchical.parametrization) == ["centered"]
    assert hierarchical.alpha_q50_nuts.item() == median  # the metric is the table's, not recomputed
    coefficients = pd.read_csv(folder / "coefficients.csv")
    # One row per term (intercept and 10 features), the posterior mean inside its 90% interval.
    assert list(coefficients.feature) == ["intercept", *(f"x{j}" for j in range(10))]
    assert ((coefficients.q05 < coefficients.coef) & (coefficients.coef < coefficients.q95)).all()
    find_map = pd.read_csv(folder / "find_map.csv")
    assert set(find_map.parametrization) == {"centered", "noncentered"}
    assert len(find_map) == 2 * len(config.map_start_factors)


@pytest.mark.parametrize("argv", [["--data", "x.csv"], ["--seed", "abc"]])
def test_bad_arguments_are_a_one_line_error_with_exit_code_2(tmp_path, capsys, argv):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        _cli.run(hierarchical_alpha.main, argv + ["--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()
