"""Compare a run's results with the committed ones: identical, equal to rounding, or within Monte Carlo error.

On the machine that made the committed results, the same seed gives the same bytes. On another CPU the last
bits of a computation can differ (OpenBLAS picks its kernels by CPU; nutpie's core may dispatch SIMD code at
run time), and one differing bit sends a NUTS trajectory elsewhere: other draws from the same posterior. This
tool says which of the three a run is, experiment by experiment:

* every table and ``metadata.json`` byte-identical: **identical**;
* else each check's value compared with the committed one. A check whose value did not vary across seeds
  in the seed study (an exact error, a count of zeros) must agree to 1e-6 relative, or both values must be
  below 1e-8 (errors at rounding level, which differ between machines); a check that varied is compared in
  units of its across-seed SD, ``|new - committed| / (sqrt(2) sd) <= 4`` (two independent runs; fails by
  chance about once in 15,000 per check). Without a seed study for the experiment, only the first rule applies.

Run
    python -m experiments.compare OTHER_RESULTS_DIR      # e.g. a clone's results/ after `make reproduce`
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import EXPERIMENTS, _cli
from models.data import DataError
from models.results import RESULTS_DIR, TIMINGS_DIR

NAME = "compare"
Z_MAX = 4.0
IDENTICAL, WITHIN_ERROR = "identical", "within rounding and Monte Carlo error"


def identical(ours: Path, theirs: Path) -> bool:
    """Every committed file but timings present and byte-identical in the other folder."""
    for path in ours.rglob("*"):
        if path.is_file() and TIMINGS_DIR not in path.relative_to(ours).parts:
            other = theirs / path.relative_to(ours)
            if path.suffix in (".csv", ".json") and (
                not other.is_file() or other.read_bytes() != path.read_bytes()
            ):
                return False
    return True


def across_seed_sd(rates: pd.DataFrame | None, experiment: str, check: str) -> float | None:
    """The check's across-seed SD from the seed study, or None when it was not studied."""
    if rates is None or (experiment, check) not in rates.index:
        return None
    row = rates.loc[(experiment, check)]
    return float(row["sd"]) if "sd" in row else None


def compare_checks(experiment: str, ours: dict, theirs: dict, rates) -> pd.DataFrame:
    """One row per check: committed value, new value, the rule applied and whether it holds."""
    rows = []
    for check, committed in ours.items():
        new = theirs.get(check, {}).get("value")
        a, b = committed["value"], new
        sd = across_seed_sd(rates, experiment, check)
        if b is None:
            rule, holds = "missing", False
        elif sd is not None and sd > 0:
            z = abs(float(b) - float(a)) / (np.sqrt(2.0) * sd)
            rule, holds = f"within Monte Carlo error ({z:.2f} SD of a difference)", bool(z <= Z_MAX)
        else:
            a, b = float(a), float(b)
            both_tiny = abs(a) <= 1e-8 and abs(b) <= 1e-8
            relative = abs(a - b) / max(abs(a), abs(b), 1e-300)
            rule, holds = "equal to rounding", bool(both_tiny or relative <= 1e-6)
        rows.append(
            {"experiment": experiment, "check": check, "committed": a, "new": b}
            | {"rule": rule, "holds": holds}
        )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = _cli.Parser(prog=f"python -m experiments.{NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="another results/ folder (from the same code)")
    args = parser.parse_args(argv)
    if not args.other.is_dir():
        raise DataError(f"{args.other} is not a folder")
    rates_path = RESULTS_DIR / "seed_study" / "failure_rates.csv"
    rates = (
        pd.read_csv(rates_path, index_col=["experiment", "check"]) if rates_path.is_file() else None
    )
    tables, verdicts = [], {}
    for name in EXPERIMENTS:
        ours, theirs = RESULTS_DIR / name, args.other / name
        if not (theirs / "metadata.json").is_file():
            verdicts[name] = "not in the other folder"
            continue
        mine, other = (json.loads((d / "metadata.json").read_text()) for d in (ours, theirs))
        if mine["code"] != other.get("code"):
            verdicts[name] = "made by other code: not comparable"
            continue
        if identical(ours, theirs):
            verdicts[name] = IDENTICAL
            continue
        table = compare_checks(name, mine["checks"], other["checks"], rates)
        tables.append(table)
        verdicts[name] = WITHIN_ERROR if table.holds.all() else "DIFFERENT"
    for name, verdict in verdicts.items():
        print(f"{name:20s} {verdict}")
    if tables:
        differing = pd.concat(tables)
        print(differing[~differing.holds].to_string() if (~differing.holds).any() else "")
    return 0 if set(verdicts.values()) <= {IDENTICAL, WITHIN_ERROR} else 1


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
