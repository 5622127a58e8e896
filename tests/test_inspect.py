import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from experiments import _cli, inspect
from models.fit import compile_nuts, sample_nuts
from models.linear import linear_regression
from models.results import read_posterior, write_posterior


def assert_same_values(written, read):
    """Every group, variable and coordinate of ``written`` is in ``read`` with the same values.

    Object-typed variables (nutpie's ``divergence_message``) are stored as strings, so they compare
    as strings.
    """
    assert set(written.children) == set(read.children)
    for group in written.children:
        original, loaded = written[group].to_dataset(), read[group].to_dataset()
        assert set(original.data_vars) == set(loaded.data_vars), group
        for name, variable in original.variables.items():
            expected = variable.values
            if expected.dtype == object:
                expected = expected.astype(str)
            np.testing.assert_array_equal(loaded[name].values, expected, err_msg=f"{group}/{name}")
            assert loaded[name].dims == variable.dims


@pytest.fixture(scope="module")
def nuts_idata():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((40, 3))
    y = 1.0 + X @ [1.0, -0.5, 0.0] + rng.standard_normal(40)
    model = linear_regression(
        X, y, ridge_alpha=1.0, noise_sigma=None, feature_names=["a", "b", "c"]
    )
    return sample_nuts(compile_nuts(model), seed=5, draws=500, tune=500)


@pytest.fixture(scope="module")
def nuts_file(nuts_idata, tmp_path_factory):
    return write_posterior(nuts_idata, tmp_path_factory.mktemp("posterior") / "posterior.nc")


@pytest.fixture
def handmade_idata(rng):
    """Independent draws, and sampler stats with an object column as nutpie writes them."""
    coords = {"chain": [0, 1], "draw": np.arange(400), "feature": ["u", "v"]}
    posterior = xr.Dataset(
        {
            "beta": (("chain", "draw", "feature"), rng.standard_normal((2, 400, 2))),
            "sigma": (("chain", "draw"), np.exp(rng.standard_normal((2, 400)))),
        },
        coords=coords,
    )
    message = np.full((2, 400), None, dtype=object)
    message[0, 3] = "divergence at step 3"
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((2, 400), dtype=bool)),
            "divergence_message": (("chain", "draw"), message),
            "step_size": (("chain", "draw"), np.full((2, 400), 0.5)),
        },
        coords={"chain": [0, 1], "draw": np.arange(400)},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


def test_posterior_file_round_trips_with_an_object_column(tmp_path, handmade_idata):
    path = write_posterior(handmade_idata, tmp_path / "posterior.nc")
    read = read_posterior(path)
    assert_same_values(handmade_idata, read)
    assert read["sample_stats"]["divergence_message"].values[0, 3] == "divergence at step 3"


@pytest.mark.slow
def test_nuts_posterior_file_round_trips_with_sampler_stats(nuts_idata, nuts_file):
    read = read_posterior(nuts_file)
    assert {"diverging", "divergence_message", "step_size", "n_steps"} <= set(
        read["sample_stats"].data_vars
    )
    assert_same_values(nuts_idata, read)


def test_summary_has_every_column_and_verdict_passes_on_good_draws(handmade_idata):
    table = inspect.summary(handmade_idata)
    assert list(table.columns) == [
        "mean",
        "sd",
        "hdi90_lb",
        "hdi90_ub",
        "ess_bulk",
        "ess_tail",
        "r_hat",
        "mcse_mean",
        "mcse_sd",
    ]
    assert list(table.index) == ["beta[u]", "beta[v]", "sigma"]
    draws = handmade_idata["posterior"]["beta"].values
    # ArviZ's mean of the same draws: rounding only (measured 6e-15).
    np.testing.assert_allclose(table["mean"].iloc[:2], draws.mean(axis=(0, 1)), rtol=1e-12)
    assert inspect.verdict(handmade_idata).startswith("convergence: ok")


def test_verdict_fails_when_chains_disagree_or_diverge(handmade_idata):
    shifted = handmade_idata.copy()
    beta = shifted["posterior"]["beta"].copy()
    beta[1] += 3.0
    shifted["posterior"] = shifted["posterior"].to_dataset().assign(beta=beta)
    assert "R-hat" in inspect.verdict(shifted) and "FAILED" in inspect.verdict(shifted)
    diverged = handmade_idata.copy()
    flags = diverged["sample_stats"]["diverging"].copy()
    flags[0, :5] = True
    diverged["sample_stats"] = diverged["sample_stats"].to_dataset().assign(diverging=flags)
    assert "5 divergent transitions" in inspect.verdict(diverged)


def test_verdict_without_sampler_stats_says_unknown(handmade_idata):
    only_posterior = xr.DataTree.from_dict({"posterior": handmade_idata["posterior"].to_dataset()})
    assert inspect.verdict(only_posterior).startswith("convergence: unknown")


@pytest.mark.slow
def test_inspect_prints_summary_and_writes_plots(nuts_file, tmp_path, capsys):
    plots = tmp_path / "plots"
    assert _cli.run(inspect.main, [str(nuts_file), "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    for column in [
        "mean",
        "sd",
        "hdi90_lb",
        "ess_bulk",
        "ess_tail",
        "r_hat",
        "mcse_mean",
        "beta[a]",
    ]:
        assert column in out
    assert "convergence: ok" in out
    for name in ["trace.png", "rank.png", "forest.png", "pair.png"]:
        assert (plots / name).stat().st_size > 0


BAD_FILES = {
    "missing.nc": "no such file",
    "empty.nc": "not a readable netCDF posterior file",
    "text.nc": "not a readable netCDF posterior file",
    "table.csv": "not a readable netCDF posterior file",
    "dataset.nc": "no 'posterior' group",
    "no_posterior.nc": "no 'posterior' group (groups: observed_data)",
    "no_chains.nc": "no variables with 'chain' and 'draw'",
}


def write_bad_files(folder):
    (folder / "empty.nc").write_bytes(b"")
    (folder / "text.nc").write_text("this is not a netCDF file\n")
    (folder / "table.csv").write_text("a,b\n1,2\n")
    xr.Dataset({"x": ("obs_id", np.arange(3.0))}).to_netcdf(
        folder / "dataset.nc", engine="h5netcdf"
    )
    xr.DataTree.from_dict(
        {"observed_data": xr.Dataset({"y": ("obs_id", np.arange(3.0))})}
    ).to_netcdf(folder / "no_posterior.nc", engine="h5netcdf")
    xr.DataTree.from_dict({"posterior": xr.Dataset({"y": ("obs_id", np.arange(3.0))})}).to_netcdf(
        folder / "no_chains.nc", engine="h5netcdf"
    )


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_get_one_line_error_and_exit_2(tmp_path, capsys, name):
    write_bad_files(tmp_path)
    expected = BAD_FILES[name]
    plots = tmp_path / "plots"
    assert _cli.run(inspect.main, [str(tmp_path / name), "--plots", str(plots)]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""
    assert not plots.exists()


def test_unknown_variable_gets_one_line_error(tmp_path, capsys, handmade_idata):
    path = write_posterior(handmade_idata, tmp_path / "posterior.nc")
    assert _cli.run(inspect.main, [str(path), "--var-names", "beta,tau"]) == 2
    err = capsys.readouterr().err
    assert "no variable(s) tau" in err and err.count("\n") == 1


@pytest.mark.slow
def test_command_line_exit_code_is_2_on_a_corrupt_file(tmp_path):
    (tmp_path / "broken.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    result = subprocess.run(
        [sys.executable, "-m", "experiments.inspect", str(tmp_path / "broken.nc")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
