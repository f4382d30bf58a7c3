"""BG/NBD (Fader, Hardie and Lee, "Counting Your Customers the Easy Way", 2005).

While alive a customer buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they drop
out with probability p ~ Beta(a, b). Fitted by maximum likelihood over the customers' summaries
(``summary.Summary``), with every formula an array expression over all customers at once.

The fit works on the logarithms of the four parameters (all positive) with L-BFGS-B and the
likelihood's exact gradient. The gradient is what lets it stop where the likelihood is flat to
machine precision: Nelder-Mead on the same function needs thousands of evaluations to agree on
the third significant figure of a and b, whose ridge is long and shallow.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from scoring_service.scores.btyd.summary import FloatArray, Summary


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float  # summed over the customers fitted


class FitFailed(RuntimeError):
    """The optimiser did not converge (too little or degenerate data)."""


def _terms(
    params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """FHL (2005) eq. 6 in logs: ll = A1 + A2 + log(exp(A3) + [x > 0] exp(A4))."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + age)
    repeat = x > 0
    # For x = 0 the second term is absent: -inf, and logaddexp then returns A3 exactly.
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            repeat,
            np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1, a2, a3, a4, np.logaddexp(a3, a4)


def log_likelihood(params: FloatArray, summary: Summary) -> FloatArray:
    """Each customer's log-likelihood under ``params`` = (r, α, a, b)."""
    a1, a2, _, _, mixed = _terms(params, summary.frequency, summary.recency, summary.age)
    return a1 + a2 + mixed


def _negative_mean_and_gradient(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
) -> tuple[float, FloatArray]:
    params = np.exp(log_params)
    r, alpha, a, b = params
    a1, a2, a3, a4, mixed = _terms(params, x, t_x, age)
    ll = a1 + a2 + mixed
    # Weight of the "dropped out after the last purchase" term in the mixture.
    w4 = np.exp(a4 - mixed)
    w3 = 1.0 - w4
    repeat = x > 0
    d_r = (
        digamma(r + x)
        - digamma(r)
        + np.log(alpha)
        - w3 * np.log(alpha + age)
        - w4 * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - w3 * (r + x) / (alpha + age) - w4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    with np.errstate(divide="ignore", invalid="ignore"):
        d_b_repeat = np.where(repeat, w4 / np.where(repeat, b + x - 1, 1.0), 0.0)
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - d_b_repeat
    gradient = np.array([d_r.mean(), d_alpha.mean(), d_a.mean(), d_b.mean()]) * params
    return -float(ll.mean()), -gradient


def fit(summary: Summary) -> BgNbd:
    """Maximum-likelihood (r, α, a, b) for the customers of ``summary``."""
    if summary.repeat_customers == 0:
        raise FitFailed("no customer has a repeat purchase")
    x, t_x, age = summary.frequency, summary.recency, summary.age
    # α is in the time unit (a scale); start it at the mean age, so the optimiser starts near
    # one purchase per lifetime whatever the unit, and the rest at one.
    start = np.log([1.0, max(float(age.mean()), 1e-3), 1.0, 1.0])
    result = minimize(
        _negative_mean_and_gradient,
        start,
        args=(x, t_x, age),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-20.0, 20.0)] * 4,
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise FitFailed(f"BG/NBD did not converge: {result.message}")
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    total = float(log_likelihood(np.exp(result.x), summary).sum())
    return BgNbd(r=r, alpha=alpha, a=a, b=b, log_likelihood=total)


def _drop_out_odds(model: BgNbd, x: FloatArray, t_x: FloatArray, age: FloatArray) -> FloatArray:
    """[x > 0] a/(b+x-1) ((α+T)/(α+t_x))^(r+x): the odds that the customer has dropped out."""
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = (
            np.log(model.a)
            - np.log(np.where(repeat, model.b + x - 1, 1.0))
            + (model.r + x) * (np.log(model.alpha + age) - np.log(model.alpha + t_x))
        )
        return np.where(repeat, np.exp(log_odds), 0.0)


def p_alive(model: BgNbd, summary: Summary) -> FloatArray:
    """P(alive | x, t_x, T): FHL (2005) eq. 11 (1 for a customer who never came back)."""
    return 1.0 / (1.0 + _drop_out_odds(model, summary.frequency, summary.recency, summary.age))


def expected_purchases(model: BgNbd, summary: Summary, t: float | FloatArray) -> FloatArray:
    """E[Y(t) | x, t_x, T]: purchases expected in the next ``t`` time units (FHL eq. 10)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    x, age = summary.frequency, summary.age
    t = np.asarray(t, dtype=np.float64)
    z = t / (alpha + age + t)
    hyper = hyp2f1(r + x, b + x, a + b + x - 1, z)
    ratio = ((alpha + age) / (alpha + age + t)) ** (r + x)
    numerator = (a + b + x - 1) / (a - 1) * (1.0 - ratio * hyper)
    return np.asarray(
        numerator / (1.0 + _drop_out_odds(model, x, summary.recency, age)), dtype=np.float64
    )


def expected_purchases_new(model: BgNbd, t: float | FloatArray) -> FloatArray:
    """E[X(t)]: purchases expected of a customer in their first ``t`` time units (FHL eq. 7)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    t = np.asarray(t, dtype=np.float64)
    hyper = hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return np.asarray(
        (a + b - 1) / (a - 1) * (1.0 - (alpha / (alpha + t)) ** r * hyper), dtype=np.float64
    )
