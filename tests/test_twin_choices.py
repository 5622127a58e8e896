"""experiments.twin_choices: raw vs standardized coordinates, saga vs the certified l1 MAP."""

import pandas as pd


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it)."""
    sampling = pd.read_csv(tmp_path / "sampling.csv")
    assert set(sampling.coordinates) == {"raw", "standardized"}
    saga = pd.read_csv(tmp_path / "saga.csv")
    assert list(saga.method) == ["saga", "saga", "active-set MAP"]
    # saga's distance from the MAP falls with its tolerance (1e-4, then 1e-6).
    assert saga.rel_error_vs_map.iloc[1] < saga.rel_error_vs_map.iloc[0]
    # The certified MAP: its subgradient conditions hold to the check's 1e-6.
    assert metadata["checks"]["l1_map_kkt_violation"]["passed"]
