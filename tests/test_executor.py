import numpy as np
import pytest

from experiments.performance import ridge_replicate
from models.executor import map_tasks, task_generators

TASKS = [{"n": 200, "p": 5, "ridge_alpha": a} for a in (0.1, 1.0, 10.0, 1.0)]


def assert_same_results(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        # The exact draws come straight from each task's generator: bitwise equal.
        np.testing.assert_array_equal(x["draws"], y["draws"])
        # The same fit in another process; BLAS blocking may reorder a sum, nothing more.
        np.testing.assert_allclose(x["map"], y["map"], rtol=1e-12)


@pytest.fixture(scope="module")
def serial():
    return map_tasks(ridge_replicate, TASKS, seed=11, max_workers=0)


def test_each_task_gets_its_own_spawned_generator():
    draws = [rng.standard_normal(3) for rng in task_generators(5, 3)]
    expected = [rng.standard_normal(3) for rng in np.random.default_rng(5).spawn(3)]
    np.testing.assert_array_equal(draws, expected)
    assert not np.array_equal(draws[0], draws[1])


def test_replicated_fit_is_the_ridge_solution(serial):
    for result in serial:
        # Normal equations (MAP) vs scikit-learn's solver on a well-conditioned design.
        np.testing.assert_allclose(result["map"], result["ridge"], rtol=1e-9, atol=1e-12)


def test_results_follow_task_order_and_seed(serial):
    # Tasks 1 and 3 are the same settings with different generators: different data, different fits.
    assert not np.allclose(serial[1]["map"], serial[3]["map"])
    other_seed = map_tasks(ridge_replicate, TASKS[:1], seed=12, max_workers=0)
    assert not np.allclose(serial[0]["map"], other_seed[0]["map"])


def test_progress_lines_on_stderr(capsys):
    map_tasks(ridge_replicate, TASKS, seed=11, max_workers=0, progress_every=2, label="demo")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("  .. demo: 4/4 tasks")


@pytest.mark.slow
def test_local_process_pool_gives_the_serial_numbers(serial):
    pooled = map_tasks(ridge_replicate, TASKS, seed=11, max_workers=2)
    assert_same_results(pooled, serial)


@pytest.mark.slow
def test_dask_cluster_gives_the_local_numbers(serial):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            on_cluster = map_tasks(ridge_replicate, TASKS, seed=11, scheduler=client)
            by_address = map_tasks(
                ridge_replicate, TASKS, seed=11, scheduler=cluster.scheduler_address
            )
    assert_same_results(on_cluster, serial)
    assert_same_results(by_address, serial)
