"""The GLM-at-scale benchmark (experiments/glm_scale.py): its helpers and the content of its fast run."""

import numpy as np
import pandas as pd
import pytest

from experiments import glm_scale


def test_gaussian_w2_is_the_closed_form():
    # Between N(m1, s1^2) and N(m2, s2^2) in one dimension: sqrt((m1 - m2)^2 + (s1 - s2)^2).
    w2 = glm_scale.gaussian_w2(
        np.array([0.0]), np.array([[1.0]]), np.array([1.0]), np.array([[4.0]])
    )
    assert w2 == pytest.approx(np.sqrt(2.0), rel=1e-12)
    # Independent coordinates add in squares.
    cov = np.diag([1.0, 9.0])
    assert glm_scale.gaussian_w2(np.zeros(2), cov, np.array([3.0, 0.0]), cov) == pytest.approx(3.0)


def test_poisson_penalty_gives_the_configured_prior_sd():
    config = glm_scale.Config(poisson_prior_sd=0.5)
    alpha = glm_scale.penalty("poisson", 400, config)["poisson_alpha"]
    assert 1.0 / np.sqrt(400 * alpha) == pytest.approx(
        0.5, rel=1e-12
    )  # poisson_prior_sigma's formula


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it, in ``make test-all``)."""
    table = pd.read_csv(tmp_path / "glm_scale.csv")
    assert set(table.family) == {"logistic", "poisson"}
    assert set(table.method) == {"map+psis", "map+psis+nuts"}
    # Newton to machine precision against scikit-learn's newton-cholesky at tol 1e-12.
    assert (table.map_rel_err_vs_sklearn < 1e-8).all()
    # A near-Gaussian posterior (thousands of rows, 10 coefficients): k-hat is far below 0.7.
    assert (table.pareto_k < 0.7).all()
    assert metadata["checks"]["map_vs_sklearn"]["passed"]
