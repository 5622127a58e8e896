"""Rebuild ``results/README.md`` from every registered experiment's ``metadata.json`` and figures.

Run
    python -m experiments.report          # also the last step of ``make reproduce``
"""

import json
import sys
from pathlib import Path

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


def seed_study_line(name: str, checks=None) -> list[str]:
    """One sentence on how the experiment's checks held across seeds, when studied; only the checks it still
    has (``checks``) count, so a check that moved to another experiment is not reported twice."""
    path = RESULTS_DIR / "seed_study" / "failure_rates.csv"
    if not path.is_file():
        return []
    rates = pd.read_csv(path)
    rates = rates[rates.experiment == name]
    if checks is not None:
        rates = rates[rates.check.isin(list(checks))]
    if rates.empty:
        return ["Across seeds: not studied yet (`make seed-study`).", ""]
    seeds, failed = int(rates.seeds.max()), rates[rates.failed > 0]
    varying = rates[np.isfinite(rates.margin_sd)]
    closest = varying.loc[varying.margin_sd.idxmin()] if not varying.empty else None
    text = f"Across {seeds} seeds at the published settings: "
    partly = checks is not None and len(rates) < len(checks)
    if failed.empty:
        text += (
            f"the {len(rates)} of its {len(checks)} checks studied all held"
            if partly
            else f"all {len(rates)} checks held"
        )
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
    if partly:
        unstudied = sorted(set(checks) - set(rates.check))
        text += "; not studied yet: " + ", ".join(unstudied)
    return [text + " ([failure rates](seed_study/failure_rates.csv)).", ""]


def format_metric(name: str, value) -> str:
    """A metric with the digits it needs: R-hat to 3 decimals (1.004, not 1), counts whole, else 4
    significant digits."""
    if isinstance(value, float) and "rhat" in name:
        return f"{value:.3f}"
    return _format(value)


def metric_grids(metrics: dict) -> tuple[list[pd.DataFrame], dict]:
    """Metrics that form a grid, as pivot tables, and the rest.

    A grid is two or more prefixes (a data set, a method: ``diabetes_``, ``collinear.``) that share
    the same three or more quantities (``diabetes_pareto_k_max``, ``well_conditioned_pareto_k_max``, ...);
    its table has a row per quantity and a column per prefix. A key belongs to one grid at most.
    """
    by_prefix = {}
    for key in metrics:
        for cut in (i for i, character in enumerate(key) if character in "._"):
            by_prefix.setdefault(key[:cut], set()).add(key[cut + 1 :])
    by_quantities = {}
    for prefix, quantities in by_prefix.items():
        if len(quantities) >= 3:
            by_quantities.setdefault(frozenset(quantities), []).append(prefix)
    grids, used = [], set()
    # The largest grids first; a prefix of a prefix (``support`` of ``support_lasso``) is a different grid.
    for quantities, prefixes in sorted(
        by_quantities.items(), key=lambda item: -len(item[0]) * len(item[1])
    ):
        keys = {key for key in metrics for prefix in prefixes if _splits(key, prefix, quantities)}
        if len(prefixes) < 2 or keys & used:
            continue
        used |= keys
        table = pd.DataFrame(
            {
                prefix: {
                    q: format_metric(q, metrics[key])
                    for key in metrics
                    for q in sorted(quantities)
                    if _splits(key, prefix, {q})
                }
                for prefix in prefixes
            }
        )
        grids.append(table)
    return grids, {k: v for k, v in metrics.items() if k not in used}


def _splits(key: str, prefix: str, quantities) -> bool:
    """Whether ``key`` is ``prefix``, a separator (``_`` or ``.``), then one of ``quantities``."""
    return (
        key.startswith(prefix)
        and key[len(prefix) : len(prefix) + 1] in ("_", ".")
        and key[len(prefix) + 1 :] in quantities
    )


def markdown_table(table: pd.DataFrame, corner: str) -> list[str]:
    header = f"| {corner} | " + " | ".join(str(c) for c in table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    lines += [f"| {i} | " + " | ".join(str(v) for v in row) + " |" for i, row in table.iterrows()]
    return lines + [""]


def verdict(checks: dict) -> str:
    failed = [name for name, check in checks.items() if not check["passed"]]
    if failed:
        return f"**{len(failed)} of {len(checks)} checks FAILED**: " + ", ".join(failed)
    return f"**all {len(checks)} checks passed**"


def experiment_section(name: str, claim: str) -> list[str]:
    """One experiment: claim, verdict, findings and lead figure first; then failed checks, and the full
    checks, metrics, other figures and tables folded under ``<details>``."""
    folder = RESULTS_DIR / name
    lines = [f"## {name}", "", f"*Claim:* {claim}.", ""]
    metadata_path = folder / "metadata.json"
    if not metadata_path.is_file():
        return lines + [
            f"**Not run yet**: `python -m experiments.{name}` writes `{name}/metadata.json`.",
            "",
        ]
    metadata = json.loads(metadata_path.read_text())
    checks = metadata["checks"]
    lines += [f"*Verdict:* {verdict(checks)}.", ""]
    lines += [" ".join(metadata.get("findings", [])), ""] if metadata.get("findings") else []
    figures = metadata.get("figures") or sorted(f.name for f in folder.glob("*.png"))
    if figures:
        lines += [f"![{name}: {Path(figures[0]).stem}]({name}/{figures[0]})", ""]
    lines += seed_study_line(name, checks) if name in EXPERIMENTS else []  # benchmarks: timings

    def check_rows(items):
        return [
            f"| {check_name} | {format_against(check['value'], check['target'])} | {check['target']} "
            f"| {_format(check['passed'])} |"
            for check_name, check in items
        ]

    header = ["| check | value | target | passed |", "|---|---|---|---|"]
    failed = [(n, c) for n, c in checks.items() if not c["passed"]]
    if failed:
        lines += ["Failed checks:", "", *header, *check_rows(failed), ""]
    fingerprint = metadata.get("code", {}).get("sha256", "not recorded")[:12]
    grids, flat = metric_grids(metadata["metrics"])
    lines += [
        "<details><summary>Every check, metric, figure and table</summary>",
        "",
        f"Seed {metadata['seed']}; code fingerprint `{fingerprint}`. Timings of the committed run: "
        f"[{TIMINGS_DIR}/]({name}/{TIMINGS_DIR}/timings.json) (kept out of this report, so that two runs "
        "with the same seed give the same report).",
        "",
        *header,
        *check_rows(sorted(checks.items(), key=lambda item: item[1]["passed"])),
        "",
    ]
    for grid in grids:
        lines += markdown_table(grid, "metric")
    if flat:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {metric} | {format_metric(metric, v)} |" for metric, v in flat.items()]
        lines.append("")
    for figure in figures[1:]:
        lines += [f"![{name}: {Path(figure).stem}]({name}/{figure})", ""]
    tables = ", ".join(f"[{t.name}]({name}/{t.name})" for t in sorted(folder.glob("*.csv")))
    lines += [f"Tables: {tables}.", "", "</details>", ""]
    return lines


def overview() -> list[str]:
    """One line per experiment and benchmark: its verdict, linked to its section."""
    lines = ["| experiment | verdict |", "|---|---|"]
    for name in EXPERIMENTS | BENCHMARKS:
        path = RESULTS_DIR / name / "metadata.json"
        found = verdict(json.loads(path.read_text())["checks"]) if path.is_file() else "not run yet"
        lines.append(f"| [{name}](#{name}) | {found} |")
    return lines + [""]


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
    current = {
        name: json.loads((RESULTS_DIR / name / "metadata.json").read_text())["checks"]
        for name in EXPERIMENTS
        if (RESULTS_DIR / name / "metadata.json").is_file()
    }
    # A check studied in an experiment that no longer has it (it moved with a split) is left out.
    pairs = zip(rates.experiment, rates.check, strict=True)
    rates = rates[[check in current.get(experiment, {}) for experiment, check in pairs]]
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
    note = json.loads((path.parent / "metadata.json").read_text()).get("note")
    if note:  # what changed since the study ran, recorded with it (a new study run drops it)
        lines += ["", note]
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
        "committed. Each experiment opens with its claim, the verdict of its checks, what it found and its",
        "lead figure; the rest is folded below it.",
        "",
        *overview(),
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
