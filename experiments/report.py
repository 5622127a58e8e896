"""Rebuild ``results/README.md`` from every registered experiment's ``metadata.json`` and figures.

Run
    python -m experiments.report          # also the last step of ``make reproduce``
"""

import json
import sys

import numpy as np
import pandas as pd

from experiments import BENCHMARKS, EXPERIMENTS
from models.results import RESULTS_DIR, TIMINGS_DIR, write_atomic


def _format(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_against(value, target: str) -> str:
    """A check's value with the digits its target needs: never printed equal to a bound it does not equal
    (R-hat 1.0096 against <= 1.01 reads 1.0096, not 1.01)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _format(value)
    try:
        bound = float(target.split()[-1])
    except ValueError:
        return _format(value)
    for digits in range(4, 12):
        text = f"{value:.{digits}g}"
        if value == bound or text != f"{bound:.{digits}g}":
            return text
    return repr(value)


def seed_study_line(name: str) -> list[str]:
    """One sentence on how the experiment's checks held across seeds, when studied."""
    path = RESULTS_DIR / "seed_study" / "failure_rates.csv"
    if not path.is_file():
        return []
    rates = pd.read_csv(path)
    rates = rates[rates.experiment == name]
    if rates.empty:
        return ["Across seeds: not studied yet (`make seed-study`).", ""]
    seeds, failed = int(rates.seeds.max()), rates[rates.failed > 0]
    varying = rates[np.isfinite(rates.margin_sd)]
    closest = varying.loc[varying.margin_sd.idxmin()] if not varying.empty else None
    text = f"Across {seeds} seeds at the published settings: "
    if failed.empty:
        text += f"every one of the {len(rates)} checks held"
    else:
        text += "failures: " + ", ".join(
            f"{r.check} ({r.failed} of {r.seeds})" for _, r in failed.iterrows()
        )
    if closest is not None:
        text += (
            f"; the closest, {closest.check}, stands {closest.margin_sd:.1f} across-seed SDs inside its target"
            f" (normal tail {closest.normal_tail:.1g})"
        )
    p_values = rates[rates.margin_sd.isna() & rates.normal_tail.notna()]
    if not p_values.empty:
        text += "; " + ", ".join(
            f"{r.check} is a p-value check: it fails by chance at its level, {r.normal_tail:g}"
            for _, r in p_values.iterrows()
        )
    return [text + " ([failure rates](seed_study/failure_rates.csv)).", ""]


def experiment_section(name: str, claim: str) -> list[str]:
    """The report's section for one experiment: checks, metrics and figures (timings are linked)."""
    folder = RESULTS_DIR / name
    lines = [f"## {name}", "", claim, ""]
    metadata_path = folder / "metadata.json"
    if not metadata_path.is_file():
        return lines + [
            f"**Not run yet**: `python -m experiments.{name}` writes `{name}/metadata.json`.",
            "",
        ]
    metadata = json.loads(metadata_path.read_text())
    checks = metadata["checks"]
    passed = sum(check["passed"] for check in checks.values())
    fingerprint = metadata.get("code", {}).get("sha256", "not recorded")[:12]
    lines += [
        f"Seed {metadata['seed']}; code fingerprint `{fingerprint}`; "
        f"**{passed} of {len(checks)} checks passed**. Timings of the committed run: "
        f"[{TIMINGS_DIR}/]({name}/{TIMINGS_DIR}/timings.json) (kept out of this report, so that two runs "
        "with the same seed give the same report).",
        "",
    ]
    lines += seed_study_line(name)
    lines += [
        "| check | value | target | passed |",
        "|---|---|---|---|",
    ]
    ordered = sorted(checks.items(), key=lambda item: item[1]["passed"])  # failed checks first
    lines += [
        f"| {check_name} | {format_against(check['value'], check['target'])} | {check['target']} "
        f"| {_format(check['passed'])} |"
        for check_name, check in ordered
    ]
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {metric} | {_format(value)} |" for metric, value in metadata["metrics"].items()]
    lines.append("")
    for figure in sorted(folder.glob("*.png")):
        lines += [f"![{name}: {figure.stem}]({name}/{figure.name})", ""]
    tables = ", ".join(f"[{t.name}]({name}/{t.name})" for t in sorted(folder.glob("*.csv")))
    lines += [f"Tables: {tables}.", ""]
    return lines


def seed_study_section() -> list[str]:
    """Failure rates of the checks across seeds (``python -m experiments.seed_study``), when studied."""
    path = RESULTS_DIR / "seed_study" / "failure_rates.csv"
    lines = ["## Checks across seeds", ""]
    if not path.is_file():
        return lines + [
            "**Not run yet**: `make seed-study` writes `seed_study/failure_rates.csv`.",
            "",
        ]
    rates = pd.read_csv(path)
    seeds = rates.groupby("experiment").seeds.max()
    lines += [
        "Every check of "
        + ", ".join(f"`{name}` ({n} seeds)" for name, n in seeds.items())
        + " rerun at the published settings with seeds 1, 2, ... (`python -m experiments.seed_study`). "
        "Listed: the checks that failed on some seed or whose mean stands less than 3 across-seed SDs from "
        "the target (margin); the normal tail beyond the margin is a rough rate for what 20 seeds cannot "
        "show. A check on a p-value fails by chance at its level, by construction (listed with the level). "
        "The others never failed and stand 3 SDs or more (or exactly) inside their targets.",
        "",
        "| experiment | check | target | failed | 95% upper bound | mean | margin (SD) | normal tail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    p_values = rates.margin_sd.isna() & rates.normal_tail.notna()
    close = rates[(rates.failed > 0) | (rates.margin_sd < 3) | p_values]
    lines += [
        f"| {r.experiment} | {r.check} | {r.target} | {r.failed} of {r.seeds} | {r.upper_95:.2f} "
        f"| {_format(float(r['mean']))} "
        f"| {'p-value: its level' if np.isnan(r.margin_sd) else f'{r.margin_sd:.2f}'} "
        f"| {r.normal_tail:.2g} |"
        for _, r in close.iterrows()
    ]
    unstudied = [name for name in EXPERIMENTS if name not in seeds.index]
    if unstudied:
        lines += ["", "Not studied yet: " + ", ".join(f"`{name}`" for name in unstudied) + "."]
    return lines + [
        "",
        f"All {len(rates)} rates: [failure_rates.csv](seed_study/failure_rates.csv).",
        "",
    ]


def build() -> str:
    """The whole report as Markdown."""
    lines = [
        "# priorlab results",
        "",
        "Regenerated by `make reproduce` (every experiment at full settings, then this report). Every number",
        "below is read from the experiment's `metadata.json`; posterior files (`*.nc`) are regenerated, not",
        "committed.",
        "",
    ]
    versions = {}
    for name, claim in (EXPERIMENTS | BENCHMARKS).items():
        lines += experiment_section(name, claim)
        metadata_path = RESULTS_DIR / name / "metadata.json"
        if metadata_path.is_file():
            versions[name] = json.loads(metadata_path.read_text())["versions"]
    lines += seed_study_section()
    return "\n".join(lines + versions_section(versions))


def versions_section(versions: dict) -> list[str]:
    """The package versions of every experiment's run: once when they agree, else per experiment."""
    if not versions:
        return []
    distinct = {json.dumps(v, sort_keys=True) for v in versions.values()}
    lines = ["## Versions", ""]
    if len(distinct) == 1:
        shared = next(iter(versions.values()))
        return lines + [
            f"Every experiment ran with: {', '.join(f'{k} {v}' for k, v in shared.items())}.",
            "",
        ]
    for name, found in versions.items():
        lines += [f"- `{name}`: {', '.join(f'{k} {v}' for k, v in found.items())}"]
    return lines + [""]


def main(argv=None) -> int:
    text = build()
    path = write_atomic(RESULTS_DIR / "README.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
