"""Gamma-Gamma model of order value (Fader, Hardie and Lee 2005, "RFM and CLV"; Fader and
Hardie, "The Gamma-Gamma Model of Monetary Value", 2013).

A customer's orders are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers (``v`` here is γ):
the mean order value of a customer with x repeat orders averaging m̄ is, conditionally,
(γ + m̄ x) p / (p x + q - 1) — a weighted mean of the population's p γ/(q - 1) and their own m̄.
Fitted on the repeat customers only (x > 0, m̄ > 0), as the model is of repeat orders.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from scoring_service.scores.btyd.bgnbd import FitFailed
from scoring_service.scores.btyd.summary import FloatArray, Summary


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float

    @property
    def mean_order_value(self) -> float:
        """The population's mean order value p v / (q - 1) (infinite when q <= 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


def _eligible(summary: Summary) -> tuple[FloatArray, FloatArray]:
    keep = (summary.frequency > 0) & (summary.monetary > 0)
    return summary.frequency[keep], summary.monetary[keep]


def log_likelihood(params: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """Each repeat customer's log-density of their mean order value m̄ given x orders."""
    p, q, v = params
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + m * x)
    )


def _negative_mean_and_gradient(
    log_params: FloatArray, x: FloatArray, m: FloatArray
) -> tuple[float, FloatArray]:
    params = np.exp(log_params)
    p, q, v = params
    px = p * x
    log_vmx = np.log(v + m * x)
    ll = log_likelihood(params, x, m)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_vmx)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_vmx
    d_v = q / v - (px + q) / (v + m * x)
    gradient = np.array([d_p.mean(), d_q.mean(), d_v.mean()]) * params
    return -float(ll.mean()), -gradient


def fit(summary: Summary) -> GammaGamma:
    """Maximum-likelihood (p, q, v) on the repeat customers of ``summary``."""
    x, m = _eligible(summary)
    if len(x) == 0:
        raise FitFailed("no customer has a repeat purchase with a positive value")
    # q > 1 for a finite mean: start at q = 2, p = 1, and v so that p v/(q-1) is the sample's
    # mean order value (v is a scale in money).
    start = np.log([1.0, 2.0, float(m.mean())])
    result = minimize(
        _negative_mean_and_gradient,
        start,
        args=(x, m),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-20.0, 20.0), (-20.0, 20.0), (-30.0, 30.0)],
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise FitFailed(f"Gamma-Gamma did not converge: {result.message}")
    params = np.exp(result.x)
    p, q, v = (float(value) for value in params)
    total = float(log_likelihood(params, x, m).sum())
    return GammaGamma(p=p, q=q, v=v, log_likelihood=total)


def expected_order_value(model: GammaGamma, summary: Summary) -> FloatArray:
    """E[M | x, m̄]: each customer's expected value of an order (the population's mean for a
    customer with no repeat order, whose first order the model does not use)."""
    x = summary.frequency
    m = np.where(x > 0, summary.monetary, 0.0)
    return np.asarray(
        (model.v + m * x) * model.p / (model.p * x + model.q - 1), dtype=np.float64
    )
