import numpy as np
import pytest

from models import glm_data
from models.data import DataError, Dataset


def test_standardization_uses_the_training_rows_statistics(rng):
    train, test = rng.normal(3.0, 2.0, (50, 3)), rng.normal(3.0, 2.0, (20, 3))
    train_z, test_z = glm_data.standardize(train, test)
    # Subtract, divide, average again: rounding only (measured 4e-16, 2e-16 and 0).
    np.testing.assert_allclose(train_z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train_z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(test_z, (test - train.mean(axis=0)) / train.std(axis=0), rtol=1e-12)


def test_separable_data_is_linearly_separable(rng):
    x, y = glm_data.separable(rng)
    assert x[y == 0].max() < x[y == 1].min()


def test_bundled_breast_cancer_is_a_stratified_75_25_split_and_counts_ignore_extra():
    """The extra data sets change nothing in the main ones: the same seed, the same rows and counts."""
    streams = [np.random.default_rng(1).spawn(2) for _ in range(2)]
    short = glm_data.bundled(*streams[0], extra=False)
    full = glm_data.bundled(*streams[1], extra=True)
    assert [d.name for d in short] == ["breast_cancer", "counts"]
    assert [d.name for d in full] == ["breast_cancer", "counts", "counts_weighted", "linnerud"]
    cancer = full[0]
    assert len(cancer.y) == 426 and len(cancer.y_test) == 143  # 569 rows, 25% held out
    assert abs(cancer.y.mean() - cancer.y_test.mean()) < 0.01  # stratified: 37% malignant in both
    for a, b in zip(short, full, strict=False):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
    assert full[2].sample_weight.shape == (60,) and np.array_equal(full[2].y, full[1].y)


def test_user_table_takes_any_two_labels_with_a_note(rng):
    X = rng.standard_normal((40, 2))
    labels = np.where(X[:, 0] + rng.logistic(size=40) > 0, 3.0, 1.0)
    data = glm_data.from_table(Dataset("t", X, labels, ("a", "b"), 1.0), "logistic", rng)
    assert set(np.unique(data.y)) == {0.0, 1.0} and set(np.unique(data.y_test)) == {0.0, 1.0}
    assert data.note == "class 1 is y = 3, class 0 is y = 1"
    counts = glm_data.from_table(
        Dataset("c", X, np.arange(40.0) % 5, ("a", "b"), 1.0), "poisson", rng
    )
    np.testing.assert_allclose(
        counts.X.std(axis=0), 1.0, rtol=1e-12
    )  # standardized, every row kept
    assert counts.note == "" and counts.X_test is None


@pytest.mark.parametrize(
    ("text", "family", "values"),
    [("0.1,1,10", "logistic", (0.1, 1.0, 10.0)), ("0,0.5", "poisson", (0.0, 0.5))],
)
def test_penalty_path_reads_a_path_of_its_family(text, family, values):
    assert glm_data.penalty_path(text, family) == values


@pytest.mark.parametrize(
    ("text", "family", "message"),
    [
        ("1,0", "logistic", "C must be finite and > 0"),
        ("1,inf", "logistic", "C must be finite and > 0"),
        ("0.1,-1", "poisson", "alpha must be finite and >= 0"),
        ("0", "poisson", "at least one value > 0"),
        ("a,b", "logistic", "comma-separated numbers"),
    ],
)
def test_penalty_path_refuses_what_no_path_can_fit(text, family, message):
    with pytest.raises(DataError, match=message):
        glm_data.penalty_path(text, family)
