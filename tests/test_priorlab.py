"""The ``priorlab`` command: one entry point that dispatches to every experiment and tool."""

import importlib
import tomllib

import pytest

from experiments import EXPERIMENTS, priorlab
from models.results import ROOT


def test_console_script_is_declared_and_resolves():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["priorlab"].partition(":")
    assert getattr(importlib.import_module(module), function) is priorlab.console


def test_help_lists_every_command_with_working_examples(capsys):
    assert priorlab.main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("list", "run", "twin", "inspect", "report", "compare", "seed-study"):
        assert f"\n  {command} " in text
    assert "priorlab run ridge_equivalence --fast" in text


def test_list_names_every_experiment(capsys):
    assert priorlab.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in EXPERIMENTS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "usage: priorlab"),
        (["run"], "run needs an experiment"),
        (["run", "nope"], "got 'nope'"),
        (["bogus"], "unknown command 'bogus'"),
        (["inspect", "missing.nc"], "missing.nc: no such file"),
        (["seed-study", "nope"], "unknown experiment"),
    ],
)
def test_bad_commands_exit_2_with_one_line(argv, message, capsys):
    assert priorlab.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_subcommands_take_their_module_flags(capsys):
    with pytest.raises(SystemExit) as done:
        priorlab.main(["run", "posterior_spread", "--help"])
    assert done.value.code == 0
    assert "--fast" in capsys.readouterr().out
