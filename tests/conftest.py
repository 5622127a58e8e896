import numpy as np
import pytest

from models import data


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


@pytest.fixture(scope="session")
def diabetes():
    return data.diabetes()


@pytest.fixture(scope="session")
def designs():
    """Every simulated design, drawn once for the session."""
    rng = np.random.default_rng(7)
    return {name: data.simulated(name, rng=rng) for name in data.SIMULATED_DESIGNS}
