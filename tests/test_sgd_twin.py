"""The twins of SGDRegressor and SGDClassifier (models.registry: sgd_equivalent, read_sgd, the sgd_* kinds).

SGD minimizes ``(1/n) sum_i w_i L_i + alpha R(w)``; the twin's MAP is the exact optimum of that objective,
and SGD's distance from it is measured, not failed. Data: diabetes and breast_cancer, standardized (y too for
diabetes, so that SGD's default step sizes are stable).
"""

import numpy as np
import pytest
from glum import GeneralizedLinearRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import (
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.preprocessing import StandardScaler

from models import registry
from models.data import DataError
from models.diagnostics import relative_error
from models.fit import intercept_first
from models.twin import fit_twin

ALPHA = 0.01
"""SGD's alpha in every case: on these data a penalty that shrinks visibly and zeroes some l1 coefficients."""


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


@pytest.fixture(scope="module")
def classification():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(float)


def sgd_regressor(penalty="l2", l1_ratio=0.15, **settings):
    return SGDRegressor(alpha=ALPHA, penalty=penalty, l1_ratio=l1_ratio, random_state=0, **settings)


def sgd_classifier(loss="log_loss", penalty="l2", l1_ratio=0.15, **settings):
    return SGDClassifier(
        loss=loss, alpha=ALPHA, penalty=penalty, l1_ratio=l1_ratio, random_state=0, **settings
    )


def tight(estimator):
    """The equivalent estimator with the tolerance its reference fit uses."""
    if isinstance(estimator, LogisticRegression):
        solver = "saga" if estimator.l1_ratio else "newton-cholesky"
        return estimator.set_params(solver=solver, tol=1e-12, max_iter=1_000_000)
    if hasattr(estimator, "tol"):
        estimator.set_params(tol=1e-13, max_iter=1_000_000)
    return estimator


OBJECTIVES = [
    pytest.param("regression", sgd_regressor(), "ridge", id="squared_error-l2"),
    pytest.param("regression", sgd_regressor("l1"), "lasso", id="squared_error-l1"),
    pytest.param(
        "regression", sgd_regressor("elasticnet", 0.5), "elasticnet", id="squared_error-en"
    ),
    pytest.param("classification", sgd_classifier(), "logistic", id="log_loss-l2"),
    pytest.param("classification", sgd_classifier(penalty="l1"), "logistic", id="log_loss-l1"),
    pytest.param(
        "classification",
        sgd_classifier(penalty="elasticnet", l1_ratio=0.5),
        "logistic",
        id="log_loss-en",
    ),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("data", "sgd", "target"), OBJECTIVES)
def test_equivalent_estimator_minimizes_sgds_objective(data, sgd, target, weighted, request):
    """glum minimizes ``(1 / sum(w)) sum_i w_i deviance_i / 2 + alpha R(w)``, which is SGD's objective
    times ``n / sum(w)`` at glum's alpha ``alpha n / sum(w)``: an independent solver of SGD's objective."""
    X, y = request.getfixturevalue(data)
    weights = np.random.default_rng(1).uniform(0.2, 3.0, len(y)) if weighted else None
    weight_sum = len(y) if weights is None else weights.sum()
    alpha, l1_ratio = registry.sgd_penalty(sgd)
    family = "binomial" if data == "classification" else "normal"
    glum = GeneralizedLinearRegressor(
        family=family,
        alpha=alpha * len(y) / weight_sum,
        l1_ratio=l1_ratio,
        gradient_tol=1e-12,
        max_iter=10_000,
    ).fit(X, y, sample_weight=weights)
    optimum = np.concatenate([[glum.intercept_], glum.coef_])
    equivalent = registry.sgd_equivalent(sgd, len(y), weight_sum)
    assert registry.sgd_target(sgd) == target
    if isinstance(equivalent, LogisticRegression) and equivalent.l1_ratio > 0:
        # saga takes seconds to converge here: certify glum's fit by the equivalent's own subgradient
        # conditions instead (glum stops at gradient_tol 1e-12; rounding is ~1e-13 here).
        kkt = registry.logistic_kkt_violation(
            optimum, X, y, weights, logistic_C=equivalent.C, l1_ratio=l1_ratio, fit_intercept=True
        )
        assert kkt.violation <= 1e-8
    else:
        fitted = tight(equivalent).fit(X, y, sample_weight=weights)
        # Both solvers stop at rounding level: 2e-11 at most measured across these cases.
        assert relative_error(intercept_first(fitted), optimum) <= 1e-8


@pytest.mark.parametrize(
    ("data", "sgd", "reference"),
    [
        pytest.param(
            "regression", sgd_regressor(), Ridge(alpha=442 * ALPHA), id="squared_error-l2"
        ),
        pytest.param(
            "classification",
            sgd_classifier("squared_error"),
            RidgeClassifier(alpha=569 * ALPHA),
            id="classifier-squared_error-l2",
        ),
    ],
)
def test_sgd_twin_map_is_the_tight_refit_and_sgds_distance_is_reported(
    data, sgd, reference, request
):
    """Ridge-type SGD twins (exact posterior, no NUTS): the MAP is Ridge's optimum at ``n alpha``."""
    X, y = request.getfixturevalue(data)
    fit = fit_twin(sgd, X, y)
    optimum = intercept_first(reference.fit(X, y))
    assert fit.kind == f"sgd_{registry.sgd_target(sgd)}"
    assert relative_error(fit.map_coef, optimum) <= 1e-8  # exact linear algebra on both sides
    distance = fit.checks["estimator_distance_from_optimum"]
    assert np.isfinite(distance["value"]) and distance["value"] > 0 and distance["passed"]
    # The distance is SGD's from the optimum, relative to the optimum's largest coefficient (two optima
    # 1e-8 apart make a relative difference of ~1e-8 in it).
    assert distance["value"] == pytest.approx(relative_error(fit.estimator_coef, optimum), rel=1e-6)
    assert "map_vs_estimator" not in fit.checks
    assert all(check["passed"] for check in fit.checks.values()), fit.checks


def sgd_distance(sgd, X, y, **kwargs) -> float:
    return fit_twin(sgd, X, y, **kwargs).checks["estimator_distance_from_optimum"]["value"]


def test_sgd_distance_shrinks_with_more_iterations_and_smaller_tol(regression):
    """SGD is deterministic at a fixed ``random_state``; on diabetes it stopped 0.53 from the optimum after
    5 epochs, 0.045 after 500; at tol 1e-1 after 6 epochs (0.535), at tol 1e-6 after 14 (0.489)."""
    X, y = regression
    few, many = (sgd_distance(sgd_regressor(tol=None, max_iter=k), X, y) for k in (5, 500))
    assert many < few / 5
    loose, strict = (
        sgd_distance(sgd_regressor(tol=tol, max_iter=100_000), X, y) for tol in (1e-1, 1e-6)
    )
    assert strict < loose


def test_sgd_weights_follow_sgds_own_convention(regression, classification):
    """Sample weights enter SGD's objective as ``(1/n) sum_i w_i L_i`` (not divided by ``sum(w)``), and
    class weights are ``compute_class_weight`` per row: a long SGD run ends near the twin's optimum and far
    from the optimum under the other convention (measured: 0.008 against 0.31; 0.021 against 0.36)."""
    X, y = regression
    weights = np.random.default_rng(0).uniform(1.0, 5.0, len(y))  # mean 3: the conventions differ
    sgd = sgd_regressor(tol=None, max_iter=3000, eta0=1e-3).set_params(alpha=0.05)
    fit = fit_twin(sgd, X, y, sample_weight=weights)
    other = Ridge(alpha=weights.sum() * 0.05).fit(X, y, sample_weight=weights)
    assert fit.checks["estimator_distance_from_optimum"]["value"] <= 0.03
    assert relative_error(fit.estimator_coef, intercept_first(other)) >= 0.1

    X, y = classification
    sgd = sgd_classifier(
        "squared_error", class_weight="balanced", learning_rate="constant", eta0=1e-3, tol=None
    )
    fit = fit_twin(sgd.set_params(max_iter=1000), X, y)
    unweighted = RidgeClassifier(alpha=len(y) * ALPHA).fit(X, y)
    assert fit.checks["estimator_distance_from_optimum"]["value"] <= 0.05
    assert relative_error(fit.estimator_coef, intercept_first(unweighted)) >= 0.1


@pytest.mark.parametrize(
    ("sgd", "target", "says"),
    [
        (sgd_classifier("hinge"), "binary", "loss='hinge': exp(-loss) over the two labels"),
        (sgd_classifier("modified_huber"), "binary", "loss='modified_huber'"),
        (sgd_classifier("squared_hinge"), "binary", "loss='squared_hinge'"),
        (sgd_classifier("perceptron"), "binary", "loss='perceptron'"),
        (sgd_regressor(loss="huber"), "continuous", "loss='huber': exp(-loss) is a density"),
        (sgd_regressor(loss="epsilon_insensitive"), "continuous", "loss='epsilon_insensitive'"),
        (sgd_classifier("huber"), "binary", "a regression loss on the labels coded -1/+1"),
        (sgd_classifier("squared_error", "l1"), "binary", "only squared_error with an l2 penalty"),
        (
            sgd_regressor(early_stopping=True),
            "continuous",
            "(early_stopping=True) (it fits on a random",
        ),
        (
            sgd_classifier(),
            "three classes",
            "exactly 2 classes, got 3 (one-vs-rest fits one coefficient vector",
        ),
    ],
)
def test_sgd_settings_without_a_twin_are_refused_in_one_line(sgd, target, says, regression):
    X, y = regression
    targets = {
        "continuous": y,
        "binary": (y > 0).astype(float),
        "three classes": np.digitize(y, [-0.5, 0.5]),
    }
    with pytest.raises(DataError, match=r"^[^\n]+$") as error:
        fit_twin(sgd, X, targets[target])
    assert says in str(error.value)


@pytest.mark.extended
@pytest.mark.parametrize(("data", "sgd", "target"), OBJECTIVES[1:])
def test_sampled_sgd_twin_map_is_the_tight_refit_of_its_equivalent(data, sgd, target, request):
    """The SGD twins sampled by NUTS (l1 and elastic-net squared error, every logistic one): the MAP is the
    equivalent estimator refitted tightly, SGD's distance from it is reported, and every check on the MAP
    passes (the checks on the draws are not asserted: 2 x 500 draws fall short of the l1 logistic
    posterior's ESS target of 400)."""
    X, y = request.getfixturevalue(data)
    fit = fit_twin(sgd, X, y, seed=3, draws=500, tune=500, chains=2)
    assert fit.kind == f"sgd_{target}"
    optimum = intercept_first(tight(registry.sgd_equivalent(sgd, len(y), len(y))).fit(X, y))
    assert relative_error(fit.map_coef, optimum) <= 1e-6  # the kinds' tolerance: solvers at 1e-12
    distance = fit.checks.pop("estimator_distance_from_optimum")
    assert np.isfinite(distance["value"]) and distance["passed"]
    on_the_map = {name: check for name, check in fit.checks.items() if name.startswith("map_")}
    assert on_the_map and all(check["passed"] for check in on_the_map.values()), fit.checks
