"""GLM data sets: bundled and simulated tables for the logistic and Poisson twins, and a user's table.

* ``breast_cancer`` (logistic, y = 1 for malignant): a 75/25 stratified split, the features standardized with
  the training split's mean and SD (ddof = 0), the test split with the same numbers;
* ``counts`` (Poisson): n = 60, 4 N(0, 1) features; ``counts_weighted``: the same rows with Gamma(2, 1/2)
  sample weights;
* ``linnerud`` (Poisson): chin-ups of 20 men against their standardized weight, waist and pulse;
* ``separable`` (logistic, :func:`separable`): 20 points on a line, the two classes apart;
* a user's table (:func:`from_table`): validated for its family, split (logistic) or standardized (Poisson).
"""

from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_breast_cancer, load_linnerud
from sklearn.model_selection import train_test_split

from models.data import DataError, Dataset, check_number
from models.glm import validate_glm

__all__ = [
    "STANDARDIZATION",
    "GLMData",
    "standardize",
    "held_out_split",
    "bundled",
    "penalty_path",
    "from_table",
    "separable",
]

STANDARDIZATION = (
    "features centered and scaled by the training rows' mean and SD (ddof=0); "
    "breast_cancer's test split with the training numbers"
)
"""How the bundled data sets' features are scaled, in words (for ``metadata.json``)."""


class GLMData(NamedTuple):
    """One data set for one family: training rows, and (logistic) a held-out split with its row ids.

    ``note``: what was done to the user's table that the user should hear (empty when nothing was).
    """

    name: str
    family: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    sample_weight: np.ndarray | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_ids: np.ndarray | None = None
    note: str = ""


def standardize(train, test=None):
    """Center and scale by the training rows' mean and SD (ddof = 0); the test rows with the same numbers.

    Returns
    -------
    (ndarray, ndarray or None)
        The standardized training rows, and the test rows (None when ``test`` is None).
    """
    mean, sd = train.mean(axis=0), train.std(axis=0)
    if np.any(sd == 0):
        raise DataError(f"feature column(s) {np.flatnonzero(sd == 0).tolist()} are constant")
    return (train - mean) / sd, None if test is None else (test - mean) / sd


def held_out_split(name, X, y, feature_names, rng: np.random.Generator, note: str = "") -> GLMData:
    """A 75/25 split stratified on the 0/1 labels ``y``, standardized with the training split's statistics.

    ``rng`` draws the split's ``random_state`` (one integer).
    """
    ids = np.arange(len(y))
    if min(np.sum(y == 0), np.sum(y == 1)) < 4:
        raise DataError(f"{name}: a 75/25 split needs at least 4 rows of each class")
    train, test = train_test_split(
        ids, test_size=0.25, stratify=y, random_state=int(rng.integers(2**31))
    )
    X_train, X_test = standardize(X[train], X[test])
    return GLMData(
        name,
        "logistic",
        X_train,
        y[train],
        tuple(feature_names),
        X_test=X_test,
        y_test=y[test],
        test_ids=test,
        note=note,
    )


def bundled(split_rng, counts_rng, *, extra: bool = True) -> list[GLMData]:
    """breast_cancer and counts; with ``extra``, counts_weighted and linnerud too.

    The first data set of each family (breast_cancer, counts) is its main one. ``split_rng`` draws the
    breast_cancer split, ``counts_rng`` the simulated counts and their weights (drawn with or without
    ``extra``, so the counts do not depend on it).
    """
    bunch = load_breast_cancer()
    cancer = held_out_split(
        "breast_cancer",
        bunch.data,
        (bunch.target == 0).astype(float),
        bunch.feature_names,
        split_rng,
    )
    n, p = 60, 4
    X = counts_rng.standard_normal((n, p))
    y = counts_rng.poisson(np.exp(-0.3 + X @ counts_rng.normal(0.0, 0.5, size=p))).astype(float)
    weights = counts_rng.gamma(2.0, 0.5, size=n)
    names = tuple(f"x{j}" for j in range(p))
    main = [cancer, GLMData("counts", "poisson", X, y, names)]
    if not extra:
        return main
    linnerud = load_linnerud()
    return main + [
        GLMData("counts_weighted", "poisson", X, y, names, sample_weight=weights),
        GLMData(
            "linnerud",
            "poisson",
            standardize(linnerud.target)[0],
            linnerud.data[:, 0],
            tuple(linnerud.target_names),
        ),
    ]


def penalty_path(text: str, family: str) -> tuple[float, ...]:
    """A user's penalty path (``--path``): comma-separated C (logistic) or alpha (Poisson) values.

    Raises
    ------
    DataError
        Not numbers; a logistic C that is not finite and > 0 (every point of a path is a Normal prior's
        variance C, one compiled model per path); a Poisson alpha that is negative or not finite; no value > 0.
    """
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise DataError(f"--path must be comma-separated numbers, got {text!r}") from None
    for value in values:
        if family == "logistic":
            check_number(
                "C",
                value,
                inclusive=False,
                reason="every point of a path is a Normal prior's variance",
            )
        else:
            check_number("alpha", value)
    if not any(value > 0 for value in values):
        raise DataError("--path needs at least one value > 0")
    return values


def from_table(user: Dataset, family: str, split_rng) -> GLMData:
    """A user's table as a GLM data set: validated for ``family``, then split (logistic) or standardized.

    A logistic target with any two values is taken as scikit-learn and the twin take it: the larger value is
    class 1 (said in ``note``).

    Raises
    ------
    DataError
        What :func:`models.glm.validate_glm` raises; a constant feature; fewer than 4 rows of a class.
    """
    y, note = user.y, ""
    labels = np.unique(y)
    if family == "logistic" and labels.size == 2 and not np.array_equal(labels, [0.0, 1.0]):
        note = f"class 1 is y = {labels[1]:g}, class 0 is y = {labels[0]:g}"
        y = (y == labels[1]).astype(float)
    X, y, _ = validate_glm(user.X, y, family=family, name=user.name)
    if family == "poisson" and np.any(y != np.round(y)):
        # The equivalence path compares counts; a rate needs its exposure (priorlab twin --exposure).
        raise DataError(
            f"{user.name}: Poisson counts must be integers, got {y[y != np.round(y)][0]:g} (for a rate "
            "over an exposure, use priorlab twin --exposure)"
        )
    if family == "logistic":
        return held_out_split(user.name, X, y, user.feature_names, split_rng, note)
    return GLMData(user.name, "poisson", standardize(X)[0], y, tuple(user.feature_names))


def separable(rng):
    """n = 20 points on a line, class 0 left of -0.25 and class 1 right of +0.25: linearly separable.

    Returns
    -------
    (ndarray, ndarray)
        The feature ``x`` (n,), drawn uniformly in [-2.5, -0.25] (class 0) and [0.25, 2.5] (class 1), and the
        labels ``y`` (10 zeros, then 10 ones).
    """
    x = np.concatenate([rng.uniform(-2.5, -0.25, 10), rng.uniform(0.25, 2.5, 10)])
    return x, np.repeat([0.0, 1.0], 10)
