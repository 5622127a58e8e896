"""Content checks of the ridge_equivalence fast run (run by ``tests/test_experiments.py``)."""

import pandas as pd


def check_fast_run(folder, metadata):
    path = pd.read_csv(folder / "path.csv")
    assert list(path.columns[:5]) == ["dataset", "prior", "noise", "alpha", "feature"]
    assert {"ridge", "map_default", "map_precise", "posterior_mean", "posterior_sd"} <= set(
        path.columns
    )
    assert "intercept" in set(path.feature)
    assert set(path.noise) == {"known", "unknown"}
    # The timings are kept apart (timings/path.csv), so two same-seed runs write the same path.csv.
    assert not any("seconds" in column for column in path.columns)
    assert (folder / "timings" / "path.csv").is_file()
    # The precise MAP is Ridge to its checked 1e-8 at every fit of the fast run too.
    assert metadata["checks"]["precise_map_vs_ridge"]["passed"]
