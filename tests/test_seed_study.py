"""experiments.seed_study: failure rates of checks across seeds."""

import numpy as np
import pandas as pd
import pytest

from experiments import _cli, seed_study


def fake_checks(experiment, seed, *, fast=False):
    """An R-hat that drifts with the seed (fails for seed 3) and an exact error that never varies."""
    rhat = 1.0 + 0.002 * seed if seed != 3 else 1.02
    rows = [
        (experiment, seed, "nuts_rhat", rhat, "<= 1.01", rhat <= 1.01),
        (experiment, seed, "map_error", 1e-13, "<= 1e-08", True),
    ]
    return pd.DataFrame(rows, columns=seed_study.COLUMNS)


def test_failure_rates_count_failures_bound_them_and_measure_the_margin():
    checks = pd.concat([fake_checks("demo", seed) for seed in range(1, 5)], ignore_index=True)
    rates = seed_study.failure_rates(checks).loc["demo"]
    assert rates.loc["nuts_rhat", "failed"] == 1 and rates.loc["nuts_rhat", "seeds"] == 4
    # One failure in 4: the exact (Clopper-Pearson) 95% upper bound is the 0.95 quantile of Beta(2, 3).
    assert rates.loc["nuts_rhat", "upper_95"] == pytest.approx(0.7514, abs=1e-4)
    values = np.array([1.002, 1.004, 1.02, 1.008])
    expected = (1.01 - values.mean()) / values.std(ddof=1)
    # The same formula: rounding only; pytest's default rel=1e-6 is far above it.
    assert rates.loc["nuts_rhat", "margin_sd"] == pytest.approx(expected)
    assert rates.loc["map_error", "margin_sd"] == np.inf
    assert rates.loc["map_error", "normal_tail"] == 0
    # No failure in 4: Beta(1, 4)'s 0.95 quantile has this closed form; scipy's is 1 ulp off (measured).
    assert rates.loc["map_error", "upper_95"] == pytest.approx(1 - 0.05 ** (1 / 4))


def test_study_resumes_and_keeps_what_was_written(tmp_path, monkeypatch):
    calls = []

    def run_once(experiment, seed, *, fast=False):
        calls.append(seed)
        return fake_checks(experiment, seed)

    monkeypatch.setattr(seed_study, "run_once", run_once)
    argv = ["ridge_equivalence", "--seeds", "3", "--out", str(tmp_path)]
    assert seed_study.main(argv) == 0
    assert calls == [1, 2, 3]
    assert seed_study.main(["ridge_equivalence", "--seeds", "4", "--out", str(tmp_path)]) == 0
    assert calls == [1, 2, 3, 4]  # seeds 1-3 were kept from the first run
    checks = pd.read_csv(tmp_path / "checks.csv")
    assert len(checks) == 8 and set(checks.seed) == {1, 2, 3, 4}
    rates = pd.read_csv(tmp_path / "failure_rates.csv", index_col=["experiment", "check"])
    assert rates.loc[("ridge_equivalence", "nuts_rhat"), "failed"] == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["nowhere"], "unknown experiment(s) nowhere"), (["--seeds", "1"], "--seeds must be >= 2")],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, expected):
    out = tmp_path / "out"
    assert _cli.run(seed_study.main, [*argv, "--out", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_counts_get_no_normal_margin():
    """Divergences are a rare count: no normal approximation, only the observed rate and its bound."""
    assert np.isnan(seed_study.margin(pd.Series([0.0, 0.0, 4.0, 0.0]), "<= 0"))
    assert seed_study.margin(pd.Series([0.0, 0.0]), "<= 0") == np.inf


def test_p_value_checks_report_their_level_not_a_normal_tail():
    """An SBC uniformity p-value is uniform for a correct method: its false-failure rate is its level."""
    checks = pd.DataFrame(
        {
            "experiment": "approximations",
            "seed": [1, 2, 3, 4],
            "check": "sbc_exact_uniform",
            "value": [0.9, 0.05, 0.4, 0.6],
            "target": ">= 0.01",
            "passed": True,
        }
    )
    rate = seed_study.failure_rates(checks).loc[("approximations", "sbc_exact_uniform")]
    assert np.isnan(rate.margin_sd) and rate.normal_tail == 0.01
