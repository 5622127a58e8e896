"""Seed study: how often each experiment's checks fail by chance at the published settings.

A check on a Monte Carlo quantity (R-hat, ESS, an MCSE z-score, an SD ratio, a coverage) must hold across
seeds, not on one lucky seed. This tool reruns whole experiments at their published settings with seeds
1, 2, ... (each in a fresh process, into a temporary folder, so ``results/<experiment>/`` is untouched) and
records every check's value. Per check it reports the observed failures, an exact 95% upper bound on the
failure rate (Clopper-Pearson), and the margin: how many across-seed standard deviations the mean value
stands from the target, with the normal tail probability beyond it (a rough estimate of rates too small to
observe in 20 seeds; a check whose value does not vary, such as an exact MAP error at rounding level, has an
infinite margin; a count, such as divergences, has none). A check on a p-value (a name ending in
``uniform`` or ``p_value``, such as an SBC uniformity test at ``>= 0.01``) has no normal margin either: its
values are uniform for a correct method, and its false-failure rate is its level by construction (at most the
level, after a Bonferroni correction), which is what the normal-tail column then holds.

Writes ``results/seed_study/checks.csv`` (experiment, seed, check, value, target, passed) after every run, so
an interrupted study loses nothing and resumes where it stopped, then ``failure_rates.csv`` and
``metadata.json``.

Run
    python -m experiments.seed_study choosing_lambda posterior_spread --seeds 20
    python -m experiments.seed_study            # every experiment of ``make reproduce`` (hours on 2 cores)
"""

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from experiments import EXPERIMENTS, _cli
from models.data import DataError
from models.results import write_csv, write_metadata

NAME = "seed_study"
COLUMNS = ["experiment", "seed", "check", "value", "target", "passed"]


def run_once(experiment: str, seed: int, *, fast: bool = False) -> pd.DataFrame:
    """One published-settings (or ``--fast``) run of ``experiment`` with ``seed`` in a fresh process: its checks."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", f"experiments.{experiment}", "--seed", str(seed)]
        command += ["--fast"] if fast else []
        done = subprocess.run([*command, "--out", out], capture_output=True, text=True, check=False)
        metadata = Path(out) / "metadata.json"
        if done.returncode not in (0, 1) or not metadata.is_file():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"{experiment} --seed {seed} exited {done.returncode}: {tail}")
        checks = json.loads(metadata.read_text())["checks"]
    return pd.DataFrame(
        [
            {"experiment": experiment, "seed": seed, "check": name}
            | {"value": check["value"], "target": check["target"], "passed": check["passed"]}
            for name, check in checks.items()
        ],
        columns=COLUMNS,
    )


def margin(values: pd.Series, target: str) -> float:
    """Across-seed SDs between the mean value and the target, on the passing side (inf if it never varies).

    NaN for counts (such as divergences): a normal approximation says nothing about a rare count.
    """
    operator, _, bound = target.partition(" ")
    try:
        bound = float(bound)
        values = values.astype(float)
    except ValueError:
        return np.nan
    if values.std(ddof=1) > 0 and np.all(values == np.round(values)) and bound == round(bound):
        return np.nan
    distance = bound - values.mean() if operator.startswith("<") else values.mean() - bound
    spread = values.std(ddof=1)
    if not spread > 0:
        return np.inf if distance >= 0 else -np.inf
    return float(distance / spread)


P_VALUE_CHECK = re.compile(r"(uniform|p_value)$")
"""Checks whose value is a p-value: their false-failure rate is their level, not a normal tail."""


def failure_rates(checks: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and check: seeds, failures, observed rate, 95% upper bound, margin, normal tail."""
    rows = []
    for (experiment, check), group in checks.groupby(["experiment", "check"], sort=False):
        n, failed = len(group), int((~group.passed.astype(bool)).sum())
        upper = 1.0 if failed == n else float(scipy.stats.beta.ppf(0.95, failed + 1, n - failed))
        target = group.target.iloc[0]
        is_p_value = bool(P_VALUE_CHECK.search(check)) and target.startswith(">=")
        m = np.nan if is_p_value else margin(group.value, target)
        tail = (
            float(target.split()[-1])
            if is_p_value
            else (float(scipy.stats.norm.sf(m)) if not np.isinf(m) else float(m < 0))
        )
        rows.append(
            {"experiment": experiment, "check": check, "target": group.target.iloc[0]}
            | {"seeds": n, "failed": failed, "failure_rate": failed / n, "upper_95": upper}
            | {"mean": pd.to_numeric(group.value, errors="coerce").mean()}
            | {"sd": pd.to_numeric(group.value, errors="coerce").std(ddof=1), "margin_sd": m}
            | {"normal_tail": tail}
        )
    return pd.DataFrame(rows).set_index(["experiment", "check"])


def main(argv=None) -> int:
    parser = _cli.Parser(prog=f"python -m experiments.{NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", help="experiments to study (default: all)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds 1..N per experiment")
    parser.add_argument("--fast", action="store_true", help="study the fast settings (a smoke run)")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"output folder (default: results/{NAME})"
    )
    args = parser.parse_args(argv)
    names = args.experiments or list(EXPERIMENTS)
    unknown = [name for name in names if name not in EXPERIMENTS]
    if unknown:
        raise DataError(f"unknown experiment(s) {', '.join(unknown)}; see python -m experiments")
    if args.seeds < 2:
        raise DataError(f"--seeds must be >= 2, got {args.seeds}")
    out = _cli.output_dir(NAME, args)
    table_path = out / "checks.csv"
    checks = (
        pd.read_csv(table_path, dtype={"target": str})
        if table_path.is_file()
        else pd.DataFrame(columns=COLUMNS)
    )
    start = time.perf_counter()
    for name in names:
        for seed in range(1, args.seeds + 1):
            if ((checks.experiment == name) & (checks.seed == seed)).any():
                continue
            _cli.progress(f"{name} --seed {seed}")
            checks = pd.concat([checks, run_once(name, seed, fast=args.fast)], ignore_index=True)
            write_csv(checks.set_index(["experiment", "seed", "check"]), table_path)
            checks = pd.read_csv(table_path, dtype={"target": str})
    studied = checks[checks.experiment.isin(names) & (checks.seed <= args.seeds)]
    rates = failure_rates(checks)
    write_csv(rates, out / "failure_rates.csv")
    metrics = {
        "experiments": sorted(set(checks.experiment)),
        "checks_studied": len(rates),
        "checks_with_failures": int((rates.failed > 0).sum()),
        "max_failure_rate": float(rates.failure_rate.max()),
    }
    write_metadata(
        out / "metadata.json",
        module=f"experiments.{NAME}",
        config={"experiments": names, "seeds": args.seeds, "fast": args.fast},
        seed=None,
        seconds={"total": time.perf_counter() - start},
        checks={},
        metrics=metrics,
        seeds_per_experiment=checks.groupby("experiment").seed.nunique().to_dict(),
    )
    print(rates[rates.failed > 0].to_string() if (rates.failed > 0).any() else "no failures")
    print(f"{len(studied)} check values from {studied.seed.nunique()} seeds; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
