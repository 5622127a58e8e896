"""Measuring the machine's work: a stopwatch, peak memory, a description of the machine, timed samplers.

Timings and memory are benchmark metrics (``make bench``), never pass/fail checks of a user's run; these
helpers make them in one way everywhere. Absolute seconds mean little without the machine and its load, so
:func:`machine` is recorded beside them (with the threads, :func:`benchmark_metadata`), and ratios are measured
side by side in one run.
"""

import os
import platform
import time

import pymc as pm

from models.diagnostics import convergence
from models.fit import compile_nuts, sample_nuts

__all__ = [
    "Stopwatch",
    "THREADS",
    "benchmark_metadata",
    "machine",
    "measured",
    "peak_memory",
    "pymc_fit",
    "nutpie_fit",
    "reset_peak_memory",
    "sampler_row",
]


class Stopwatch:
    """Seconds between laps: ``lap()`` returns the time since the previous lap (or since it started)."""

    def __init__(self):
        self._last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        return elapsed


def machine() -> dict:
    """CPU count, model and load average: absolute seconds mean little without them."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line),
                platform.processor(),
            )
    except OSError:
        model = platform.processor()
    return {"cpus": os.cpu_count(), "cpu": model, "load_average_at_end": os.getloadavg()}


THREADS = "one BLAS thread per process (experiments/__init__.py); nutpie runs one thread per chain"
"""How the benchmarks' processes use the CPUs, as their ``metadata.json`` states it."""


def benchmark_metadata() -> dict:
    """What a benchmark's seconds were measured with, for its ``metadata.json``: the threads
    (:data:`THREADS`) and the machine (:func:`machine`)."""
    return {"threads": THREADS, "machine": machine()}


def _memory_kib(field: str, pid: int | None) -> float:
    try:
        with open(f"/proc/{'self' if pid is None else pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def reset_peak_memory(pid: int | None = None) -> float:
    """Reset a process's peak resident memory (Linux ``clear_refs``); returns its current RSS in bytes.

    This process, or the process ``pid`` (a worker's, say: the same user's processes are open to it). NaN
    where the system has no ``/proc/<pid>/clear_refs`` (peak memory is then not measured).
    """
    try:
        with open(f"/proc/{'self' if pid is None else pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    return 1024.0 * _memory_kib("VmRSS", pid)


def peak_memory(pid: int | None = None) -> float:
    """Peak resident memory in bytes of this process (or ``pid``) since :func:`reset_peak_memory` (Linux
    ``VmHWM``; NaN elsewhere)."""
    return 1024.0 * _memory_kib("VmHWM", pid)


def measured(function, pids=()) -> tuple[dict, object]:
    """Run ``function()``: its seconds and the peak memory it reached, and returned value.

    Returns ``(row, value)``, ``row`` holding ``seconds``, this process's peak resident memory in bytes
    (``process_peak_bytes``) and its rise over the resident memory before (``process_peak_rise_bytes``),
    and, with the ``pids`` of worker processes, the largest of theirs (``worker_peak_bytes``,
    ``worker_peak_rise_bytes``). NaN where Linux's ``/proc`` is missing.
    """
    baseline = reset_peak_memory()
    worker_baselines = [reset_peak_memory(pid) for pid in pids]
    clock = Stopwatch()
    value = function()
    seconds = clock.lap()
    peak = peak_memory()
    row = {
        "seconds": seconds,
        "process_peak_bytes": peak,
        "process_peak_rise_bytes": peak - baseline,
    }
    if pids:
        peaks = [peak_memory(pid) for pid in pids]
        row["worker_peak_bytes"] = max(peaks)
        row["worker_peak_rise_bytes"] = max(
            peak - base for peak, base in zip(peaks, worker_baselines, strict=True)
        )
    return row, value


def sampler_row(idata, seconds_compile: float, seconds_sampling: float, **labels) -> dict:
    """One sampled fit's row of a benchmark table: its labels, seconds, smallest bulk ESS, ESS per second
    of sampling (tuning included, compilation excluded), largest R-hat and divergences."""
    fit = convergence(idata)
    return labels | {
        "compile_seconds": seconds_compile,
        "sampling_seconds": seconds_sampling,
        "ess_bulk_min": fit.ess_bulk_min,
        "ess_per_second": fit.ess_bulk_min / seconds_sampling,
        "rhat_max": fit.rhat_max,
        "divergences": fit.divergences,
    }


def nutpie_fit(
    model, *, seed, draws, tune, chains, compiled=None, adaptation: str = "low_rank", **data
):
    """Compile (unless ``compiled`` is given) and sample with nutpie, timing each.

    Returns ``(idata, compile_seconds, sampling_seconds, compiled)``; ``data`` are new values of the model's
    ``pm.Data`` (the compiled model is reused with them); ``adaptation`` is nutpie's mass matrix adaptation
    (see :func:`models.fit.sample_nuts`).
    """
    clock = Stopwatch()
    compiled = compile_nuts(model) if compiled is None else compiled
    compile_seconds = clock.lap()
    idata = sample_nuts(
        compiled,
        seed=seed,
        draws=draws,
        tune=tune,
        chains=chains,
        adaptation=adaptation,
        **data,
    )
    return idata, compile_seconds, clock.lap(), compiled


def pymc_fit(model, sampler: str, *, seed, draws, tune, chains, nuts: dict | None = None):
    """``pm.sample`` with PyMC's own NUTS (``"pymc"``) or a JAX sampler (``"numpyro"``, ``"blackjax"``);
    ``nuts``: the sampler's options (e.g. ``{"chain_method": "vectorized"}`` for a JAX sampler on one GPU).

    Returns ``(idata, compile_seconds, sampling_seconds)``: PyMC records the sampling time; the compile time
    is the rest of the wall time (for the JAX samplers their sampling time holds the JAX compilation of the
    sampling loop too).
    """
    clock = Stopwatch()
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=chains,
            nuts_sampler=sampler,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
            **({} if nuts is None else {"nuts": nuts}),
        )
    total = clock.lap()
    sampling = float(idata["posterior"].attrs.get("sampling_time", total))
    return idata, total - sampling, sampling
