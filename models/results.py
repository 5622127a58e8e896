"""Writing results: atomic files under ``results/<experiment>/``, provenance in ``metadata.json``.

Every file is written to a temporary file in the same folder and renamed into place, so an interrupted run
leaves either the old file or the new one, never half of one. ``metadata.json`` is written last.
"""

import json
import os
import platform
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
"""``results/`` at the repository root, whatever the working directory."""

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


def write_csv(frame, path) -> Path:
    """A pandas table at full precision."""
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


def write_posterior(idata, path) -> Path:
    """A posterior ``DataTree`` as netCDF (h5netcdf engine).

    nutpie stores some sampler statistics as Python objects (``divergence_message``); they are written as
    strings so the file round-trips.
    """

    def as_storable(node):
        dataset = node.to_dataset()
        for name, variable in dataset.data_vars.items():
            if variable.dtype == object:
                dataset[name] = variable.astype(str)
        return dataset

    storable = idata.copy()
    for node in storable.subtree:
        if node.has_data:
            storable[node.path] = as_storable(node)
    return write_atomic(path, lambda tmp: storable.to_netcdf(tmp, engine="h5netcdf"))


def versions() -> dict[str, str]:
    """Python and the versions of the stack's packages."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_metadata(path, *, config, seed, seconds, checks, metrics, **extra) -> Path:
    """``metadata.json``: config, seed, versions, seconds, checks (each with ``passed``), metrics."""
    data = {
        "config": config,
        "seed": seed,
        "versions": versions(),
        "seconds": seconds,
        "checks": checks,
        "metrics": metrics,
        **extra,
    }
    return write_json(data, path)
