"""The command-line plumbing every experiment shares: flags, one-line errors, output folders."""

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from models.data import DataError
from models.results import RESULTS_DIR, check_output_folder


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2.

    A value that starts with a minus sign is taken as the option's value (``--path -1,1``, ``--seed -1``),
    where argparse would read it as an unknown option; the option's own check then says what is wrong.
    """

    def error(self, message):
        self.exit(2, f"error: {message}\n")

    def parse_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        merged, i = [], 0
        while i < len(args):
            action = self._option_string_actions.get(args[i])
            takes_value = action is not None and action.nargs is None
            if takes_value and i + 1 < len(args) and re.match(r"-[\d.]", args[i + 1]):
                merged.append(f"{args[i]}={args[i + 1]}")
                i += 2
            else:
                merged.append(args[i])
                i += 1
        return super().parse_args(merged, namespace)


def seed_value(text: str) -> int:
    """A seed for NumPy's and nutpie's generators: an integer in [0, 2**32)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= seed < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {seed}")
    return seed


def parser(name: str, description: str, *, data: bool = True) -> Parser:
    """The shared flags: ``--fast``, ``--seed``, ``--out`` and, with ``data``, ``--data`` / ``--target``."""
    p = Parser(prog=f"python -m experiments.{name}", description=description)
    p.add_argument(
        "--fast", action="store_true", help="tiny settings for a smoke run (the tests use it)"
    )
    p.add_argument(
        "--seed", type=seed_value, default=None, help="override the configuration's seed"
    )
    p.add_argument(
        "--out", type=Path, default=None, help=f"output folder (default: results/{name})"
    )
    if data:
        p.add_argument(
            "--data", type=Path, default=None, help="your own CSV table instead of the bundled data"
        )
        p.add_argument("--target", default=None, help="the response column of --data")
    return p


def configure(args, published, fast):
    """The configuration a run uses: ``fast`` with ``--fast``, else ``published``; ``--seed`` overrides the seed."""
    config = fast if args.fast else published
    return config if args.seed is None else dataclasses.replace(config, seed=args.seed)


def output_dir(name: str, args) -> Path:
    """``--out``, or ``results/<name>`` (``results/<name>/<table>`` for a user's ``--data``), checked writable
    before any work is done."""
    if args.out is not None:
        return check_output_folder(args.out)
    if getattr(args, "data", None) is not None:
        return check_output_folder(RESULTS_DIR / name / args.data.stem)
    return check_output_folder(RESULTS_DIR / name)


def progress(message: str) -> None:
    """One line of progress on stderr, so long runs show where they are."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def run(main, argv=None) -> int:
    """Call ``main(argv)``; bad input becomes ``error: <message>`` on one line and exit code 2."""
    try:
        return main(argv)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: files already written are complete; nothing else was written",
            file=sys.stderr,
        )
        return 130


def report(out: Path, metrics: dict, checks: dict) -> int:
    """Print the headline metrics and the checks; exit code 1 when a check failed (results stay written)."""
    for name, value in metrics.items():
        print(f"{name:40s} {value:.4g}" if isinstance(value, float) else f"{name:40s} {value}")
    failed = [name for name, check in checks.items() if not check["passed"]]
    if failed:
        print(f"checks failed: {', '.join(failed)} (see {out / 'metadata.json'})")
        return 1
    print(f"all {len(checks)} checks passed; wrote {out}")
    return 0
