"""The shell every experiment runs in: flags, one-line errors, output folders, and one ``main``.

An experiment is a module that says its argument and nothing else:

* ``NAME``, a docstring whose first line is its description, ``Config`` (a frozen dataclass with a ``seed``)
  and ``FAST`` (the smoke-run settings);
* ``run(config, **inputs)``: the computation, returning a result (with ``seconds`` where it times its steps);
* ``summarize(result, config) -> (metrics, checks)``: the numbers and the claims checked on them;
* ``findings(metrics) -> list[str]``: two to four sentences of what the run found, numbers filled in from the
  metrics (the report opens the experiment with them);
* ``artifacts(result, config) -> Artifacts``: the tables, figures and posteriors it writes;
* optionally ``USER_DATA = True`` (``--data`` / ``--target``), ``add_options(parser)`` for its own flags and
  ``read_options(args, config) -> (config, inputs)`` to turn them into settings and ``run``'s inputs.

:func:`main` does the rest, the same way for every experiment: parse, configure, check the output folder
before any work, run, summarize, then write every artifact into one atomic result set with ``metadata.json``
last, and print the verdict (exit 1 when a check failed, 2 on bad input).
"""

import argparse
import dataclasses
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt

from models.data import DataError
from models.results import (
    RESULTS_DIR,
    check_output_folder,
    result_set,
    write_csv,
    write_figure,
    write_metadata,
    write_posterior,
)


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


@dataclass
class Artifacts:
    """What one run writes, by file name.

    ``tables``: DataFrames, their index the key columns (``write_csv``); ``figures``: matplotlib figures, the
    first one the experiment's lead figure in the report; ``posteriors``: ``DataTree`` posteriors (netCDF,
    regenerated rather than committed); ``config``: settings to record beside the ``Config`` (the data set
    used, a constant of the module); ``metadata``: further ``metadata.json`` entries.
    """

    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    posteriors: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def main(experiment, argv=None) -> int:
    """Run ``experiment`` (a module; see this module's docstring) from the command line ``argv``."""
    p = parser(
        experiment.NAME,
        experiment.__doc__.splitlines()[0],
        data=getattr(experiment, "USER_DATA", False),
    )
    if hasattr(experiment, "add_options"):
        experiment.add_options(p)
    args = p.parse_args(argv)
    config = configure(args, experiment.Config(), experiment.FAST)
    inputs = {}
    if hasattr(experiment, "read_options"):
        config, inputs = experiment.read_options(args, config)
    out = output_dir(experiment.NAME, args)

    start = time.perf_counter()
    result = experiment.run(config, **inputs)
    metrics, checks = experiment.summarize(result, config)
    written = experiment.artifacts(result, config)
    steps = getattr(result, "seconds", None)  # a result that times its steps has ``seconds``
    steps = steps if isinstance(steps, dict) else {}
    if getattr(experiment, "USER_DATA", False):
        written.config["data"] = args.data.name if args.data is not None else "bundled"
    with result_set(out) as folder:
        for name, table in written.tables.items():
            write_csv(table, folder / name)
        for name, figure in written.figures.items():
            write_figure(figure, folder / name)
        plt.close("all")
        for name, posterior in written.posteriors.items():
            write_posterior(posterior, folder / name)
        write_metadata(
            folder / "metadata.json",
            module=f"experiments.{experiment.NAME}",
            config=dataclasses.asdict(config) | written.config,
            seed=config.seed,
            seconds=steps | {"total": time.perf_counter() - start},
            checks=checks,
            metrics=metrics,
            findings=experiment.findings(metrics),
            figures=list(written.figures),
            **written.metadata,
        )
    return report(out, metrics, checks)
