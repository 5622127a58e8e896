"""The report: numbers printed with the precision their checks need, failed checks first, every version."""

from experiments import report


def test_a_value_never_prints_equal_to_a_bound_it_does_not_equal():
    assert report.format_against(1.0096, "<= 1.01") == "1.0096"
    assert report.format_against(1.00999999, "<= 1.01") == "1.00999999"
    assert report.format_against(1.0076, "<= 1.01") == "1.008"
    assert report.format_against(4899.27, ">= 400") == "4899"
    assert report.format_against(0, "<= 0") == "0"
    assert report.format_against(True, ">= 1") == "yes"


def test_versions_are_printed_once_when_every_experiment_agrees_else_per_experiment():
    same = {"a": {"pymc": "6.3.0"}, "b": {"pymc": "6.3.0"}}
    assert report.versions_section(same)[2] == "Every experiment ran with: pymc 6.3.0."
    differ = {"a": {"pymc": "6.3.0"}, "b": {"pymc": "6.3.1"}}
    assert report.versions_section(differ)[2:4] == ["- `a`: pymc 6.3.0", "- `b`: pymc 6.3.1"]


def test_metrics_that_share_quantities_across_prefixes_become_one_pivot_table():
    metrics = {
        "diabetes_alpha": 0.03,
        "diabetes_rhat_max": 1.00412,
        "diabetes_ess": 5000.0,
        "wide_alpha": 1.3,
        "wide_rhat_max": 1.0031,
        "wide_ess": 4000.0,
        "n_fits": 12,
    }
    grids, rest = report.metric_grids(metrics)
    assert rest == {"n_fits": 12}
    (grid,) = grids
    assert list(grid.columns) == ["diabetes", "wide"]
    assert list(grid.index) == [
        "alpha",
        "rhat_max",
        "ess",
    ]  # in the order the experiment gives them
    assert grid.loc["rhat_max", "diabetes"] == "1.004"  # R-hat to 3 decimals


def test_two_quantities_or_one_prefix_make_no_grid():
    assert report.metric_grids({"a_x": 1, "a_y": 2, "b_x": 3, "b_y": 4})[0] == []
    assert report.metric_grids({"a_x": 1, "a_y": 2, "a_z": 3})[0] == []


def test_verdict_names_every_failed_check():
    passed = {"a": {"passed": True}, "b": {"passed": True}}
    assert report.verdict(passed) == "**all 2 checks passed**"
    failed = passed | {"c": {"passed": False}}
    assert report.verdict(failed) == "**1 of 3 checks FAILED**: c"


def test_dotted_keys_form_a_grid_too():
    metrics = {
        f"{model}.{method}.w2": 0.1 for model in ("diabetes", "collinear") for method in "abc"
    }
    (grid,), rest = report.metric_grids(metrics)
    assert rest == {} and list(grid.columns) == ["diabetes", "collinear"]
    assert list(grid.index) == ["a.w2", "b.w2", "c.w2"]
