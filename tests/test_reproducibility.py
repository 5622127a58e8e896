"""Committed results match the code and the pinned stack; the same seed gives the same bits on one machine."""

import hashlib
import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from experiments import EXPERIMENTS, report
from models.results import (
    PACKAGES,
    RESULTS_DIR,
    ROOT,
    TIMINGS_DIR,
    code_fingerprint,
    write_csv,
    write_metadata,
    write_posterior,
)


def pinned_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_committed_results_were_made_by_the_current_code(name):
    """A table older than its code cannot land: rerun the experiment (or ``make reproduce``) and commit."""
    metadata = json.loads((RESULTS_DIR / name / "metadata.json").read_text())
    recorded_python = metadata["versions"]["python"].rsplit(".", 1)[0]
    if recorded_python != platform.python_version().rsplit(".", 1)[0]:
        pytest.skip(
            f"fingerprints are syntax trees of Python {recorded_python} (ast.dump varies by version)"
        )
    current = code_fingerprint(f"experiments.{name}")
    recorded = metadata.get("code", {})
    changed = sorted(set(current["modules"]) ^ set(recorded.get("modules", [])))
    assert recorded.get("sha256") == current["sha256"], (
        f"results/{name} is stale: the code it ran changed since (modules added or dropped: {changed}); "
        f"rerun `python -m experiments.{name}` and commit results/{name}"
    )


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_committed_results_were_made_with_the_pinned_stack(name):
    recorded = json.loads((RESULTS_DIR / name / "metadata.json").read_text())["versions"]
    pins = pinned_versions()
    # The optional JAX samplers may be absent ("not installed"); every installed package must be the pinned one.
    differing = {
        package: (recorded.get(package), pins[package])
        for package in PACKAGES
        if package in pins and recorded.get(package) not in (pins[package], "not installed")
    }
    assert not differing, (
        f"results/{name} was made with other versions (recorded, pinned): {differing}"
    )


def test_committed_report_is_rebuilt_from_the_committed_metadata():
    assert (RESULTS_DIR / "README.md").read_text() == report.build(), "run `make report`"


def test_fingerprint_follows_imports_and_ignores_documentation(tmp_path, monkeypatch):
    import models.results as results

    for package in ("models", "experiments"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    library = tmp_path / "models" / "core.py"
    library.write_text('"""Doc."""\n\n\ndef f(x):\n    return 2 * x\n')
    (tmp_path / "experiments" / "demo.py").write_text(
        "def run():\n    from models.core import f\n\n    return f(1)\n"
    )
    monkeypatch.setattr(results, "ROOT", tmp_path)
    before = results.code_fingerprint("experiments.demo")
    assert before["modules"] == ["experiments.demo", "models", "models.core"]
    library.write_text('"""Other words."""\n\n\ndef f(x):  # a comment\n    return 2 * x\n')
    assert results.code_fingerprint("experiments.demo") == before
    library.write_text('"""Doc."""\n\n\ndef f(x):\n    return 3 * x\n')
    assert results.code_fingerprint("experiments.demo")["sha256"] != before["sha256"]


def test_timings_are_written_apart_from_the_tables(tmp_path):
    frame = pd.DataFrame({"case": ["a", "b"], "error": [1e-12, 2e-12], "fit_seconds": [0.5, 0.7]})
    write_csv(frame.set_index("case"), tmp_path / "fits.csv")
    assert list(pd.read_csv(tmp_path / "fits.csv").columns) == ["case", "error"]
    timings = pd.read_csv(tmp_path / TIMINGS_DIR / "fits.csv")
    assert list(timings.columns) == ["case", "fit_seconds"]
    metrics = {"max_error": 1e-12, "path_speedup_vs_rebuild": 30.0}
    write_metadata(
        tmp_path / "metadata.json",
        module="experiments.ridge_equivalence",
        config={},
        seed=1,
        seconds={"total": 3.0},
        checks={},
        metrics=metrics,
    )
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata["metrics"] == {"max_error": 1e-12} and "seconds" not in metadata
    assert json.loads((tmp_path / TIMINGS_DIR / "timings.json").read_text()) == {
        "seconds": {"total": 3.0},
        "metrics": {"path_speedup_vs_rebuild": 30.0},
    }


NUTS_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    from models.fit import compile_nuts, sample_nuts
    from models.linear import linear_regression
    from models.results import write_posterior

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ [1.0, -0.5, 0.25] + rng.standard_normal(40)
    model = linear_regression(X, y, ridge_alpha=1.0)
    idata = sample_nuts(compile_nuts(model), seed=5, draws=300, tune=300)
    write_posterior(idata, sys.argv[1])
    draws = np.ascontiguousarray(idata["posterior"]["beta"].values)
    print(hashlib.sha256(draws.tobytes()).hexdigest())
    """
)


def test_same_seed_gives_bitwise_equal_draws_on_a_cold_and_a_warm_compile_cache(tmp_path):
    """The same NUTS fit in fresh processes: one on an empty PyTensor base compile directory (which also holds
    PyTensor's numba cache), one on another empty directory at the same time, then one on the cache the first
    left behind. The draws and the posterior files they write are bitwise equal. (With numba's
    fast-math the cold and the warm cache gave different draws; two cold caches alone did not show it.)"""
    script = tmp_path / "fit.py"
    script.write_text(NUTS_SCRIPT)

    def start(name, cache):
        env = os.environ | {
            "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / cache}",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        command = [sys.executable, str(script), str(tmp_path / f"{name}.nc")]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)

    def result(name, process):
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0
        return out.strip(), hashlib.sha256((tmp_path / f"{name}.nc").read_bytes()).hexdigest()

    cold, other = start("cold", "cache"), start("other_cold", "other_cache")
    cold, other = result("cold", cold), result("other_cold", other)
    assert other == cold
    assert result("warm", start("warm", "cache")) == cold


def test_posterior_file_has_no_creation_stamp(tmp_path):
    import xarray as xr
    from arviz_base import from_dict

    idata = from_dict({"posterior": {"beta": np.zeros((2, 5))}})
    assert "created_at" in idata["posterior"].attrs
    write_posterior(idata, tmp_path / "a.nc")
    write_posterior(from_dict({"posterior": {"beta": np.zeros((2, 5))}}), tmp_path / "b.nc")
    assert (tmp_path / "a.nc").read_bytes() == (tmp_path / "b.nc").read_bytes()
    assert "created_at" not in xr.open_datatree(tmp_path / "a.nc")["posterior"].attrs


def test_numba_generates_code_for_a_generic_cpu():
    """Importing ``models`` sets NUMBA_CPU_NAME=generic before numba loads: code generated for the host CPU
    gave other draws for the same seed than generic code did, so committed tables would depend on the CPU."""
    import numba

    import models  # noqa: F401

    assert numba.config.CPU_NAME == "generic"
