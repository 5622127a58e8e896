import pandas as pd


def check_fast_run(tmp_path, metadata):
    """Content of the fast run (``tests/test_experiments.py`` runs it, in ``make test-all``)."""
    samplers = pd.read_csv(tmp_path / "samplers.csv")
    assert {"exact", "pymc"} <= set(samplers.sampler)
    assert set(samplers.model) == {"linear", "logistic"}
    assert (samplers.ess_per_second > 0).all()
    assert (
        metadata["metrics"]["best_sampler_linear"] == "pymc"
    )  # the only MCMC sampler of a fast run
