"""Time to first answer: the twin against bambi, from a fresh process to a posterior on disk, cold and warm.

Claim
    A user who brings a table wants a posterior, not a compiler. From a fresh Python process to a posterior
    file written, the twin of ``Ridge(alpha=1)`` on diabetes (``priorlab twin --estimator ridge``) and of
    ``LogisticRegression(C=1)`` on breast_cancer answer sooner than bambi, the peer a user would pick, sampling
    the same likelihood: on a cold compile cache (a new machine, a new version of the stack) and on a warm one
    (the next run). The Ridge twin's aim is under 15 s cold and 5 s warm on a quiet 2-core machine.

Measures
    Every run is a fresh process with compile caches of its own (PyTensor's ``base_compiledir``, which holds
    its C and numba caches, and numba's cache folder): empty for the cold run, then reused by two warm runs.
    Wall time runs from starting the process to its exit. The twin's steps are those it writes to
    ``timings/timings.json`` (prepare, compile, MAP, reference, posterior, write), after the imports; bambi's
    are imports, building the model, fitting (compilation and sampling) and writing the posterior. Both draw
    2 chains x 2,000 draws after 1,000 tuning steps. bambi keeps its default priors for the Gaussian model (the
    twin's posterior is exact there, so it does not sample at all) and gets the twin's N(0, C) prior on the
    logistic slopes. Timings depend on the machine and its load: read the ratios, measured side by side in one
    run (metadata records the machine). bambi is optional (``pip install -e ".[peer]"``; ``make bench``
    installs it); without it there are no bambi rows, and ``metadata.json`` (``peer``) says so.

Writes ``results/first_answer/``
    ``runs.csv``       one row per (tool, problem, cache, run): exit code, posterior written, the twin's checks;
                       ``timings/runs.csv``: wall seconds and each step's seconds
    ``runs.png``       wall seconds per tool and problem, cold and warm
    ``metadata.json``  checks (every run wrote its posterior; the twin's own checks passed), metrics, machine

Run (``make bench``; not part of ``make reproduce``)
    python -m experiments.first_answer           # about 4 minutes on 2 cores with bambi
    python -m experiments.first_answer --fast    # one cold run each, no bambi
"""

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes

from experiments import _cli
from models import diagnostics
from models.measure import machine

NAME = "first_answer"

PROBLEMS = {"ridge": (load_diabetes, "ridge"), "logistic": (load_breast_cancer, "logistic")}
"""Problem -> (scikit-learn data set, the twin command's ``--estimator``)."""

TWIN = """
import json, sys, time
start = time.perf_counter()
from experiments import twin
imports = time.perf_counter() - start
code = twin.main(sys.argv[1:])
print(json.dumps({"imports": imports, "exit": code}))
"""

BAMBI = """
import json, sys, time
start = time.perf_counter()
import bambi as bmb
import pandas as pd
imports = time.perf_counter() - start
data, family, out, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
frame = pd.read_csv(data)
formula = "target ~ " + " + ".join(c for c in frame.columns if c != "target")
priors = {"common": bmb.Prior("Normal", mu=0, sigma=1)} if family == "bernoulli" else None
model = bmb.Model(formula, frame, family=family, priors=priors)
built = time.perf_counter()
posterior = model.fit(draws=2000, tune=1000, chains=2, cores=2, random_seed=seed, progressbar=False)
fitted = time.perf_counter()
posterior.to_netcdf(out + "/posterior.nc", engine="h5netcdf")
steps = {"build": built - start - imports, "fit": fitted - built, "write": time.perf_counter() - fitted}
print(json.dumps({"imports": imports, "exit": 0} | steps))
"""


@dataclass(frozen=True)
class Config:
    """Published settings; :data:`FAST` is the smoke-run variant."""

    seed: int = 20261126
    warm_runs: int = 2
    cold: bool = True
    peer: bool = True


FAST = Config(warm_runs=0, cold=True, peer=False)


def peer_version() -> str:
    try:
        return f"bambi {importlib.metadata.version('bambi')}"
    except importlib.metadata.PackageNotFoundError:
        return "bambi not installed"


def write_table(problem: str, folder: Path) -> Path:
    """The problem's data set as the CSV a user would bring (spaces in names made underscores)."""
    data = PROBLEMS[problem][0](as_frame=True).frame
    data.columns = [str(c).replace(" ", "_") for c in data.columns]
    path = folder / f"{problem}.csv"
    data.to_csv(path, index=False)
    return path


def timed_run(tool: str, problem: str, table: Path, cache: Path, seed: int) -> dict:
    """One fresh process: its wall seconds, its steps' seconds and whether it wrote a posterior."""
    # base_compiledir holds PyTensor's C cache and its numba cache (nutpie's and bambi's compiled code).
    flags = [os.environ.get("PYTENSOR_FLAGS", ""), f"base_compiledir={cache / 'pytensor'}"]
    env = os.environ | {
        "PYTENSOR_FLAGS": ",".join(flag for flag in flags if flag),
        "NUMBA_CACHE_DIR": str(cache / "numba"),
    }
    with tempfile.TemporaryDirectory() as out:
        if tool == "priorlab":
            estimator = PROBLEMS[problem][1]
            args = ["--data", str(table), "--target", "target", "--estimator", estimator]
            command = [sys.executable, "-c", TWIN, *args, "--out", out, "--seed", str(seed)]
        else:
            family = "gaussian" if problem == "ridge" else "bernoulli"
            command = [sys.executable, "-c", BAMBI, str(table), family, out, str(seed)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - start
        lines = done.stdout.strip().splitlines()
        steps = json.loads(lines[-1]) if done.returncode == 0 and lines else {}
        wrote = (Path(out) / "posterior.nc").is_file()
        if tool == "priorlab" and wrote:
            metadata = json.loads((Path(out) / "metadata.json").read_text())
            timings = json.loads((Path(out) / "timings" / "timings.json").read_text())
            steps |= {k: v for k, v in timings["seconds"].items() if k != "total"}
            steps["checks_passed"] = all(c["passed"] for c in metadata["checks"].values())
        row = {"exit": done.returncode, "wrote_posterior": wrote, "wall_seconds": wall}
        row |= {
            k if k in ("exit", "checks_passed") else f"{k}_seconds": v for k, v in steps.items()
        }
    if done.returncode != 0:
        _cli.progress(f"{tool} {problem} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return row


class Result(NamedTuple):
    runs: pd.DataFrame


def run(config: Config) -> Result:
    tools = ["priorlab"]
    if config.peer and importlib.util.find_spec("bambi") is not None:
        tools.append("bambi")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for problem in PROBLEMS:
            table = write_table(problem, scratch)
            for tool in tools:
                cache = scratch / f"cache_{tool}_{problem}"
                runs = ["cold"] * config.cold + ["warm"] * config.warm_runs
                for number, kind in enumerate(runs):
                    _cli.progress(f"{tool} on {problem}, {kind} cache")
                    row = timed_run(tool, problem, table, cache, config.seed)
                    rows.append(
                        {"tool": tool, "problem": problem, "cache": kind, "run": number} | row
                    )
    return Result(pd.DataFrame(rows).set_index(["tool", "problem", "cache", "run"]))


def summarize(result: Result, config: Config) -> tuple[dict, dict]:
    """Seconds per tool, problem and cache (the fastest warm run: the least disturbed by the machine's
    load), the ratios bambi / priorlab, and correctness checks (never timings)."""
    runs = result.runs
    best = runs.groupby(level=["tool", "problem", "cache"]).wall_seconds.min()
    metrics = {f"{tool}_{problem}_{cache}_seconds": v for (tool, problem, cache), v in best.items()}
    for problem in PROBLEMS:
        for cache in ("cold", "warm"):
            key = f"{{}}_{problem}_{cache}_seconds"
            if key.format("bambi") in metrics and key.format("priorlab") in metrics:
                ratio = metrics[key.format("bambi")] / metrics[key.format("priorlab")]
                metrics[f"priorlab_speedup_over_bambi_{problem}_{cache}"] = ratio
    metrics["peer_measured"] = "bambi" in runs.index.get_level_values("tool")
    twin_runs = runs.xs("priorlab", level="tool")
    targets = {
        "every_run_wrote_its_posterior": (float(runs.wrote_posterior.mean()), ">=", 1.0),
        "twin_checks_passed": (
            float(twin_runs.get("checks_passed", pd.Series(False)).fillna(False).mean()),
            ">=",
            1.0,
        ),
    }
    return metrics, diagnostics.checks(targets)


def plot_runs(runs: pd.DataFrame):
    """Wall seconds from a fresh process to a posterior on disk, per problem: tools side by side."""
    best = runs.groupby(level=["problem", "tool", "cache"]).wall_seconds.min().unstack("cache")
    fig, axs = plt.subplots(1, len(PROBLEMS), figsize=(10, 3.6))
    for ax, problem in zip(np.atleast_1d(axs), PROBLEMS, strict=True):
        table = best.xs(problem, level="problem")
        table.plot.barh(ax=ax, color={"cold": "tab:blue", "warm": "tab:orange"})
        ax.set(
            title=f"{problem} ({PROBLEMS[problem][0].__name__[5:]})", xlabel="seconds", ylabel=""
        )
    fig.suptitle("Time to first answer: fresh process to posterior file")
    fig.tight_layout()
    return fig


def findings(metrics: dict) -> list[str]:
    """What the run found, in sentences, from its metrics."""
    sentences = [
        f"From a fresh process to a posterior on disk, the Ridge twin took "
        f"{metrics['priorlab_ridge_cold_seconds']:.1f} s on a cold compile cache"
        + (
            f" and {metrics['priorlab_ridge_warm_seconds']:.1f} s warm"
            if "priorlab_ridge_warm_seconds" in metrics
            else ""
        )
        + f"; the logistic twin {metrics['priorlab_logistic_cold_seconds']:.1f} s cold"
        + (
            f" and {metrics['priorlab_logistic_warm_seconds']:.1f} s warm."
            if "priorlab_logistic_warm_seconds" in metrics
            else "."
        ),
    ]
    if metrics["peer_measured"]:
        sentences.append(
            "bambi, sampling the same likelihood, was slower by "
            + ", ".join(
                f"{metrics[f'priorlab_speedup_over_bambi_{problem}_{cache}']:.1f}x ({problem}, {cache})"
                for problem in PROBLEMS
                for cache in ("cold", "warm")
                if f"priorlab_speedup_over_bambi_{problem}_{cache}" in metrics
            )
            + ": the twin's Gaussian posterior is exact (no sampling), and its compiled code is small."
        )
    else:
        sentences.append(
            "bambi was not installed, so no peer was measured (`make bench` installs it)."
        )
    return sentences


def artifacts(result: Result, config: Config) -> _cli.Artifacts:
    return _cli.Artifacts(
        tables={"runs.csv": result.runs},
        figures={"runs.png": plot_runs(result.runs)},
        metadata={"machine": machine(), "peer": peer_version()},
    )


def main(argv=None) -> int:
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
