"""experiments.twin_panel: every supported estimator's twin on real and ill-conditioned tables."""

import numpy as np
import pandas as pd

from models import data as datasets


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it): each case within its tolerance."""
    cases = pd.read_csv(tmp_path / "cases.csv")
    assert len(cases) == metadata["metrics"]["n_cases"] >= 4
    # Each case's MAP checks pass (its NUTS checks are Monte Carlo ones: a 300-draw run need not pass them).
    compared = cases.dropna(subset=["map_vs_reference"])
    assert (compared.map_vs_reference <= compared.tolerance).all()
    assert {"ridge", "lasso", "logistic", "poisson"} <= set(cases.kind)
    # The rate with exposure is a proper Poisson likelihood of its whole counts, not a quasi-likelihood.
    rate = cases.set_index("table").loc["rates_with_exposure"]
    assert "Poisson likelihood of the whole counts" in rate.twin
    assert metadata["metrics"]["n_weighted_cases"] == 1


def test_raw_table_comes_from_its_seed_and_has_raw_scales():
    """Same seed, same table; another seed, another table (the generator is used, not a global one); and the
    columns are on the raw scales the case is about (a year ~2010, an income ~2e4, an age in [20, 70])."""
    first = datasets.raw_user_table(np.random.default_rng(3))
    second = datasets.raw_user_table(np.random.default_rng(3))
    other = datasets.raw_user_table(np.random.default_rng(4))
    for a, b, c in zip(first, second, other, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert not np.array_equal(np.asarray(a), np.asarray(c))
    X, clicked, visits = first
    assert list(X.columns) == ["year", "income", "age"]
    # The income's median is e**10 = 22,026 up to ~4% sampling error at n = 200: the bracket is ~2x wide.
    assert X.year.between(2000, 2020).all() and 1e4 < X.income.median() < 4e4
    assert X.age.between(20, 70).all()
    assert set(np.unique(clicked)) == {0.0, 1.0} and visits.min() >= 0
