import pandas as pd
import pytest

from experiments import first_answer


def runs_table(rows):
    return pd.DataFrame(rows).set_index(["tool", "problem", "cache", "run"])


def test_ratios_use_the_fastest_run_and_checks_see_a_missing_posterior():
    rows = []
    for tool, seconds in (("priorlab", 2.0), ("bambi", 10.0)):
        for run, (cache, factor) in enumerate((("cold", 3.0), ("warm", 1.5), ("warm", 1.0))):
            rows.append(
                {"tool": tool, "problem": "ridge", "cache": cache, "run": run}
                | {"wall_seconds": seconds * factor, "wrote_posterior": True}
                | ({"checks_passed": True} if tool == "priorlab" else {})
            )
    metrics, checks = first_answer.summarize(
        first_answer.Result(runs_table(rows)), first_answer.Config()
    )
    assert metrics["priorlab_ridge_warm_seconds"] == 2.0  # the fastest warm run
    # 30 / 6 and 10 / 2: quotients of exact binary numbers; pytest's default rel=1e-6 is only a margin.
    assert metrics["priorlab_speedup_over_bambi_ridge_cold"] == pytest.approx(5.0)
    assert metrics["priorlab_speedup_over_bambi_ridge_warm"] == pytest.approx(5.0)
    assert all(check["passed"] for check in checks.values())
    rows[-1]["wrote_posterior"] = False
    rows[0]["checks_passed"] = False
    _, checks = first_answer.summarize(first_answer.Result(runs_table(rows)), first_answer.Config())
    assert not checks["every_run_wrote_its_posterior"]["passed"]
    assert not checks["twin_checks_passed"]["passed"]


def check_fast_run(tmp_path, metadata):
    """The fast run times the twin from a fresh process, step by step (run by tests/test_experiments.py)."""
    runs = pd.read_csv(tmp_path / "timings" / "runs.csv")
    assert set(runs.problem) == {"ridge", "logistic"}
    steps = ["imports", "prepare", "compile", "map", "reference", "posterior", "write"]
    assert (runs[[f"{step}_seconds" for step in steps]] > 0).all().all()
    assert (runs.wall_seconds > runs[[f"{step}_seconds" for step in steps]].sum(axis=1)).all()
    assert metadata["metrics"]["peer_measured"] is False
