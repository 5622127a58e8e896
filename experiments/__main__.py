"""``python -m experiments``: list the registered experiments (``--names``, ``--benchmarks``: names only, for
the Makefile)."""

import sys

from experiments import BENCHMARKS, EXPERIMENTS, TOOLS


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--names"], ["--benchmarks"]):
        print("\n".join(EXPERIMENTS if argv == ["--names"] else BENCHMARKS))
        return 0
    if argv:
        print("usage: python -m experiments [--names | --benchmarks]", file=sys.stderr)
        return 2
    print(
        "Experiments (priorlab run <name> [--fast] [--seed N] [--out DIR], or python -m experiments.<name>):"
    )
    for name, claim in EXPERIMENTS.items():
        print(f"  {name:20s} {claim}")
    print("Benchmarks (make bench, or priorlab run <name>):")
    for name, claim in BENCHMARKS.items():
        print(f"  {name:20s} {claim}")
    print("Tools (priorlab <name>, seed-study for seed_study):")
    for name, claim in TOOLS.items():
        print(f"  {name:20s} {claim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
