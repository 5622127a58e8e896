"""The JAX-samplers benchmark (experiments/jax_samplers.py): its helpers and the content of its fast run."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

from experiments import glm_scale, jax_samplers
from models.data import DataError


def test_the_table_is_glm_scales_big_logistic_table():
    # The streams glm_scale.run draws the logistic tables from: the family's generator is the first of two
    # spawned from the seed, and the big table's generator the first of three spawned from it.
    config = jax_samplers.FAST
    family_rng = np.random.default_rng(config.seed).spawn(2)[0]
    expected = glm_scale.simulate("logistic", config.big_n, config.p, family_rng.spawn(3)[0])
    big_rng, _, seeds = glm_scale.streams(config.seed, "logistic")
    X, y = glm_scale.simulate("logistic", config.big_n, config.p, big_rng)
    np.testing.assert_array_equal(X, expected[0])
    np.testing.assert_array_equal(y, expected[1])
    assert jax_samplers.table_sha256(X, y) == jax_samplers.table_sha256(*expected)
    assert jax_samplers.table_sha256(X, 1.0 - y) != jax_samplers.table_sha256(X, y)
    assert len(set(seeds)) == 3


def test_each_samplers_seed_depends_on_its_name_only():
    seeds = {s: jax_samplers.sampler_seed(7, s) for s in jax_samplers.SAMPLERS}
    assert len(set(seeds.values())) == len(seeds)
    assert jax_samplers.sampler_seed(7, "numpyro") == seeds["numpyro"]
    assert jax_samplers.sampler_seed(8, "numpyro") != seeds["numpyro"]
    assert all(0 <= seed < 2**31 for seed in seeds.values())


def test_a_missing_sampler_is_one_line_naming_the_install(monkeypatch):
    # jax and numpyro found, blackjax not (whatever this machine has installed).
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "blackjax" else object()
    )
    with pytest.raises(DataError, match=r"^blackjax not installed: pip install -e '\.\[jax\]'"):
        jax_samplers.check_available(jax_samplers.Config())


def test_the_published_run_refuses_a_machine_without_a_gpu(monkeypatch):
    # Installed or not here: JAX and the samplers found, and JAX seeing only a CPU.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(jax_samplers, "jax_device", lambda: "cpu: cpu")
    with pytest.raises(DataError, match="the published run needs a GPU; JAX sees only cpu: cpu"):
        jax_samplers.check_available(jax_samplers.Config())
    assert jax_samplers.check_available(jax_samplers.FAST) == "cpu: cpu"


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it, in ``make test-all``)."""
    table = pd.read_csv(tmp_path / "jax_samplers.csv").set_index("sampler")
    assert list(table.index) == list(jax_samplers.SAMPLERS)
    assert (table.divergences == 0).all()
    # 2 x 300 draws of 11 near-Gaussian coefficients: the bulk ESS is in the hundreds at least.
    assert (table.ess_bulk_min > 200).all()
    # The same table as glm_scale's fast run, whose k-hat is far below 0.7 and MAP equals scikit-learn's.
    assert metadata["checks"]["pareto_k"]["passed"]
    assert metadata["checks"]["map_vs_sklearn"]["passed"]
    assert metadata["jax_device"].startswith(("cpu", "gpu"))
