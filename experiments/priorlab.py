"""``priorlab``: one command for everything a user types (installed as a console script by ``make``).

Each subcommand runs the module ``python -m experiments.<name>`` runs, with the same flags, errors and exit
codes; ``priorlab COMMAND --help`` shows its options.
"""

import importlib
import os
import sys

from experiments import BENCHMARKS, EXPERIMENTS, TOOLS, _cli
from experiments import __main__ as listing

USAGE = """usage: priorlab COMMAND [ARGS ...]

Commands:
  list                    the experiments, benchmarks and tools, each with its claim
  run EXPERIMENT [FLAGS]  run one experiment or benchmark (--fast, --seed N, --out DIR, --data, --target)
  twin FLAGS              the Bayesian twin of your estimator on your CSV table
  inspect PATH [FLAGS]    summary, convergence verdict and plots of a posterior file
  report                  rebuild results/README.md from every experiment's metadata.json
  compare DIR             another results/ folder against the committed one
  seed-study [NAME ...]   every check's failure rate over seeds 1..20 at published settings

Examples:
  priorlab list
  priorlab run ridge_equivalence --fast --out /tmp/smoke
  priorlab twin --data table.csv --target y --estimator ridge --alpha 1
  priorlab inspect results/posterior_spread/posterior.nc --plots /tmp/plots
  priorlab report

priorlab COMMAND --help shows that command's options."""


def _module_main(name: str):
    return importlib.import_module(f"experiments.{name}").main


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "list":
        return listing.main(rest)
    if command == "run":
        runnable = {**EXPERIMENTS, **BENCHMARKS}
        if not rest or rest[0] not in runnable:
            got = f"got {rest[0]!r}" if rest else "got none"
            print(
                f"error: run needs an experiment: one of {', '.join(runnable)} ({got})",
                file=sys.stderr,
            )
            return 2
        return _cli.run(_module_main(rest[0]), rest[1:])
    tool = command.replace("-", "_")
    if tool in TOOLS:
        return _cli.run(_module_main(tool), rest)
    print(f"error: unknown command {command!r}; priorlab --help lists them", file=sys.stderr)
    return 2


def console() -> None:
    """The ``priorlab`` console script (output piped into ``head`` ends quietly)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
