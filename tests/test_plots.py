"""The shared plotting pieces of ``experiments/_plots.py``: what each draws, checked on the axes."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from experiments import _plots
from models import approximations as approx


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_method_styles_are_fixed_by_position_and_distinct():
    styles = _plots.method_styles(["a", "b", "c"])
    again = _plots.method_styles(["a", "b", "c", "d"])
    assert all(styles[name] == again[name] for name in styles)  # more names change no style
    assert len({(s["color"], s["marker"]) for s in again.values()}) == 4
    assert len(_plots.method_styles([str(i) for i in range(30)])) == 30  # the cycles never run out


def test_panel_grid_hides_the_panels_past_n_and_labels_the_first_column():
    fig, axs = _plots.panel_grid(5, ncols=3, size=(2.0, 1.5), ylabel="y")
    assert axs.shape == (2, 3) and tuple(fig.get_size_inches()) == (6.0, 3.0)
    assert [ax.axison for ax in axs.ravel()] == [True] * 5 + [False]
    assert [ax.get_ylabel() for ax in axs.ravel()] == ["y", "", "", "y", "", ""]
    _, few = _plots.panel_grid(2, ncols=3, size=(2.0, 1.5))
    assert few.shape == (1, 2)


def test_legend_outside_shows_each_label_once():
    fig, axs = plt.subplots(1, 2)
    for ax in axs:
        ax.plot([0, 1], label="shared")
    axs[1].plot([1, 0], label="second")
    _plots.legend_outside(fig, axs)
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["shared", "second"]


def test_method_points_leave_out_untimed_methods_and_lift_a_zero_score():
    _, ax = plt.subplots()
    styles = _plots.method_styles(["a", "b", "c"])
    _plots.method_points(ax, [1.0, 0.0, 2.0], [0.5, 0.1, 0.0], ["a", "b", "c"], styles, floor=0.2)
    points = [c.get_offsets()[0].tolist() for c in ax.collections]
    assert points == [[1.0, 0.5], [2.0, 1e-17]]  # b (no seconds) left out; c's 0 drawn at 1e-17
    assert ax.get_lines()[0].get_ydata()[0] == 0.2 and ax.get_xscale() == ax.get_yscale() == "log"


def test_ecdf_difference_panel_draws_each_coefficient_over_its_band(rng):
    _, ax = plt.subplots()
    ranks = rng.integers(0, 100, size=(50, 3))
    _plots.ecdf_difference_panel(ax, ranks, 99, color="C1")
    grid, difference = approx.ecdf_difference(ranks, 99)
    assert len(ax.get_lines()) == 3
    np.testing.assert_array_equal(ax.get_lines()[2].get_ydata(), difference[:, 2])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(approx.ecdf_band(50))  # 50 data sets


def test_marginal_panel_draws_a_point_estimate_as_a_vertical_line():
    _, ax = plt.subplots()
    reference = approx.Gaussian(np.zeros(2), np.eye(2))
    point = approx.Gaussian(np.array([0.0, 0.3]), np.zeros((2, 2)))
    grid = np.linspace(-3.0, 3.0, 7)
    estimates = {"map": point, "same": reference}
    _plots.marginal_panel(
        ax, 1, grid, reference, estimates, label="exact", colors={"map": "r", "same": "b"}
    )
    exact, line, curve = ax.get_lines()
    assert [exact.get_label(), line.get_label(), curve.get_label()] == ["exact", "map", "same"]
    assert list(line.get_xdata()) == [0.3, 0.3]  # the point's coefficient 1
    np.testing.assert_array_equal(curve.get_ydata(), exact.get_ydata())
