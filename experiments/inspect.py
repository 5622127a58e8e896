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

import itertools
from pathlib import Path

import arviz_plots as azp
import arviz_stats as azs
import matplotlib.pyplot as plt
import pandas as pd
import xarray as xr

from experiments import _cli
from models import diagnostics
from models.data import DataError, check_number
from models.results import read_posterior, write_figure

NAME = "inspect"
SAMPLE_DIMS = ("chain", "draw")
PAIR_MAX = 6
"""At most this many scalars in the pair plot (the first ones in the file's order)."""


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


PANELS_MAX = 40
"""At most this many scalars in a trace or rank plot (matplotlib's ``plot.max_subplots``, ArviZ's limit)."""


def flattened(idata, var_names=None) -> xr.Dataset:
    """The posterior's variables with at most one dimension besides chain and draw: a matrix-valued
    variable's dimensions become one, ``<name>_index``, labelled ``"i,j"`` from their coordinates."""
    posterior = idata["posterior"].to_dataset()
    names = list(posterior.data_vars) if var_names is None else list(var_names)
    variables = {}
    for name in names:
        variable = posterior[name]
        extra = [d for d in variable.dims if d not in SAMPLE_DIMS]
        if len(extra) > 1:
            values = variable.transpose(*SAMPLE_DIMS, *extra).values
            labels = [
                ",".join(map(str, key))
                for key in itertools.product(*(variable[d].values for d in extra))
            ]
            variable = xr.DataArray(
                values.reshape(*values.shape[:2], -1),
                dims=(*SAMPLE_DIMS, f"{name}_index"),
                coords={f"{name}_index": labels},
            )
        variables[name] = variable
    return xr.Dataset(variables)


def first_scalars(posterior: xr.Dataset, limit: int) -> xr.Dataset:
    """The first ``limit`` scalars of a :func:`flattened` posterior, in the file's order."""
    kept, count = {}, 0
    for name, variable in posterior.data_vars.items():
        if count >= limit:
            break
        extra = [d for d in variable.dims if d not in SAMPLE_DIMS]
        size = variable.sizes[extra[0]] if extra else 1
        take = min(size, limit - count)
        kept[name] = variable.isel({extra[0]: slice(0, take)}) if extra else variable
        count += take
    return xr.Dataset(kept)


def n_scalars(posterior: xr.Dataset) -> int:
    """Number of scalar quantities (one panel each in a trace or rank plot)."""
    per_draw = posterior.sizes["chain"] * posterior.sizes["draw"]
    return sum(int(variable.size // per_draw) for variable in posterior.data_vars.values())


def plots(idata, folder: Path, var_names=None, *, ci_prob: float = 0.9) -> list[Path]:
    """Trace, rank, forest and pair plots (ArviZ) written to ``folder``.

    Trace and rank plots show the first :data:`PANELS_MAX` scalars and the pair plot the first
    :data:`PAIR_MAX` (select others with ``var_names``); the forest plot shows every scalar.
    """
    posterior = flattened(idata, var_names)
    total = n_scalars(posterior)

    def tree(dataset):
        groups = {"posterior": dataset}
        if "sample_stats" in idata.children:
            groups["sample_stats"] = idata["sample_stats"].to_dataset()
        return xr.DataTree.from_dict(groups)

    everything, panels, pairs = (
        tree(posterior),
        tree(first_scalars(posterior, PANELS_MAX)),
        tree(first_scalars(posterior, PAIR_MAX)),
    )
    shown = min(total, PANELS_MAX)
    # At ArviZ's default size, panel titles overlap the row above beyond two rows.
    cols = min(4, shown)
    wrap = {
        "col_wrap": cols,
        "figure_kwargs": {
            "figsize": (4.0 * cols, 2.8 * -(-shown // cols)),
            "layout": "constrained",
        },
    }
    forest_height = 1.5 + 0.3 * total * idata["posterior"].sizes["chain"]
    makers = {
        "trace.png": lambda: azp.plot_trace(panels, **wrap),
        "rank.png": lambda: azp.plot_rank(panels, **wrap),
        "forest.png": lambda: azp.plot_forest(
            everything,
            combined=False,
            ci_kind="hdi",
            ci_probs=(0.5, ci_prob),
            figure_kwargs={"figsize": (10.0, min(forest_height, 200.0))},
        ),
        "pair.png": lambda: azp.plot_pair(
            pairs,
            marginal=True,
            figure_kwargs={"figsize": (2.6 * PAIR_MAX, 2.6 * PAIR_MAX)},
        ),
    }
    first = f" (first {shown} of {total} scalars)" if total > shown else ""
    titles = {
        "trace.png": f"Trace of each chain{first}",
        "rank.png": f"Rank ECDF difference per chain (p: test that the chains agree){first}",
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
    check_number("--ci-prob", args.ci_prob, high=1.0, inclusive=False)
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
