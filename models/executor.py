"""One interface for many independent fits: a local process pool, or a dask.distributed cluster.

Calibration, coverage, simulation-based calibration and benchmark repetitions are many independent fits.
:func:`map_tasks` runs ``function(task, rng)`` for every task and returns the results in task order:

* ``scheduler=None``: a local pool of worker *processes* (PyTensor compilation is not thread-safe, and each
  process keeps its own compiled functions); ``max_workers=0`` runs in the calling process (debugging).
* ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``): the tasks go to a dask.distributed cluster.
  Start its workers with one thread each (``dask worker ADDRESS --nthreads 1 --nworkers N``): two tasks
  compiling PyTensor graphs in threads of one process can corrupt each other's compilation.

Every task receives its own ``numpy.random.Generator`` built from ``np.random.default_rng(seed).spawn(k)``:
the same seed gives the same numbers whatever the backend, the number of workers or the completion order.
Long runs print a progress line on stderr every ``progress_every`` finished tasks.

``function`` must be importable by the workers (a module-level function of an installed module).
"""

import concurrent.futures
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "THREAD_VARIABLES",
    "task_generators",
    "map_tasks",
]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def task_generators(seed: int, n_tasks: int) -> list[np.random.Generator]:
    """One independent generator per task: ``default_rng(seed).spawn(n_tasks)``."""
    return np.random.default_rng(seed).spawn(n_tasks)


def _limit_threads():
    # One BLAS thread per worker process: workers already run in parallel (oversubscription cost 3x).
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")


class _Progress:
    """A line on stderr every ``every`` finished tasks (and at the end); silent when ``every`` is 0."""

    def __init__(self, total: int, every: int, label: str):
        self.total, self.every, self.label = total, every, label
        self.done = 0
        self.start = time.perf_counter()

    def tick(self):
        self.done += 1
        if self.every and (self.done % self.every == 0 or self.done == self.total):
            elapsed = time.perf_counter() - self.start
            remaining = elapsed / self.done * (self.total - self.done)
            print(
                f"  .. {self.label}: {self.done}/{self.total} tasks, {elapsed:.0f} s elapsed,"
                f" about {remaining:.0f} s left",
                file=sys.stderr,
                flush=True,
            )


def map_tasks(
    function: Callable,
    tasks: Sequence,
    *,
    seed: int,
    scheduler=None,
    max_workers: int | None = None,
    fresh_process: bool = False,
    progress_every: int = 0,
    label: str = "tasks",
) -> list:
    """Run ``function(task, rng)`` for every task, each with its own generator; results in task order.

    Parameters
    ----------
    function : callable
        ``function(task, rng) -> result``, importable by the workers; results must be picklable.
    tasks : sequence
        One picklable item per fit.
    seed : int
        Task ``i`` gets ``np.random.default_rng(seed).spawn(len(tasks))[i]``, whatever the backend.
    scheduler : str, distributed.Client or None
        None: local processes. A scheduler address or a client: dask.distributed (a client made here from an
        address is closed at the end; a client passed in is left open).
    max_workers : int or None
        Local pool size (default: the number of CPUs); 0 runs every task in the calling process.
    fresh_process : bool
        Local pool only: a new process for every task (isolates peak memory and caches, e.g. for benchmarks).
    progress_every : int
        Print a progress line on stderr every this many finished tasks (0: silent).
    label : str
        Name of the run in the progress lines.

    Returns
    -------
    list
        ``[function(task, rng) for task, rng in zip(tasks, generators)]``.
    """
    tasks = list(tasks)
    generators = task_generators(seed, len(tasks))
    progress = _Progress(len(tasks), progress_every, label)
    if scheduler is not None:
        return _map_distributed(function, tasks, generators, scheduler, progress)
    if max_workers == 0:
        results = []
        for task, rng in zip(tasks, generators, strict=True):
            results.append(function(task, rng))
            progress.tick()
        return results
    _limit_threads()
    # "spawn": a forked child would inherit the parent's threads (BLAS, nutpie, dask) in an unknown state.
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=max_workers or os.cpu_count(),
        mp_context=multiprocessing.get_context("spawn"),
        max_tasks_per_child=1 if fresh_process else None,
    )
    with pool:
        futures = {
            pool.submit(function, task, rng): i
            for i, (task, rng) in enumerate(zip(tasks, generators, strict=True))
        }
        results = [None] * len(tasks)
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
            progress.tick()
    return results


def _map_distributed(function, tasks, generators, scheduler, progress):
    import distributed

    own_client = not isinstance(scheduler, distributed.Client)
    client = distributed.Client(scheduler) if own_client else scheduler
    try:
        # pure=False: two equal tasks with equal generators are still two fits, never deduplicated.
        futures = client.map(function, tasks, generators, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results = [None] * len(tasks)
        for future in distributed.as_completed(futures):
            results[index[future.key]] = future.result()
            progress.tick()
        return results
    finally:
        if own_client:
            client.close()
