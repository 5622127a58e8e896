"""Plotting pieces shared by several experiments (each figure itself stays in its experiment)."""

import itertools
from typing import NamedTuple

import arviz_plots as azp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from arviz_plots.visuals import scatter_x
from matplotlib.lines import Line2D

from models import approximations as approx


class Estimate(NamedTuple):
    """One estimate of every feature: ``center`` drawn as a marker, with its interval when ``low`` is given."""

    label: str
    center: np.ndarray
    color: str
    marker: str = "o"
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def estimates_by_feature(
    ax, features, estimates, *, truth=None, truth_color="tab:green", spacing: float = 0.12
) -> None:
    """Several estimates of each feature side by side, one column per feature, and the truth if known.

    Parameters
    ----------
    ax : matplotlib Axes
    features : sequence of str
        The tick labels, one per column.
    estimates : sequence of Estimate
        Drawn left to right within each column, ``spacing`` apart; an interval as an error bar.
    truth : array_like or None
        The simulated coefficients, drawn as stars (``truth_color``) to the right of the estimates.
    """
    x = np.arange(len(features))
    offsets = (np.arange(len(estimates)) - (len(estimates) - 1) / 2) * spacing
    for offset, e in zip(offsets, estimates, strict=True):
        yerr = None if e.low is None else np.vstack([e.center - e.low, e.high - e.center])
        ax.errorbar(
            x + offset,
            e.center,
            yerr=yerr,
            fmt=e.marker,
            color=e.color,
            markersize=5,
            capsize=2,
            label=e.label,
        )
    if truth is not None:
        ax.plot(
            x + offsets[-1] + spacing, truth, "*", color=truth_color, markersize=8, label="truth"
        )
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xticks(x, features)


def method_styles(names) -> dict[str, dict]:
    """A colour and a marker for each name, by its position in ``names``: pass the full list of methods, so
    that a method looks the same in every figure whichever others it shares a panel with."""
    colors = itertools.cycle(plt.cm.tab20.colors[::2] + plt.cm.tab20.colors[1::2])
    markers = itertools.cycle("osDdv^<>XPh")
    styles = zip(names, colors, markers, strict=False)  # the cycles never end: as many as names
    return {name: {"color": c, "marker": m} for name, c, m in styles}


def method_points(ax, seconds, scores, methods, styles: dict, *, floor=None) -> None:
    """One point per method on log-log axes, its score against its seconds, in its style of
    :func:`method_styles` and labelled with its name (for :func:`legend_outside`).

    A method without seconds (0: not timed) is left out; a score of 0 is drawn at 1e-17, inside the log
    axis. ``floor``: a dotted horizontal line labelled "Monte Carlo floor".
    """
    for x, y, method in zip(seconds, scores, methods, strict=True):
        if x > 0:
            ax.scatter(x, max(y, 1e-17), s=60, label=method, **styles[method])
    if floor is not None:
        ax.axhline(floor, color="0.5", linestyle=":", linewidth=1, label="Monte Carlo floor")
    ax.set(xscale="log", yscale="log")


def panel_grid(n: int, *, ncols: int, size: tuple[float, float], ylabel=None, **subplots):
    """A figure of ``n`` panels of ``size`` inches, ``ncols`` to a row (fewer if ``n`` is smaller).

    Returns the figure and its 2-D array of axes, the panels past the ``n``-th hidden and the first column
    labelled ``ylabel`` (if given); ``subplots`` goes to :func:`matplotlib.pyplot.subplots` (``sharey=True``,
    say).
    """
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    figsize = (size[0] * ncols, size[1] * nrows)
    fig, axs = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **subplots)
    for ax in axs.ravel()[n:]:
        ax.axis("off")
    for ax in axs[:, 0] if ylabel is not None else ():
        ax.set_ylabel(ylabel)
    return fig, axs


def legend_outside(fig, axes, **legend) -> None:
    """One legend right of the figure's panels: every label once, with its first panel's handle."""
    handles = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    place = {"loc": "center left", "bbox_to_anchor": (1.0, 0.5)}
    fig.legend(handles.values(), handles.keys(), **(place | legend))


def ecdf_difference_panel(ax, ranks, n_draws: int, *, color, level: float = 0.95) -> None:
    """SBC ranks as ``ECDF - uniform`` of their fractional ranks, one line per coefficient
    (:func:`models.approximations.ecdf_difference`), over the ``level`` band of one calibrated line
    (:func:`models.approximations.ecdf_band`)."""
    grid, difference = approx.ecdf_difference(ranks, n_draws)
    band = approx.ecdf_band(np.shape(ranks)[0], level)
    ax.fill_between(grid, -band, band, color="0.85", label=f"{level:.0%} band (one ECDF)")
    ax.plot(grid, difference, color=color, linewidth=0.8, alpha=0.8)
    ax.set_xlabel("fractional rank")


def marginal_panel(
    ax, j: int, grid, reference, estimates: dict, *, label: str, colors: dict
) -> None:
    """The marginal density of coefficient ``j`` on ``grid``: the reference's thick and black (labelled
    ``label``), each estimate's in its colour (:func:`models.approximations.marginal_density`: a
    :class:`models.approximations.Gaussian` or draws), a point estimate as a dotted vertical line."""
    ax.plot(
        grid,
        approx.marginal_density(reference, j, grid),
        color="black",
        linewidth=3,
        zorder=0,
        label=label,
    )
    for name, estimate in estimates.items():
        density = approx.marginal_density(estimate, j, grid)
        if density is None:  # a Gaussian without spread: a point
            ax.axvline(estimate.mean[j], color=colors[name], linestyle=":", label=name)
        else:
            ax.plot(grid, density, color=colors[name], linewidth=1.2, label=name)
    ax.set_ylabel("density")


def forest_with_point(
    idata,
    var_name: str,
    point,
    *,
    level: float,
    point_label: str,
    draws_label="NUTS",
    figsize=(9, 5.5),
):
    """ArviZ's forest plot of ``var_name`` (chains pooled: mean, 50% and ``level`` equal-tailed intervals)
    with a point estimate of each coordinate marked as an open diamond, and a legend below.

    Parameters
    ----------
    idata : xarray.DataTree
    var_name : str
        A posterior variable with one dimension.
    point : pandas.Series
        The point estimate, indexed by that dimension's coordinates (the index named as the dimension).
    level : float
    point_label, draws_label : str
        Who made the point estimate (an estimator) and the draws (a sampler), for the legend.
    figsize : (float, float)
        In inches.

    Returns
    -------
    matplotlib Figure
        Its last axes holds the intervals.
    """
    pc = azp.plot_forest(
        idata,
        var_names=[var_name],
        combined=True,
        ci_kind="eti",
        ci_probs=(0.5, level),
        point_estimate="mean",
        figure_kwargs={"figsize": figsize, "figsize_units": "inches"},
    )
    values = xr.DataArray(point.to_numpy(), coords={point.index.name: point.index})
    pc.map(
        scatter_x,
        point_label,
        data=xr.Dataset({var_name: values}),
        coords={"column": "forest"},
        ignore_aes={"alpha"},
        color="C3",
        marker="D",
        facecolors="none",
        size=60,
        zorder=5,
    )
    fig = pc.get_viz("figure")
    handles = [
        Line2D([], [], color="C0", linewidth=3, label=f"50% interval ({draws_label})"),
        Line2D([], [], color="C0", linewidth=1, label=f"{level:.0%} interval ({draws_label})"),
        Line2D([], [], color="C0", marker="o", linestyle="none", label="posterior mean"),
        Line2D([], [], color="C3", marker="D", mfc="none", ls="none", label=point_label),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, bbox_to_anchor=(0.5, -0.06))
    return fig


def pair_with_point(idata, var_name: str, pair, point, *, point_label: str, figsize=(7, 7)):
    """ArviZ's pair plot (contours and marginals) of two coordinates of ``var_name``, with a point
    estimate marked as a filled diamond.

    Parameters
    ----------
    idata : xarray.DataTree
    var_name : str
        A posterior variable with one dimension.
    pair : (str, str)
        The two coordinates, on the x and the y axis.
    point : pandas.Series
        The point estimate, indexed by the dimension's coordinates (the index named as the dimension).
    point_label : str
        Who made the point estimate, for the legend.

    Returns
    -------
    (matplotlib Figure, matplotlib Axes)
        The figure and its joint panel.
    """
    dim = point.index.name
    pc = azp.plot_pair(
        idata,
        var_names=[var_name],
        coords={dim: list(pair)},
        marginal=True,
        visuals={"contour": True},
        figure_kwargs={"figsize": figsize, "figsize_units": "inches"},
    )
    ax = pc.get_target(var_name, {dim: pair[0]}, var_name, {dim: pair[1]})
    ax.plot(
        point[pair[0]],
        point[pair[1]],
        "D",
        color="C3",
        markersize=9,
        markeredgecolor="black",
        label=point_label,
        zorder=5,
    )
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel(f"{var_name}[{pair[0]}]")
    ax.set_ylabel(f"{var_name}[{pair[1]}]")
    return pc.get_viz("figure"), ax


def predictive_intervals(draws, table, point: str, *, level: float, point_label: str):
    """ArviZ's posterior predictive intervals (50% and ``level``) of new observations sorted by a point
    prediction, with each observation (a cross where its interval missed it) and the point prediction.

    Parameters
    ----------
    draws : array_like, shape (chain, draw, n_new)
        Posterior predictive draws.
    table : pandas.DataFrame
        One row per new observation, in the order of ``draws``, as
        :func:`models.calibration.predictive_table` gives it: ``observed`` and ``covered`` (whether the
        ``level`` interval contained it), and the point prediction in column ``point``.
    point : str
    level : float
    point_label : str
        Who made the point prediction, for the legend.

    Returns
    -------
    (matplotlib Figure, matplotlib Axes)
    """
    order = np.argsort(table[point].to_numpy(), kind="stable")
    table = table.iloc[order]
    obs_id = np.arange(len(table))
    tree = xr.DataTree.from_dict(
        {
            "posterior_predictive": xr.Dataset(
                {"y": (("chain", "draw", "obs_id"), np.asarray(draws)[..., order])},
                coords={"obs_id": obs_id},
            ),
            "observed_data": xr.Dataset(
                {"y": ("obs_id", table.observed.to_numpy())}, coords={"obs_id": obs_id}
            ),
        }
    )
    pc = azp.plot_ppc_interval(
        tree,
        ci_kind="eti",
        ci_probs=(0.5, level),
        visuals={
            "trunk": {"color": "C0", "alpha": 0.35},
            "twig": {"color": "C0"},
            "prediction_markers": False,
            "observed_markers": {"color": "black"},
        },
        figure_kwargs={"figsize": (11, 5)},
    )
    fig = pc.get_viz("figure")
    ax = fig.axes[0]
    ax.plot(obs_id, table[point], "_", color="C3", markersize=9, markeredgewidth=2)
    outside = ~table.covered.to_numpy()
    ax.plot(obs_id[outside], table.observed[outside], "x", color="C1", markersize=8, mew=2)
    handles = [
        Line2D([], [], color="C0", alpha=0.35, lw=4, label=f"{level:.0%} predictive interval"),
        Line2D([], [], color="C0", linewidth=4, label="50% predictive interval"),
        Line2D([], [], color="C3", marker="_", markersize=9, mew=2, ls="none", label=point_label),
        Line2D([], [], color="black", marker="o", markersize=4, ls="none", label="observed"),
        Line2D([], [], color="C1", marker="x", mew=2, ls="none", label="observed, outside"),
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=8)
    return fig, ax


def pair_marginals(axes, reference, estimates: dict, *, colors: dict, title: str) -> None:
    """The marginal densities of the two most correlated slopes of ``reference``, one per axis.

    Each panel (:func:`marginal_panel`) spans 4.5 reference SDs either side of the reference mean; the
    reference curve is the exact posterior's, or the NUTS reference draws' without one.

    Parameters
    ----------
    axes : two matplotlib Axes
    reference : models.methods.Reference
    estimates : dict of str to Gaussian or draws
        Each method's answer (:func:`models.approximations.marginal_density` reads both).
    colors : dict of str to colour, by method
    title : str
        Starts each panel's title (the model's name, say).
    """
    gaussian = reference.gaussian
    exact = reference.exact_posterior is not None
    shown, label = (gaussian, "exact") if exact else (reference.draws, "NUTS reference")
    pair = approx.most_correlated_pair(gaussian.cov)
    cov = gaussian.cov
    corr = cov[pair] / np.sqrt(cov[pair[0], pair[0]] * cov[pair[1], pair[1]])
    for ax, j in zip(axes, pair, strict=True):
        sd = np.sqrt(cov[j, j])
        grid = np.linspace(gaussian.mean[j] - 4.5 * sd, gaussian.mean[j] + 4.5 * sd, 300)
        marginal_panel(ax, j, grid, shown, estimates, label=label, colors=colors)
        ax.set_xlabel(f"{reference.names[j]} (coefficient units)")
        ax.set_title(f"{title}: {reference.names[j]} (correlation {corr:.2f} with its pair)")
