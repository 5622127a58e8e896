"""Plotting pieces shared by several experiments (each figure itself stays in its experiment)."""

from typing import NamedTuple

import numpy as np


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
