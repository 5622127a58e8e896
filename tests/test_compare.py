"""experiments.compare: a run's results against the committed ones."""

import json
import shutil

import pandas as pd

from experiments import EXPERIMENTS, compare


def copy_results(source, target):
    for name in EXPERIMENTS:
        shutil.copytree(
            source / name, target / name, ignore=shutil.ignore_patterns("*.nc", "*.png")
        )


def test_identical_rounding_and_monte_carlo_error_are_told_apart(tmp_path, monkeypatch, capsys):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    copy_results(compare.RESULTS_DIR, ours)
    copy_results(compare.RESULTS_DIR, theirs)
    monkeypatch.setattr(compare, "RESULTS_DIR", ours)
    assert compare.main([str(theirs)]) == 0
    assert capsys.readouterr().out.count("identical") == len(EXPERIMENTS)

    path = theirs / "posterior_spread" / "metadata.json"
    metadata = json.loads(path.read_text())
    checks = metadata["checks"]
    checks["diabetes_nuts_rhat"]["value"] += 0.001  # a Monte Carlo quantity: another draw of it
    checks["ridge_is_exact_mean"]["value"] *= 1.5  # an error at rounding level: 1e-15 either way
    path.write_text(json.dumps(metadata))
    (ours / "seed_study").mkdir()
    rates = pd.DataFrame(
        {
            "experiment": ["posterior_spread"] * 2,
            "check": ["diabetes_nuts_rhat", "ridge_is_exact_mean"],
        }
        | {"sd": [0.001, 0.0]}
    )
    rates.to_csv(ours / "seed_study" / "failure_rates.csv", index=False)
    assert compare.main([str(theirs)]) == 0
    assert "posterior_spread     within rounding and Monte Carlo error" in capsys.readouterr().out

    checks["diabetes_nuts_rhat"]["value"] += 0.01  # 7 SDs of a difference: not another draw
    path.write_text(json.dumps(metadata))
    assert compare.main([str(theirs)]) == 1
    out = capsys.readouterr().out
    assert "posterior_spread     DIFFERENT" in out and "diabetes_nuts_rhat" in out
