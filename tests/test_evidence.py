import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import xarray as xr
from sklearn.linear_model import BayesianRidge, Ridge
from sklearn.model_selection import LeaveOneOut, cross_val_predict

from models.diagnostics import mean_z_scores, quantile_z_scores
from models.evidence import (
    Evidence,
    Hyperposterior,
    bayesian_ridge_gap,
    bayesian_ridge_gap_decades,
    bayesian_ridge_objective_argmax,
    criteria_path,
    default_hyperprior_scales,
    exact_loo,
    hierarchical_find_map,
    hierarchical_linear_regression,
    hyperposterior,
    log_evidence,
    nuts_against_quadrature,
    profile_log_joint,
    psis_loo_against_exact,
    tau_profile,
)
from models.exact import linear_posterior
from models.fit import COMPILE_MODE, compile_nuts, posterior_coefficients, sample_nuts
from models.linear import linear_regression


@pytest.fixture
def small(rng):
    """A small problem where dense n x n linear algebra is the brute-force reference."""
    n, p = 9, 3
    X = rng.standard_normal((n, p)) * [1.0, 10.0, 0.1]
    y = 1.5 + X @ [0.5, -0.1, 4.0] + 0.7 * rng.standard_normal(n)
    weights = rng.gamma(2.0, 0.5, size=n)
    return X, y, weights


def marginal_cov(X, alpha, sigma, weights):
    """Covariance of y given the intercept: sigma**2 (W^-1 + X X^T / alpha)."""
    return sigma**2 * (np.diag(1.0 / weights) + X @ X.T / alpha)


def flat_intercept_logpdf(y, cov):
    """log of the integral over b of N(y; b 1, cov) db (Lebesgue measure), by dense linear algebra."""
    n = y.size
    precision = np.linalg.inv(cov)
    ones = np.ones(n)
    total = ones @ precision @ ones
    projected = precision - np.outer(precision @ ones, precision @ ones) / total
    _, log_det = np.linalg.slogdet(cov)
    return -0.5 * ((n - 1) * np.log(2 * np.pi) + log_det + np.log(total) + y @ projected @ y)


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 1e3])
def test_known_noise_evidence_is_the_multivariate_normal_density_of_y(small, alpha):
    X, y, weights = small
    cov = marginal_cov(X, alpha, 0.7, weights)
    expected = scipy.stats.multivariate_normal(np.zeros(y.size), cov).logpdf(y)
    got = log_evidence(
        X, y, ridge_alpha=alpha, noise_sigma=0.7, sample_weight=weights, fit_intercept=False
    )
    np.testing.assert_allclose(got, expected, rtol=1e-9)  # dense side: cov's condition number ~1e7


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 1e3])
def test_flat_intercept_evidence_matches_dense_integral_and_wide_prior_limit(small, alpha):
    X, y, weights = small
    cov = marginal_cov(X, alpha, 0.7, weights)
    got = log_evidence(X, y, ridge_alpha=alpha, noise_sigma=0.7, sample_weight=weights)
    np.testing.assert_allclose(got, flat_intercept_logpdf(y, cov), rtol=1e-9)  # cond(cov) ~1e7
    # A N(0, s**2) intercept prior times s sqrt(2 pi) tends to the flat prior; the error is O(1 / s**2).
    s = 1e3
    wide = scipy.stats.multivariate_normal(np.zeros(y.size), cov + s**2).logpdf(y)
    # 1 / s**2 = 1e-6 (measured 1.8e-6).
    np.testing.assert_allclose(wide + 0.5 * np.log(2 * np.pi * s**2), got, atol=1e-5)


def test_unknown_noise_evidence_is_the_multivariate_t_density_of_y(small):
    X, y, weights = small
    shape, rate, alpha = 2.5, 3.0, 0.3
    scale = rate / shape * marginal_cov(X, alpha, 1.0, weights)
    expected = scipy.stats.multivariate_t(np.zeros(y.size), scale, df=2 * shape).logpdf(y)
    got = log_evidence(
        X,
        y,
        ridge_alpha=alpha,
        noise_prior=(shape, rate),
        sample_weight=weights,
        fit_intercept=False,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)  # closed forms of the same density


def test_unknown_noise_evidence_integrates_known_noise_over_the_inverse_gamma_prior(small):
    X, y, weights = small
    shape, rate, alpha = 1.0, 1.0, 2.0

    def integrand(variance):
        known = flat_intercept_logpdf(y, marginal_cov(X, alpha, np.sqrt(variance), weights))
        return np.exp(known + scipy.stats.invgamma.logpdf(variance, shape, scale=rate))

    integral, _ = scipy.integrate.quad(integrand, 0.0, np.inf, limit=200)
    got = log_evidence(X, y, ridge_alpha=alpha, noise_prior=(shape, rate), sample_weight=weights)
    np.testing.assert_allclose(got, np.log(integral), rtol=1e-7)  # adaptive quadrature's accuracy


def test_profiled_noise_evidence_is_the_maximum_over_sigma(small):
    X, y, weights = small
    evidence = Evidence(X, y, sample_weight=weights)
    for alpha in [1e-2, 1.0, 1e2]:
        best = scipy.optimize.minimize_scalar(
            lambda log_sigma, a=alpha: -evidence.known_noise(a, np.exp(log_sigma)),
            bounds=(-5.0, 5.0),
            method="bounded",
            options={"xatol": 1e-10},
        )
        # At the maximum the value is flat in sigma: xatol=1e-10 costs ~1e-20; measured 1e-16 relative.
        np.testing.assert_allclose(evidence.profiled_noise(alpha), -best.fun, rtol=1e-12)


def test_evidence_is_accurate_for_p_greater_than_n_and_extreme_alphas(rng):
    n, p = 12, 30
    X = rng.standard_normal((n, p))
    y = X[:, :3] @ [1.0, -1.0, 2.0] + rng.standard_normal(n)
    for alpha in [1e-6, 1.0, 1e8]:
        cov = marginal_cov(X, alpha, 1.3, np.ones(n))
        got = log_evidence(X, y, ridge_alpha=alpha, noise_sigma=1.3)
        np.testing.assert_allclose(got, flat_intercept_logpdf(y, cov), rtol=1e-9)  # cond(cov) ~ 1e7
    # alpha -> inf: beta = 0 exactly, the evidence of the intercept-only model (no cancellation).
    centered = y - y.mean()
    intercept_only = (
        -0.5 * (n - 1) * np.log(2 * np.pi * 1.3**2)
        - 0.5 * np.log(n)
        - centered @ centered / (2 * 1.3**2)
    )
    # At alpha = 1e15 beta adds X X^T / alpha (~1e-13 relative) to the covariance: measured 2.5e-14.
    np.testing.assert_allclose(
        log_evidence(X, y, ridge_alpha=1e15, noise_sigma=1.3), intercept_only, rtol=1e-12
    )


def test_evidence_maximum_is_a_stationary_point(small):
    X, y, _ = small
    evidence = Evidence(X, y)
    best = evidence.maximize("profiled")
    for factor in [0.99, 1.01]:
        assert evidence.profiled_noise(best * factor) < evidence.profiled_noise(best)


@pytest.mark.parametrize("noise_sigma", [0.8, None])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_exact_loo_matches_refitting_without_each_row(rng, noise_sigma, fit_intercept):
    n, p = 25, 4
    X = rng.standard_normal((n, p))
    y = 1.0 + X @ rng.standard_normal(p) + rng.standard_normal(n)
    loo = exact_loo(X, y, ridge_alpha=2.0, noise_sigma=noise_sigma, fit_intercept=fit_intercept)
    for i in range(n):
        keep = np.arange(n) != i
        post = linear_posterior(
            X[keep], y[keep], ridge_alpha=2.0, noise_sigma=noise_sigma, fit_intercept=fit_intercept
        )
        x = np.concatenate([[1.0], X[i]]) if fit_intercept else X[i]
        spread = x @ post.scale_factor @ post.scale_factor.T @ x
        if noise_sigma is None:
            scale = np.sqrt(spread + post.noise_rate / post.noise_shape)
            expected = scipy.stats.t.logpdf(y[i], df=post.df, loc=x @ post.mean, scale=scale)
        else:
            expected = scipy.stats.norm.logpdf(
                y[i], x @ post.mean, np.sqrt(spread + noise_sigma**2)
            )
        np.testing.assert_allclose(
            loo.elpd_i[i], expected, rtol=1e-12
        )  # rank-one identities, exact
        # A residual is a difference, relative rounding grows as it shrinks: measured 5e-14.
        np.testing.assert_allclose(loo.residual[i], y[i] - x @ post.mean, rtol=1e-10)


def test_hierarchical_model_density_is_the_stated_priors_and_likelihood(rng):
    X = rng.standard_normal((20, 3))
    y = X @ [1.0, 0.0, -1.0] + rng.standard_normal(20)
    scales = default_hyperprior_scales(X, y)
    point = {"sigma": 0.9, "tau": 1.7, "beta": np.array([0.3, -0.2, 0.5]), "intercept": 0.4}
    expected = (
        scipy.stats.halfnorm.logpdf(point["sigma"], scale=scales.sigma_scale)
        + scipy.stats.halfcauchy.logpdf(point["tau"], scale=scales.tau_scale)
        + scipy.stats.norm.logpdf(point["beta"], 0.0, point["tau"]).sum()
        + scipy.stats.norm.logpdf(y, point["intercept"] + X @ point["beta"], point["sigma"]).sum()
    )
    model = hierarchical_linear_regression(X, y, noncentered=False)
    logp = model.compile_logp(jacobian=False, mode=COMPILE_MODE)
    values = {"sigma_log__": np.log(point["sigma"]), "tau_log__": np.log(point["tau"])}
    values |= {"beta": point["beta"], "intercept": np.array(point["intercept"])}
    np.testing.assert_allclose(logp(values), expected, rtol=1e-10)  # same densities, other formulas


def test_centered_joint_density_grows_without_bound_as_tau_shrinks(rng):
    X = rng.standard_normal((50, 5))
    y = X @ rng.standard_normal(5) + rng.standard_normal(50)
    evidence = Evidence(X, y)
    scales = default_hyperprior_scales(X, y)
    log_tau = np.log(np.logspace(-12, 2, 141))
    log_sigma = np.linspace(np.log(0.3), np.log(5 * np.std(y)), 400)
    centered, noncentered = profile_log_joint(evidence, log_tau, log_sigma, scales=scales, p=5)
    # Below the data's scale the centered profile rises by about p log(10) per decade of tau.
    slope = np.diff(centered[:40]) / np.diff(log_tau[:40])
    # tau <= 1e-8: beta is 0 to rounding, the best sigma does not move, and the profile is exactly
    # -p log tau + constant: measured 8e-14; 1e-8 leaves room for rounding on other builds.
    np.testing.assert_allclose(slope, -5.0, atol=1e-8)
    assert noncentered[0] < noncentered.max() - 10.0
    # The profile is the joint density at the Ridge solution: check one difference in tau directly.
    sigma = np.exp(log_sigma[200])
    one_sigma = log_sigma[200:201]

    def joint_at_ridge(tau):
        alpha = sigma**2 / tau**2
        post = linear_posterior(X, y, ridge_alpha=alpha, noise_sigma=sigma)
        intercept, beta = post.mean[0], post.mean[1:]
        return (
            scipy.stats.norm.logpdf(y, intercept + X @ beta, sigma).sum()
            + scipy.stats.norm.logpdf(beta, 0.0, tau).sum()
            + scipy.stats.halfcauchy.logpdf(tau, scale=scales.tau_scale)
        )

    taus = np.array([0.05, 2.0])
    profile, _ = profile_log_joint(evidence, np.log(taus), one_sigma, scales=scales, p=5)
    # The same densities through the evidence's algebra: measured 7e-16 relative.
    np.testing.assert_allclose(
        profile[1] - profile[0], joint_at_ridge(taus[1]) - joint_at_ridge(taus[0]), rtol=1e-10
    )


def test_tau_profile_climbs_without_bound_below_the_data_scale_only_when_centered(rng):
    X = rng.standard_normal((50, 5))
    y = X @ rng.standard_normal(5) + rng.standard_normal(50)
    log_tau, centered, noncentered = tau_profile(X, y, tau_center=1.0)
    assert log_tau.size == 321
    np.testing.assert_allclose(log_tau[[0, -1]], np.log([1e-12, 1e4]), rtol=1e-12)  # rounding only
    # Over the grid's lowest 4 decades the centered profile climbs like -p log tau, to its largest value at
    # the grid's end; the non-centered one has its maximum inside the grid.
    slope = np.diff(centered[:81]) / np.diff(log_tau[:81])
    # As above, -p log tau exactly (tau <= 1e-8 relative to the data): measured 2e-13.
    np.testing.assert_allclose(slope, -5.0, atol=1e-8)
    assert int(np.argmax(centered)) == 0
    assert 0 < int(np.argmax(noncentered)) < log_tau.size - 1


def test_bayesian_ridge_objective_with_n_minus_1_rows_has_the_evidence_maximum(diabetes):
    evidence = Evidence(diabetes.X, diabetes.y)
    fit = BayesianRidge(tol=1e-14, max_iter=100_000).fit(diabetes.X, diabetes.y)
    start = np.log([fit.alpha_, fit.lambda_])
    # Converged, BayesianRidge sits on the maximum of its own objective (n rows, Gamma hyperpriors).
    np.testing.assert_allclose(  # Nelder-Mead to 1e-12 in log precisions against sklearn's tol=1e-14
        bayesian_ridge_objective_argmax(evidence, start, hyperprior=1e-6),
        fit.lambda_ / fit.alpha_,
        rtol=1e-6,
    )
    evidence.n_rows = evidence.n_residual  # no extra row: the twin's own evidence
    alpha = bayesian_ridge_objective_argmax(evidence, start, hyperprior=0.0)
    # Nelder-Mead and the bounded scalar search each stop within 1e-10 in log alpha.
    np.testing.assert_allclose(alpha, Evidence(diabetes.X, diabetes.y).maximize(), rtol=1e-6)


@pytest.mark.slow
def test_hierarchical_nuts_matches_quadrature_in_mcse_units(rng):
    n, p = 60, 4
    X = rng.standard_normal((n, p))
    y = 0.5 + X @ rng.standard_normal(p) + rng.standard_normal(n)
    exact = hyperposterior(X, y)
    idata = sample_nuts(
        compile_nuts(hierarchical_linear_regression(X, y, noncentered=False)),
        seed=11,
        draws=1000,
        tune=1000,
    )
    assert int(idata["sample_stats"]["diverging"].values.sum()) == 0
    log_alpha = np.log(idata["posterior"]["ridge_alpha"].values)
    probs = [0.05, 0.5, 0.95]
    z = quantile_z_scores(log_alpha, np.log(exact.alpha_quantile(probs)), probs)
    assert z.max() < 4.0  # 4 MCSE: fails by chance about once in 15,000 runs per quantile
    z = mean_z_scores(posterior_coefficients(idata), exact.coef_mean)
    assert z.max() < 4.5  # 5 coefficients at 4.5 MCSE each: a false alarm about once in 30,000


def test_criteria_path_loo_mse_is_refitting_and_evidence_is_log_evidence(rng):
    n, p = 30, 4
    X = rng.standard_normal((n, p))
    y = 1.0 + X @ rng.standard_normal(p) + 0.7 * rng.standard_normal(n)
    alphas = np.logspace(-2, 2, 5)
    table = criteria_path(X, y, alphas, noise_sigma=0.7)
    np.testing.assert_array_equal(table.alpha, alphas)
    for row in table.itertuples():
        refit = cross_val_predict(Ridge(alpha=row.alpha), X, y, cv=LeaveOneOut())
        # Rank-one downdates against n refits: the same residuals up to rounding.
        np.testing.assert_allclose(row.exact_loo_mse, np.mean((y - refit) ** 2), rtol=1e-10)
        known = log_evidence(X, y, ridge_alpha=row.alpha, noise_sigma=0.7)
        np.testing.assert_allclose(row.log_evidence_known, known, rtol=1e-12)  # the same formula
        unknown = log_evidence(X, y, ridge_alpha=row.alpha)
        np.testing.assert_allclose(row.log_evidence_unknown, unknown, rtol=1e-12)  # as above


@pytest.fixture(scope="module")
def diabetes_bayesian_ridge(diabetes):
    return bayesian_ridge_gap(diabetes.X, diabetes.y).set_index("quantity")


def test_bayesian_ridge_coef_is_ridge_at_its_alpha_and_sits_at_the_evidence_maximum(
    diabetes_bayesian_ridge,
):
    table = diabetes_bayesian_ridge
    assert table.coef_rel_err_vs_ridge["bayesianridge"] <= 1e-10  # the same SVD solve
    # Run to convergence, BayesianRidge lands on the maximum of its own objective (n rows, Gamma
    # hyperpriors), found here independently by Nelder-Mead.
    # As in the test above (Nelder-Mead against sklearn's tol=1e-14): measured 2.7e-7.
    np.testing.assert_allclose(
        table.alpha["bayesianridge_converged"], table.alpha["sklearn_objective_max"], rtol=1e-6
    )
    # Its objective counts n rows where the twin's evidence has n - 1; that, not the hyperpriors, is
    # the gap to the evidence maximum, and it is far below the grid spacing (0.05 decades).
    gap = table.log10_alpha_minus_evidence_max
    # Measured: the hyperpriors move it by 1.2e-7 decades, n vs n - 1 by 1.1e-3.
    assert abs(gap["sklearn_objective_max"] - gap["sklearn_objective_max_flat"]) < 1e-5
    assert 1e-4 < abs(gap["sklearn_objective_max_flat"]) < 0.01


def test_bayesian_ridge_gap_decades_add_up_to_the_total_gap(diabetes_bayesian_ridge):
    gaps = bayesian_ridge_gap_decades(diabetes_bayesian_ridge)
    parts = gaps["tolerance"] + gaps["hyperpriors"] + gaps["n_vs_n_minus_1"]
    # The four steps from BayesianRidge to the evidence maximum telescope; the one not among the parts
    # is converged vs its objective's maximum, whose size is reported. Rounding of four logs: 1e-12.
    np.testing.assert_allclose(
        abs(gaps["total"] - parts), gaps["converged_vs_objective_max"], atol=1e-12
    )
    # Measured: 1.1e-3 decades against 1.2e-7: a factor ~9,000, so 100 leaves a wide margin.
    assert abs(gaps["n_vs_n_minus_1"]) > 100 * (abs(gaps["tolerance"]) + abs(gaps["hyperpriors"]))


def test_nuts_against_quadrature_measures_quantiles_and_means_in_mcse_units(rng):
    # Independent draws of log alpha ~ N(0, 1) and coefficients ~ N(mean, 1), against that law on a grid.
    log_alpha = np.linspace(-8.0, 8.0, 4001)
    density, cdf = scipy.stats.norm.pdf(log_alpha), scipy.stats.norm.cdf(log_alpha)
    mean = np.array([1.0, -2.0, 0.5])
    exact = Hyperposterior(log_alpha, density, cdf, mean, log_alpha, density)
    coef = mean + rng.standard_normal((2, 2000, 3))
    dims = ("chain", "draw")
    posterior = xr.Dataset(
        {
            "ridge_alpha": (dims, np.exp(rng.standard_normal((2, 2000)))),
            "intercept": (dims, coef[..., 0]),
            "beta": ((*dims, "feature"), coef[..., 1:]),
        }
    )
    row = nuts_against_quadrature({"posterior": posterior}, exact)
    levels = ("q05", "q50", "q95")
    assert list(row) == [f"alpha_{q}_{k}" for q in levels for k in ("nuts", "exact", "z")] + [
        "coef_mean_z_max"
    ]
    # Linear interpolation of the inverse CDF on a grid of step 0.004: off by about 1e-5 in log alpha.
    expected = np.exp(scipy.stats.norm.ppf([0.05, 0.5, 0.95]))
    np.testing.assert_allclose([row[f"alpha_{q}_exact"] for q in levels], expected, rtol=1e-4)
    # The same law: |z| beyond 4.5 comes about once in 150,000 per quantity.
    assert max(row[f"alpha_{q}_z"] for q in levels) < 4.5
    assert row["coef_mean_z_max"] < 4.5  # 3 means: a false alarm about once in 50,000
    # Half a unit off, the exact answer is 15-30 MCSE away (MCSE about 0.02-0.03 at 4,000 draws).
    shifted = exact._replace(log_alpha=log_alpha + 0.5, coef_mean=mean + 0.5)
    row = nuts_against_quadrature({"posterior": posterior}, shifted)
    # Measured 18-24 (quantiles) and 32 (means): 10 keeps far from both the bound and these values.
    assert min(row[f"alpha_{q}_z"] for q in levels) > 10.0
    assert row["coef_mean_z_max"] > 10.0


@pytest.mark.slow
def test_psis_loo_of_nuts_fits_is_near_the_exact_loo(rng):
    n, p = 40, 3
    X = rng.standard_normal((n, p))
    y = 0.5 + X @ rng.standard_normal(p) + rng.standard_normal(n)
    compiled = compile_nuts(linear_regression(X, y, ridge_alpha=1.0))
    table = psis_loo_against_exact(compiled, X, y, [0.1, 10.0], [3, 4], draws=500, tune=500)
    np.testing.assert_array_equal(table.alpha, [0.1, 10.0])
    exact = [exact_loo(X, y, ridge_alpha=a).elpd_i.sum() for a in (0.1, 10.0)]
    np.testing.assert_allclose(table.elpd_exact, exact, rtol=1e-12)  # the closed form, unchanged
    # PSIS on 2 x 500 draws was off the exact elpd by 0.17 nats RMS in choosing_lambda; 1 nat is ~6 RMS.
    assert (table.elpd_psis - table.elpd_exact).abs().max() < 1.0
    assert (table.pareto_k_max < table.good_k).all()  # a well-specified model and no outliers


@pytest.mark.slow
def test_find_map_collapses_tau_on_the_centered_hierarchical_model(diabetes):
    table = hierarchical_find_map(diabetes.X, diabetes.y, (1.0,)).set_index("parametrization")
    assert table.tau["centered"] < 1e-4  # the posterior's 90% interval of tau is about 200-500
    # Measured: tau 1.7e-8 and |beta| 2e-17 when centered (collapsed), tau 1,372 non-centered (kept).
    assert table.beta_norm["centered"] < 1e-6
    assert table.tau["noncentered"] > 100.0
