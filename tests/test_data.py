"""The validators every layer shares: one rule per function, one exception type, one line per message."""

import numpy as np
import pytest
from sklearn.linear_model import Lasso, LogisticRegression, Ridge

from models.data import DataError, check_number, check_sample_weight
from models.twin import fit_twin

C_RULE = {"inclusive": False, "inf_means": "no penalty"}
SHARE_RULE = {"high": 1.0}
OPEN_SHARE_RULE = {"high": 1.0, "inclusive": False}

ACCEPTED = [
    ({}, 0, 0.0),
    ({}, 2, 2.0),
    ({}, np.float32(0.5), 0.5),
    ({}, np.int64(3), 3.0),
    ({"inclusive": False}, 1e-300, 1e-300),
    ({"low": 1.0}, 1.0, 1.0),
    (C_RULE, np.inf, np.inf),
    (SHARE_RULE, 0.0, 0.0),
    (SHARE_RULE, 1.0, 1.0),
    (OPEN_SHARE_RULE, 0.5, 0.5),
]


@pytest.mark.parametrize(("rule", "value", "expected"), ACCEPTED)
def test_check_number_returns_the_accepted_value_as_a_float(rule, value, expected):
    checked = check_number("alpha", value, **rule)
    assert type(checked) is float and checked == expected


REFUSED = [
    ({}, -1, "alpha must be finite and >= 0, got -1"),
    ({}, -1e-300, "alpha must be finite and >= 0, got -1e-300"),
    ({}, np.nan, "alpha must be finite and >= 0, got nan"),
    ({}, np.inf, "alpha must be finite and >= 0, got inf"),
    ({}, -np.inf, "alpha must be finite and >= 0, got -inf"),
    ({"inclusive": False}, 0.0, "alpha must be finite and > 0, got 0"),
    ({"low": 1.0}, 0.5, "alpha must be finite and >= 1, got 0.5"),
    (C_RULE, 0.0, "alpha must be > 0 (inf: no penalty), got 0"),
    (C_RULE, -np.inf, "alpha must be > 0 (inf: no penalty), got -inf"),
    (C_RULE, np.nan, "alpha must be > 0 (inf: no penalty), got nan"),
    (SHARE_RULE, 1.5, "alpha must be in [0, 1], got 1.5"),
    (SHARE_RULE, -0.5, "alpha must be in [0, 1], got -0.5"),
    (SHARE_RULE, np.inf, "alpha must be in [0, 1], got inf"),
    (OPEN_SHARE_RULE, 1.0, "alpha must be in (0, 1), got 1"),
    (OPEN_SHARE_RULE, 0.0, "alpha must be in (0, 1), got 0"),
    ({"reason": "why"}, -2, "alpha must be finite and >= 0, got -2 (why)"),
    ({}, "x", "alpha must be a number, got 'x'"),
    ({}, "1.0", "alpha must be a number, got '1.0'"),
    ({}, True, "alpha must be a number, got True"),
    ({}, np.True_, "alpha must be a number, got np.True_"),
    ({}, None, "alpha must be a number, got None"),
    ({}, [1.0], "alpha must be a number, got [1.0]"),
    ({}, np.array([1.0, 2.0]), "alpha must be a number, got array([1., 2.])"),
    ({}, 1 + 0j, "alpha must be a number, got (1+0j)"),
]


@pytest.mark.parametrize(("rule", "value", "message"), REFUSED)
def test_check_number_refuses_each_kind_of_bad_value_in_one_exact_line(rule, value, message):
    with pytest.raises(DataError) as error:
        check_number("alpha", value, **rule)
    assert str(error.value) == message


def test_a_long_array_is_shown_on_one_short_line():
    with pytest.raises(DataError) as error:
        check_number("alpha", np.arange(1000.0).reshape(100, 10))
    message = str(error.value)
    assert "\n" not in message and message.startswith("alpha must be a number, got array([[")
    assert message.endswith("...") and len(message) < 120


def test_check_sample_weight_returns_float_weights_and_ones_for_none():
    np.testing.assert_array_equal(check_sample_weight(None, 3), np.ones(3))
    weights = check_sample_weight([1, 0, 2], 3)
    assert weights.dtype == float
    np.testing.assert_array_equal(weights, [1.0, 0.0, 2.0])
    np.testing.assert_array_equal(check_sample_weight([0, 0, 0], 3, block=True), np.zeros(3))


WHOLE = "sample weights must be finite, >= 0 and not all zero"

BAD_WEIGHTS = [
    ([1.0, -1.0, 2.0], {}, f"{WHOLE}, got -1 in row 1"),
    ([1.0, 1.0, np.nan], {}, f"{WHOLE}, got nan in row 2"),
    ([np.inf, 1.0, 1.0], {}, f"{WHOLE}, got inf in row 0"),
    ([0.0, 0.0, 0.0], {}, f"{WHOLE}, got all zero"),
    ([0.0, -1.0, 0.0], {"block": True}, "sample weights must be finite and >= 0, got -1 in row 1"),
    ([1.0, 1.0], {}, "sample weights need one value per row (3), got shape (2,)"),
    ([[1.0], [1.0], [1.0]], {}, "sample weights need one value per row (3), got shape (3, 1)"),
    (["a", "b", "c"], {}, "sample weights must be numbers"),
    ([1.0, -1.0, 1.0], {"source": "rows.csv"}, f"rows.csv: {WHOLE}, got -1 in row 1"),
]


@pytest.mark.parametrize(("weights", "options", "message"), BAD_WEIGHTS)
def test_check_sample_weight_refuses_each_kind_of_bad_weight_in_one_exact_line(
    weights, options, message
):
    with pytest.raises(DataError) as error:
        check_sample_weight(weights, 3, **options)
    assert str(error.value) == message


LIBRARY_PATH = [
    (Ridge(alpha=-1.0), "alpha must be finite and >= 0, got -1"),
    (Ridge(alpha=np.nan), "alpha must be finite and >= 0, got nan"),
    (
        Lasso(alpha=0.0),
        "alpha must be finite and > 0, got 0 (for Lasso, alpha = 0 is least squares: use Ridge(alpha=0))",
    ),
    (LogisticRegression(C=0.0), "C must be > 0 (inf: no penalty), got 0"),
]


@pytest.mark.parametrize(("estimator", "message"), LIBRARY_PATH)
def test_fit_twin_refuses_a_bad_penalty_with_the_shared_message(rng, estimator, message):
    X = rng.standard_normal((20, 3))
    y = (X[:, 0] > 0).astype(float)
    with pytest.raises(DataError) as error:
        fit_twin(estimator, X, y)
    assert str(error.value) == message


def test_fit_twin_refuses_bad_sample_weights_with_the_shared_message(rng):
    X = rng.standard_normal((20, 3))
    weights = np.ones(20)
    weights[4] = -0.5
    with pytest.raises(DataError) as error:
        fit_twin(Ridge(alpha=1.0), X, X[:, 0], sample_weight=weights)
    assert str(error.value) == f"{WHOLE}, got -0.5 in row 4"
