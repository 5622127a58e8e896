"""Writing results: atomic result sets under ``results/<experiment>/``, provenance in ``metadata.json``.

Every file is written to a temporary file in the same folder and renamed into place, so an interrupted run
leaves either the old file or the new one, never half of one. A run writes its whole set of files through
:func:`result_set`: into a fresh staging folder that replaces the output folder at the end, so the folder holds
either the complete old set or the complete new one, and a second run writing to the same folder meanwhile
is refused. ``metadata.json`` is written last.
"""

import ast
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import xarray as xr
from pandas.api.types import is_numeric_dtype

from models.data import DataError

__all__ = [
    "ROOT",
    "RESULTS_DIR",
    "PACKAGES_OF_THIS_REPOSITORY",
    "PACKAGES",
    "code_fingerprint",
    "write_atomic",
    "check_output_folder",
    "result_set",
    "TIMINGS_DIR",
    "is_timing",
    "write_csv",
    "write_figure",
    "write_json",
    "UNSTABLE_ATTRS",
    "write_posterior",
    "read_posterior",
    "versions",
    "write_metadata",
]

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""

RESULTS_DIR = ROOT / "results"
"""``results/`` at the repository root, whatever the working directory."""

PACKAGES_OF_THIS_REPOSITORY = ("models", "experiments")

PACKAGES = (
    "pymc",
    "pytensor",
    "pymc-extras",
    "nutpie",
    "arviz",
    "arviz-stats",
    "scikit-learn",
    "numpy",
    "scipy",
    "xarray",
    "matplotlib",
    "h5netcdf",
    "dask",
    "distributed",
    "numpyro",
    "blackjax",
    "jax",
)


def _module_file(module: str) -> Path | None:
    """The source file of a module inside this repository's packages, or None."""
    parts = module.split(".")
    if parts[0] not in PACKAGES_OF_THIS_REPOSITORY or parts == ["experiments"]:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(tree: ast.Module) -> set[str]:
    """Every module an AST imports, anywhere in it (``from a import b`` names both ``a`` and ``a.b``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def code_fingerprint(module: str) -> dict:
    """A fingerprint of the code a module runs: itself and every module of this repository it imports.

    The imports are followed statically and transitively (function-level imports included) through
    ``models`` and ``experiments``, ``models/__init__.py`` included (it sets how numba generates code).
    ``experiments/__init__.py`` does not count: it is the registry of experiment names and claims. Each module
    counts by its syntax tree without docstrings, so comments, formatting and documentation can change
    without making results stale, while any change to what the code does changes the fingerprint. Syntax
    trees are compared within one Python minor version (``ast.dump`` may change between them); the stack's
    versions are recorded separately (:func:`versions`).

    Returns
    -------
    dict
        ``{"sha256": hex digest, "modules": sorted module names}``.
    """
    seen: dict[str, str] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        seen[name] = ast.dump(_without_docstrings(tree))
        pending += [m for m in _imported_modules(tree) if m not in seen]
        pending += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(f"{name}\n{seen[name]}\n".encode())
    return {"sha256": digest.hexdigest(), "modules": sorted(seen)}


def write_atomic(path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output_folder(out) -> Path:
    """``out`` as a Path, after checking that a run can write its results there (before any work is done).

    Raises
    ------
    DataError
        ``out`` is an existing file, lies under a file, or its nearest existing folder is not writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"output folder {out}: exists and is not a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(f"output folder {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataError(f"output folder {out}: {existing} is not writable")
    return out


@contextlib.contextmanager
def result_set(out):
    """Yield a fresh staging folder for a run's files; on success it replaces ``out`` as a whole.

    ``out`` then holds exactly the files of this run (stale files of an older run go), plus the subfolders of
    the old ``out`` that this run did not write (another table's results, ``results/<experiment>/<table>``).
    On an error or an interrupt the staging folder is removed and ``out`` is untouched. A second run into the
    same ``out`` while this one writes is refused (an exclusive lock on ``.<name>.lock`` next to it).
    """
    out = check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.parent / f".{out.name}.lock"
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"output folder {out}: another run is writing there now") from None
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        try:
            yield staging
            if out.is_dir():
                for child in out.iterdir():
                    if child.is_dir() and not (staging / child.name).exists():
                        os.rename(child, staging / child.name)
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
                os.rename(out, old / out.name)
                os.rename(staging, out)
                shutil.rmtree(old)
            else:
                os.rename(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            lock_path.unlink(missing_ok=True)


TIMINGS_DIR = "timings"
"""The subfolder of an experiment's results that holds its timings, apart from the tables people diff."""


def is_timing(name: str) -> bool:
    """Whether a column or metric is a timing: its name says seconds, a speed-up or a rate per second.

    Timings differ between two runs with the same seed, so they are written apart (:data:`TIMINGS_DIR`);
    every other result file of two same-seed runs on one machine is byte-identical.
    """
    return any(word in name for word in ("seconds", "speedup", "per_second"))


def write_csv(frame, path) -> Path:
    """A pandas table at full precision; its timing columns go to ``timings/<name>`` beside it.

    The timing table keeps the index and the text columns, so each of its rows names its item.
    """
    path = Path(path)
    timing = [c for c in frame.columns if is_timing(str(c))]
    if timing:
        keys = [c for c in frame.columns if c not in timing and not is_numeric_dtype(frame[c])]
        write_atomic(
            path.parent / TIMINGS_DIR / path.name,
            lambda tmp: frame[keys + timing].to_csv(tmp, float_format="%.17g"),
        )
        frame = frame.drop(columns=timing)
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, float_format="%.17g"))


def write_figure(fig, path, *, dpi: int = 120) -> Path:
    """A matplotlib figure as PNG."""
    return write_atomic(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    )


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(data, path) -> Path:
    """JSON with sorted keys, NumPy scalars converted."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text))


UNSTABLE_ATTRS = ("created_at",)
"""Attributes of a posterior that change from run to run whatever the seed (a clock reading)."""


def write_posterior(idata, path) -> Path:
    """A posterior ``DataTree`` as netCDF (h5netcdf engine).

    nutpie stores some sampler statistics as Python objects (``divergence_message``); they are written as
    strings so the file round-trips. ArviZ's ``created_at`` stamp is left out (:data:`UNSTABLE_ATTRS`), so
    two runs with the same seed write identical files.
    """

    def as_storable(node):
        dataset = node.to_dataset()
        dataset.attrs = {k: v for k, v in dataset.attrs.items() if k not in UNSTABLE_ATTRS}
        for name, variable in dataset.data_vars.items():
            if variable.dtype == object:
                dataset[name] = variable.astype(str)
        return dataset

    storable = idata.copy()
    for node in storable.subtree:
        if node.has_data:
            storable[node.path] = as_storable(node)
    return write_atomic(path, lambda tmp: storable.to_netcdf(tmp, engine="h5netcdf"))


def read_posterior(path) -> xr.DataTree:
    """Read a posterior ``DataTree`` into memory.

    Raises
    ------
    DataError
        No such file, not a readable netCDF file, no ``posterior`` group, or a posterior without
        ``chain`` and ``draw`` dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            idata = tree.load()
    except Exception as error:  # h5py, h5netcdf and xarray raise many types on a bad file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: not a readable netCDF posterior file ({reason})") from None
    if "posterior" not in idata.children:
        groups = ", ".join(idata.children) or "none"
        raise DataError(f"{path}: no 'posterior' group (groups: {groups}); not a posterior file")
    posterior = idata["posterior"]
    text = [
        name for name, v in posterior.data_vars.items() if not np.issubdtype(v.dtype, np.number)
    ]
    if text:
        print(
            f"warning: {path}: left out non-numeric variable(s) {', '.join(text)}", file=sys.stderr
        )
        idata["posterior"] = posterior.to_dataset().drop_vars(text)
        posterior = idata["posterior"]
    if not set(("chain", "draw")) <= set(posterior.dims) or not posterior.data_vars:
        raise DataError(
            f"{path}: the 'posterior' group has no variables with 'chain' and 'draw' dimensions"
        )
    for group in (
        "posterior",
        "sample_stats",
    ):  # ArviZ's plots need a coordinate on every dimension
        if group in idata.children:
            dataset = idata[group].to_dataset()
            missing = {
                d: np.arange(size) for d, size in dataset.sizes.items() if d not in dataset.coords
            }
            idata[group] = dataset.assign_coords(missing)
    return idata


def versions() -> dict[str, str]:
    """Python and the versions of the stack's packages."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_metadata(path, *, module, config, seed, seconds, checks, metrics, **extra) -> Path:
    """``metadata.json`` (written last) and ``timings/timings.json`` beside it.

    ``metadata.json`` holds the config, seed, versions, the fingerprint of the code that ran (``module``,
    the experiment's module name: :func:`code_fingerprint`), the checks (each with ``passed``) and the
    metrics that are not timings. ``timings/timings.json`` holds ``seconds`` and the timing metrics
    (:func:`is_timing`), so two same-seed runs write identical ``metadata.json`` files.
    """
    path = Path(path)
    write_json(
        {
            "seconds": seconds,
            "metrics": {k: v for k, v in metrics.items() if is_timing(k)},
        },
        path.parent / TIMINGS_DIR / "timings.json",
    )
    data = {
        "config": config,
        "seed": seed,
        "versions": versions(),
        "code": code_fingerprint(module),
        "checks": checks,
        "metrics": {k: v for k, v in metrics.items() if not is_timing(k)},
        **extra,
    }
    return write_json(data, path)
