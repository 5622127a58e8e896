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
