"""Open a posterior file the suite writes: summary table, one-line convergence verdict, plots.

Reads a netCDF ``DataTree`` (``results/<experiment>/*.nc``), prints ArviZ's summary of the
``posterior`` group (mean, sd, HDI, MCSE, bulk and tail ESS, R-hat) and whether the fit passes the
suite's convergence checks (R-hat <= 1.01, bulk ESS >= 400, no divergent transitions). With
``--plots DIR`` it writes ArviZ trace, rank, forest and pair plots there. A missing, corrupt or
non-posterior file is a one-line error and exit code 2.

Run
    python -m experiments.inspect results/posterior_spread/posterior.nc
    python -m experiments.inspect results/posterior_spread/posterior.nc --plots DIR --var-names beta
"""

from pathlib import Path

import arviz_plots as azp
import arviz_stats as azs
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from experiments import _cli
from models import diagnostics
from models.data import DataError
from models.results import write_figure

NAME = "inspect"
SAMPLE_DIMS = ("chain", "draw")
PAIR_MAX = 6
"""At most this many scalars in the pair plot (the first ones in the file's order)."""


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
    if not set(SAMPLE_DIMS) <= set(posterior.dims) or not posterior.data_vars:
        raise DataError(
            f"{path}: the 'posterior' group has no variables with 'chain' and 'draw' dimensions"
        )
    return idata


def summary(idata, var_names=None, *, ci_prob: float = 0.9) -> pd.DataFrame:
    """ArviZ's summary, unrounded: mean, sd, HDI, bulk and tail ESS, R-hat, MCSE of mean and sd."""
    return azs.summary(
        idata, var_names=var_names, kind="all", ci_kind="hdi", ci_prob=ci_prob, round_to="none"
    )


def verdict(idata, var_names=None) -> str:
    """One line: whether the fit passes R-hat <= 1.01, bulk ESS >= 400 and no divergences."""
    if "sample_stats" not in idata.children or "diverging" not in idata["sample_stats"].data_vars:
        return "convergence: unknown (no sampler stats in the file: divergences cannot be counted)"
    found = diagnostics.convergence(idata, var_names=var_names)
    numbers = (
        f"max R-hat {found.rhat_max:.3f}, min bulk ESS {found.ess_bulk_min:.0f}, "
        f"min tail ESS {found.ess_tail_min:.0f}, {found.divergences} divergences"
    )
    failures = found.failures()
    if failures:
        return f"convergence: FAILED ({'; '.join(failures)}); {numbers}"
    return f"convergence: ok (R-hat <= 1.01, bulk ESS >= 400, no divergences); {numbers}"


def pair_selection(idata, var_names=None) -> tuple[list[str], dict | None]:
    """Variables and coordinates of the first :data:`PAIR_MAX` scalars of the posterior."""
    posterior = idata["posterior"].to_dataset()
    names = list(posterior.data_vars) if var_names is None else list(var_names)
    chosen, coords, count = [], {}, 0
    for name in names:
        if count >= PAIR_MAX:
            break
        variable = posterior[name]
        extra = [d for d in variable.dims if d not in SAMPLE_DIMS]
        size = int(np.prod([variable.sizes[d] for d in extra])) if extra else 1
        if len(extra) > 1:
            continue  # a matrix-valued variable is left out of the pair plot
        take = min(size, PAIR_MAX - count)
        chosen.append(name)
        if extra and take < size:
            coords[extra[0]] = variable[extra[0]].values[:take].tolist()
        count += take
    return chosen, coords or None


def n_scalars(idata, var_names=None) -> int:
    """Number of scalar quantities (one panel each in a trace or rank plot)."""
    posterior = idata["posterior"].to_dataset()
    names = list(posterior.data_vars) if var_names is None else list(var_names)
    return sum(
        int(posterior[name].size // (posterior.sizes["chain"] * posterior.sizes["draw"]))
        for name in names
    )


def plots(idata, folder: Path, var_names=None, *, ci_prob: float = 0.9) -> list[Path]:
    """Trace, rank, forest and pair plots (ArviZ) written to ``folder``."""
    pair_names, pair_coords = pair_selection(idata, var_names)
    # At ArviZ's default size, panel titles overlap the row above beyond two rows.
    panels = n_scalars(idata, var_names)
    cols = min(4, panels)
    wrap = {
        "col_wrap": cols,
        "figure_kwargs": {
            "figsize": (4.0 * cols, 2.8 * -(-panels // cols)),
            "layout": "constrained",
        },
    }
    forest_height = 1.5 + 0.3 * panels * idata["posterior"].sizes["chain"]
    makers = {
        "trace.png": lambda: azp.plot_trace(idata, var_names=var_names, **wrap),
        "rank.png": lambda: azp.plot_rank(idata, var_names=var_names, **wrap),
        "forest.png": lambda: azp.plot_forest(
            idata,
            var_names=var_names,
            combined=False,
            ci_kind="hdi",
            ci_probs=(0.5, ci_prob),
            figure_kwargs={"figsize": (10.0, forest_height)},
        ),
        "pair.png": lambda: azp.plot_pair(
            idata,
            var_names=pair_names,
            coords=pair_coords,
            marginal=True,
            figure_kwargs={"figsize": (2.6 * PAIR_MAX, 2.6 * PAIR_MAX)},
        ),
    }
    titles = {
        "trace.png": "Trace of each chain",
        "rank.png": "Rank ECDF difference per chain (p: test that the chains agree)",
        "forest.png": f"Per-chain 50% and {ci_prob:.0%} HDI, mean marked",
        "pair.png": f"Pairwise joint posterior (first {PAIR_MAX} scalars)",
    }
    written = []
    for name, make in makers.items():
        fig = make().get_viz("figure")
        fig.suptitle(titles[name])
        written.append(write_figure(fig, folder / name))
        plt.close(fig)
    return written


def main(argv=None) -> int:
    parser = _cli.Parser(prog=f"python -m experiments.{NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a posterior file (.nc) written by the suite")
    parser.add_argument(
        "--plots", type=Path, default=None, metavar="DIR", help="write trace/rank/forest/pair PNGs"
    )
    parser.add_argument(
        "--var-names", default=None, help="comma-separated variables (default: all)"
    )
    parser.add_argument("--ci-prob", type=float, default=0.9, help="HDI probability (default 0.9)")
    args = parser.parse_args(argv)
    if not 0.0 < args.ci_prob < 1.0:
        raise DataError(f"--ci-prob must be in (0, 1), got {args.ci_prob}")
    if args.plots is not None and args.plots.exists() and not args.plots.is_dir():
        raise DataError(f"--plots {args.plots}: exists and is not a folder")
    idata = read_posterior(args.path)
    var_names = None if args.var_names is None else args.var_names.split(",")
    if var_names is not None:
        missing = [v for v in var_names if v not in idata["posterior"].data_vars]
        if missing:
            known = ", ".join(idata["posterior"].data_vars)
            raise DataError(
                f"--var-names: no variable(s) {', '.join(missing)} in the posterior ({known})"
            )

    table = summary(idata, var_names, ci_prob=args.ci_prob)
    with pd.option_context(
        "display.width", 120, "display.max_rows", 500, "display.max_columns", 20
    ):
        sizes = idata["posterior"].sizes
        print(f"{args.path}: {sizes['chain']} chains x {sizes['draw']} draws")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(verdict(idata, var_names))
    if args.plots is not None:
        for path in plots(idata, args.plots, var_names, ci_prob=args.ci_prob):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli.run(main))
