import os
from pathlib import Path

import numpy as np
import pytest

from models.measure import (
    THREADS,
    Stopwatch,
    benchmark_metadata,
    machine,
    measured,
    peak_memory,
    reset_peak_memory,
)

LINUX_PEAK_MEMORY = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="Linux peak memory only"
)


def test_peak_memory_sees_an_allocation_after_reset():
    baseline = reset_peak_memory()
    if np.isnan(baseline):
        pytest.skip("no /proc/self/clear_refs on this system")
    block = np.ones(50 * 2**20 // 8)  # 50 MiB, touched
    # 10% slack: the peak is read in pages and the baseline has its own noise.
    assert peak_memory() - baseline >= 0.9 * block.nbytes
    del block
    after = reset_peak_memory()
    assert peak_memory() - after < 10 * 2**20  # the interpreter's own churn, far below 50 MiB


def test_stopwatch_laps_are_consecutive_intervals():
    clock = Stopwatch()
    first, second = clock.lap(), clock.lap()
    assert first >= 0 and second >= 0
    total = Stopwatch()
    clock.lap()  # the laps below begin after ``total`` started (the last lap began before it)
    laps = [clock.lap() for _ in range(3)]
    assert sum(laps) <= total.lap()  # the laps began after ``total`` started and end before its lap


def test_machine_names_the_cpu_count_and_load():
    found = machine()
    assert found["cpus"] >= 1 and len(found["load_average_at_end"]) == 3


def test_benchmark_metadata_states_the_threads_and_the_machine():
    found = benchmark_metadata()
    assert found["threads"] == THREADS and "BLAS" in THREADS
    assert found["machine"]["cpus"] == os.cpu_count()


@LINUX_PEAK_MEMORY
def test_peak_memory_of_a_process_by_pid_sees_an_allocation():
    pid = os.getpid()
    baseline = reset_peak_memory(pid)
    block = np.ones(50_000_000 // 8)  # 50 MB, touched
    rise = peak_memory(pid) - baseline
    del block
    # The allocation itself, give or take the interpreter's own few MB.
    assert 40e6 <= rise <= 80e6


@LINUX_PEAK_MEMORY
def test_measured_returns_the_value_seconds_and_the_memory_here_and_in_workers():
    def allocate():
        return np.ones(50_000_000 // 8).sum()  # 50 MB, touched and freed

    row, value = measured(allocate, pids=[os.getpid()])
    assert value == 50_000_000 // 8 and row["seconds"] > 0
    # This process stands in for a worker: both see the same allocation, give or take a few MB.
    for rise in (row["process_peak_rise_bytes"], row["worker_peak_rise_bytes"]):
        assert 40e6 <= rise <= 80e6
    assert row["process_peak_bytes"] >= row["process_peak_rise_bytes"]
    without_workers, _ = measured(allocate)
    assert "worker_peak_bytes" not in without_workers
