import numpy as np
import pytest

from models.measure import Stopwatch, machine, peak_memory, reset_peak_memory


def test_peak_memory_sees_an_allocation_after_reset():
    baseline = reset_peak_memory()
    if np.isnan(baseline):
        pytest.skip("no /proc/self/clear_refs on this system")
    block = np.ones(50 * 2**20 // 8)  # 50 MiB, touched
    assert peak_memory() - baseline >= 0.9 * block.nbytes
    del block
    after = reset_peak_memory()
    assert peak_memory() - after < 10 * 2**20


def test_stopwatch_laps_are_consecutive_intervals():
    clock = Stopwatch()
    first, second = clock.lap(), clock.lap()
    assert first >= 0 and second >= 0
    total = Stopwatch()
    laps = [clock.lap() for _ in range(3)]
    assert sum(laps) <= total.lap()  # the laps began after ``total`` started and end before its lap


def test_machine_names_the_cpu_count_and_load():
    found = machine()
    assert found["cpus"] >= 1 and len(found["load_average_at_end"]) == 3
