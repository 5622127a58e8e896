"""``BayesianTwin``: the twin of a penalized scikit-learn estimator as a scikit-learn estimator itself.

``BayesianTwin(Ridge(alpha=1.0)).fit(X, y)`` fits a clone of the estimator and its Bayesian twin
(:func:`models.twin.fit_twin`): ``coef_`` and ``intercept_`` are the twin's MAP, equal to the fitted
estimator's (``estimator_``) to the tolerance the twin checks; ``posterior_`` holds the posterior draws on the
original feature scale. It clones, pickles, sits in a ``Pipeline`` and is cross-validated and grid-searched like
any other model, and adds what the point estimate hides:

- ``predict(X, return_std=True)`` (regressors): the posterior mean of ``E[y | x]`` and the standard deviation of
  a new observation, as ``BayesianRidge`` and ``GaussianProcessRegressor`` report it;
- ``predict_proba(X)`` (classifiers): the posterior mean of ``P(y = 1 | x)``, averaged over the coefficients'
  uncertainty. It is pulled towards 1/2 relative to ``estimator_.predict_proba``, the plug-in at the MAP; the
  two rank rows the same only approximately;
- ``decision_function(X)`` (classifiers): the posterior mean of the linear predictor;
- ``predict_interval(X, prob, kind)``: the central interval of ``E[y | x]`` (``kind="mean"``) or of a new
  observation (``kind="observation"``);
- ``sample_posterior_predictive(X, n)``: draws of new observations.

The posterior is exact (Student-t or Gaussian) for Ridge-type estimators and NUTS draws otherwise; predictions
from an exact posterior are exact, others are Monte Carlo averages over the ``chains * draws`` draws.

``RidgeClassifier``'s twin is the Ridge twin on the classes coded -1 and +1, as scikit-learn fits it. That
Gaussian likelihood on labels is misspecified: its posterior is that of the decision function, not a model of
how labels arise, and it has no class probabilities (no ``predict_proba``). ``predict`` gives the class whose
code the posterior mean of the decision function is nearer (its sign), as ``RidgeClassifier.predict`` does;
``sample_posterior_predictive`` the class of the sign of a new code drawn from the Gaussian likelihood. With 3
or more classes (one-vs-rest, :mod:`models.ridge_classifier`) the same holds class by class: ``coef_`` (K x p)
and ``intercept_`` (K) as scikit-learn's; ``decision_function`` the exact posterior mean of each class's
decision function; ``predict`` the class with the largest, as ``RidgeClassifier.predict`` does;
``sample_posterior_predictive`` the class whose new code (one drawn per class) is largest;
``predict_interval(kind="mean")`` shape ``(n_rows, n_classes, 2)``.

A ``LogisticRegression`` on 3 or more classes gets the multinomial twin (:mod:`models.multinomial`):
``coef_`` (K x p) and ``intercept_`` (K, summing to zero) as scikit-learn's; ``predict_proba`` the posterior
mean of every class's probability; ``predict`` the class with the largest; ``decision_function`` the posterior
mean of each class's linear predictor; ``predict_interval(kind="mean")`` shape ``(n_rows, n_classes, 2)``.
"""

import numpy as np
import pandas as pd
import scipy.sparse
import scipy.special
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from models import registry
from models.data import DataError, check_number
from models.twin import fit_twin

__all__ = ["BayesianTwin"]


class BayesianTwin(BaseEstimator):
    """The Bayesian twin of a penalized linear estimator (see :data:`models.registry.KINDS`).

    Parameters
    ----------
    estimator : estimator or Pipeline, default=None
        The penalized estimator (unfitted; a clone is fitted). None means ``Ridge()``.
    draws, tune, chains : int
        NUTS settings (draws per chain); for an exact posterior, the number of independent draws kept.
    seed : int
        Seeds NUTS, the exact posterior's draws and the predictive draws.

    Attributes
    ----------
    estimator_ : the fitted clone of ``estimator``
    twin_ : models.twin.TwinFit
    coef_, intercept_ : the MAP on the original feature scale (``intercept_`` is 0.0 without an intercept)
    posterior_ : xarray.DataTree with ``intercept`` and ``beta`` (dimension ``feature``)
    classes_ : the class labels (classifiers; two, or 3 or more for a multinomial LogisticRegression)
    n_features_in_, feature_names_in_ : as scikit-learn sets them
    """

    def __init__(
        self, estimator=None, *, draws: int = 1000, tune: int = 1000, chains: int = 2, seed: int = 0
    ):
        self.estimator = estimator
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.seed = seed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._template())
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = self._multiclass
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags.sparse = True
        return tags

    def _template(self):
        return Ridge() if self.estimator is None else self.estimator

    @property
    def _multiclass(self) -> bool:
        """Whether the estimator has a twin for 3 or more classes (LogisticRegression: the multinomial;
        RidgeClassifier: one-vs-rest)."""
        template = self._template()
        final = template.steps[-1][1] if isinstance(template, Pipeline) else template
        kind = registry.match(final)
        return kind is not None and kind.multiclass is not None

    @property
    def _is_classifier(self) -> bool:
        return get_tags(self._template()).estimator_type == "classifier"

    def fit(self, X, y, sample_weight=None):
        """Fit a clone of the estimator and its twin; returns self."""
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=("csr", "csc"),
            ensure_min_samples=2,
            y_numeric=not self._is_classifier,
        )
        if self._is_classifier:
            check_classification_targets(y)
            target_type = type_of_target(y, input_name="y")
            if target_type != "binary" and not (target_type == "multiclass" and self._multiclass):
                raise DataError(
                    f"Only binary classification is supported for {type(self._template()).__name__}; "
                    f"the target is {target_type} (LogisticRegression and RidgeClassifier have twins "
                    "for 3 or more classes)"
                )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        names = getattr(self, "feature_names_in_", None)
        if names is not None and not scipy.sparse.issparse(X):
            X = pd.DataFrame(X, columns=names)
        self.twin_ = fit_twin(
            clone(self._template()),
            X,
            y,
            sample_weight=sample_weight,
            seed=self.seed,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
        )
        self.estimator_ = self.twin_.estimator
        fi = int(self.twin_.names[0] == "intercept")
        self.coef_ = self.twin_.map_coef[fi:]
        self.intercept_ = float(self.twin_.map_coef[0]) if fi else 0.0
        if self.twin_.classes is not None:
            # The multinomial twin: intercept_ (K) and coef_ (K x p), as scikit-learn's.
            K = len(self.twin_.classes)
            fi = int(self.twin_.names[0].startswith("intercept["))
            self.coef_ = self.twin_.map_coef[K * fi :].reshape(K, -1)
            self.intercept_ = self.twin_.map_coef[:K] if fi else np.zeros(K)
        self.posterior_ = self.twin_.idata
        if self._is_classifier:
            self.classes_ = self.estimator_.classes_
        return self

    def summary(self, prob: float = 0.9):
        """Per coefficient: estimator, MAP, posterior mean, SD and the central ``prob`` interval."""
        check_is_fitted(self)
        return self.twin_.summary(prob)

    def _rows(self, X) -> np.ndarray:
        """New rows checked as scikit-learn checks them (feature names and count, finite values)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse=("csr", "csc"))
        return X.toarray() if scipy.sparse.issparse(X) else X

    def _design(self, X) -> np.ndarray:
        X_new = self._rows(X)
        return np.column_stack([np.ones(len(X_new)), X_new]) if self.twin_._fi else X_new

    def _linear_predictor_draws(self, X) -> np.ndarray:
        """Draws of ``x beta + intercept``, shape ``(chains * draws, n_rows)``."""
        return self.twin_.draws @ self._design(X).T

    def predict(self, X, return_std: bool = False):
        """Regressors: the posterior mean of ``E[y | x]`` (a QuantileRegressor's twin: the posterior predictive
        distribution's quantile at the estimator's ``quantile``), and the SD of a new observation with
        ``return_std``. Classifiers: the class whose posterior mean probability is larger."""
        check_is_fitted(self)
        if self._is_classifier:
            if return_std:
                raise DataError("return_std is for regressors; use predict_proba")
            if self._outcome.one_vs_rest:  # RidgeClassifier: the largest decision function
                return self.classes_[np.argmax(self.decision_function(X), axis=1)]
            if self._outcome.categorical:
                return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
            if not self._outcome.binary:  # RidgeClassifier: the sign of the decision function
                return self.classes_[(self.decision_function(X) > 0).astype(int)]
            proba = self.predict_proba(X)[:, 1]
            return self.classes_[(proba > 0.5).astype(int)]
        twin = self.twin_
        if twin.exact is not None:
            design = self._design(X)
            mean = design @ twin.exact.mean
            if not return_std:
                return mean
            spread = np.sum((design @ twin.exact.scale_factor) ** 2, axis=1)
            if np.isinf(twin.exact.df):
                return mean, np.sqrt(spread + twin.noise_sigma**2)
            noise_scale2 = twin.exact.noise_rate / twin.exact.noise_shape
            df = twin.exact.df
            return mean, np.sqrt((spread + noise_scale2) * df / (df - 2.0))
        response = self._mean_response_draws(X)
        outcome = self._outcome
        # A quantile twin predicts its predictive distribution's quantile (Outcome.point).
        point = (
            response.mean(axis=0) if outcome.point is None else outcome.point(response, twin.noise)
        )
        if not return_std:
            return point
        # Law of total variance: the spread of E[y | x] plus the mean observation variance.
        noise = outcome.variance(response, twin.noise)
        return point, np.sqrt(response.var(axis=0) + noise.mean(axis=0))

    @property
    def _outcome(self):
        return self.twin_.outcome

    def _mean_response_draws(self, X) -> np.ndarray:
        return self._outcome.mean(self._linear_predictor_draws(X))

    @available_if(lambda self: self._is_classifier)
    def decision_function(self, X) -> np.ndarray:
        """Classifiers: the posterior mean of the linear predictor ``x beta + intercept`` (for a
        RidgeClassifier, its decision function); exact where the posterior is."""
        check_is_fitted(self)
        if self._outcome.one_vs_rest:  # one column per class, exact
            return self.twin_.class_decision_function(self._rows(X))
        if self._outcome.categorical:  # one column per class
            return self.twin_._class_linear_predictor_draws(self._rows(X)).mean(axis=0)
        if self.twin_.exact is not None:
            return self._design(X) @ self.twin_.exact.mean
        return self._linear_predictor_draws(X).mean(axis=0)

    @available_if(lambda self: self._is_classifier and hasattr(self._template(), "predict_proba"))
    def predict_proba(self, X) -> np.ndarray:
        """Classifiers: the posterior mean of ``P(y = class | x)``, columns in ``classes_`` order."""
        check_is_fitted(self)
        if self._outcome.categorical:
            return self.twin_._class_probability_draws(self._rows(X)).mean(axis=0)
        p = self._mean_response_draws(X).mean(axis=0)
        return np.column_stack([1.0 - p, p])

    def predict_interval(self, X, prob: float = 0.9, kind: str = "mean") -> np.ndarray:
        """The central ``prob`` interval of ``E[y | x]`` (``kind="mean"``) or of a new observation
        (``kind="observation"``; not for a 0/1 outcome), shape ``(n_rows, 2)``."""
        if kind not in ("mean", "observation"):
            raise DataError(f"kind must be 'mean' or 'observation', got {kind!r}")
        check_number("prob", prob, high=1.0, inclusive=False)
        if kind == "observation" and self._is_classifier:
            raise DataError("a 0/1 outcome has no observation interval; use kind='mean'")
        table = self.twin_.predict(self._rows(X), prob)
        columns = [
            c for c in table.columns if c.startswith("mean_q" if kind == "mean" else "predictive_q")
        ]
        if self._outcome.categorical:  # each class's probability: shape (n_rows, n_classes, 2)
            return table[columns].to_numpy().reshape(-1, len(self.classes_), 2)
        return table[columns].to_numpy()

    def sample_posterior_predictive(self, X, n: int = 1000, seed=None) -> np.ndarray:
        """``n`` draws of a new observation per row, shape ``(n, n_rows)``: coefficients (and the noise
        variance) from the joint posterior, then the outcome from the likelihood (labels for a classifier).

        An exact posterior is sampled afresh: ``sigma**2`` from its inverse-gamma marginal, then the
        coefficients given it, so the pair is a joint draw; a NUTS posterior is resampled from its draws.
        """
        design = self._design(X)
        rng = np.random.default_rng([self.seed, 2] if seed is None else seed)
        twin, exact = self.twin_, self.twin_.exact
        if self._outcome.one_vs_rest:
            # A new code for every class (independent posteriors), and the class whose code is largest, as
            # the decision rule picks it.
            rows = self._rows(X)
            class_design = np.column_stack([np.ones(len(rows)), rows]) if twin._class_fi else rows
            codes = [
                _exact_new_observations(class_design, posterior, twin.noise_sigma, rng, n)
                for posterior in twin.class_posteriors()
            ]
            return self.classes_[np.argmax(np.stack(codes, axis=-1), axis=-1)]
        if self._outcome.categorical:
            draws = twin._class_probability_draws(self._rows(X))
            chosen = draws[rng.integers(len(draws), size=n)]
            return self.classes_[self._outcome.draw(rng, chosen, None)]
        if exact is not None:
            new_y = _exact_new_observations(design, exact, twin.noise_sigma, rng, n)
            if self._is_classifier:  # RidgeClassifier: the class of a new code's sign
                return self.classes_[(new_y > 0).astype(int)]
            return new_y
        rows = rng.integers(len(twin.draws), size=n)
        eta = twin.draws[rows] @ design.T
        noise = twin.noise_sigma if twin.noise_draws is None else twin.noise_draws[rows, None]
        new_y = self._outcome.draw(rng, self._outcome.mean(eta), noise)
        return self.classes_[new_y.astype(int)] if self._outcome.binary else new_y

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classifiers) or R^2 (regressors) of :meth:`predict`."""
        if self._is_classifier:
            return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
        return r2_score(y, self.predict(X), sample_weight=sample_weight)


def _exact_new_observations(design, exact, noise_sigma, rng, n: int) -> np.ndarray:
    """``n`` new observations per row of ``design`` (shape ``(n, rows)``) from an exact linear posterior:
    ``sigma**2`` from its inverse-gamma marginal (or ``noise_sigma`` when known), then the coefficients given
    it, then the Gaussian noise; a joint draw of all three."""
    z = rng.standard_normal((n, exact.scale_factor.shape[1]))
    if np.isinf(exact.df):
        sigma = np.full((n, 1), noise_sigma)
        eta = design @ exact.mean + (z @ exact.scale_factor.T) @ design.T
    else:
        sigma2 = exact.noise_rate / rng.gamma(exact.noise_shape, size=(n, 1))
        # beta | sigma**2 ~ N(mean, sigma**2 F F^T), where scale_factor = sqrt(rate / shape) F.
        ratio = np.sqrt(sigma2 * exact.noise_shape / exact.noise_rate)
        sigma = np.sqrt(sigma2)
        eta = design @ exact.mean + ratio * ((z @ exact.scale_factor.T) @ design.T)
    return eta + sigma * rng.standard_normal(eta.shape)
