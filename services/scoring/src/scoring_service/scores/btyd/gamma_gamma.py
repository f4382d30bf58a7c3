"""Gamma-Gamma model of order value (Fader, Hardie and Lee 2005, "RFM and CLV"; Fader and
Hardie, "The Gamma-Gamma Model of Monetary Value", 2013).

A customer's orders are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers (``v`` here is γ):
the mean order value of a customer with x repeat orders averaging m̄ is, conditionally,
(γ + m̄ x) p / (p x + q - 1) — a weighted mean of the population's p γ/(q - 1) and their own m̄.
Fitted on the repeat customers only (x > 0, m̄ > 0), as the model is of repeat orders.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
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


@dataclass(frozen=True)
class _Prepared:
    """The repeat customers' (x, m̄) as the optimiser reads them, computed once per fit: the
    logarithms that do not depend on the parameters, and each distinct x once for the special
    functions of p x (a few dozen values however many customers)."""

    x: FloatArray
    mx: FloatArray  # m̄ x: the customer's repeat spend
    log_m: FloatArray
    log_x: FloatArray
    x_values: FloatArray
    x_index: npt.NDArray[np.intp]

    @classmethod
    def of(cls, summary: Summary) -> "_Prepared":
        x, m = _eligible(summary)
        x_values, x_index = np.unique(x, return_inverse=True)
        return cls(x, m * x, np.log(m), np.log(x), x_values, x_index)


def _negative_mean_and_gradient(
    log_params: FloatArray, data: _Prepared
) -> tuple[float, FloatArray]:
    """-(mean log-likelihood) and its gradient in the log-parameters."""
    params = np.exp(log_params)
    p, q, v = params
    px_values = p * data.x_values
    i = data.x_index
    x = data.x
    px = p * x
    log_v_mx = np.log(v + data.mx)
    ll = (
        (gammaln(px_values + q) - gammaln(px_values))[i]
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * data.log_m
        + px * data.log_x
        - (px + q) * log_v_mx
    )
    psi_pq = digamma(px_values + q)[i]
    d_p = x * (psi_pq - digamma(px_values)[i] + data.log_m + data.log_x - log_v_mx)
    d_q = psi_pq - digamma(q) + np.log(v) - log_v_mx
    d_v = q / v - (px + q) / (v + data.mx)
    gradient = np.array([d_p.mean(), d_q.mean(), d_v.mean()]) * params
    return -float(ll.mean()), -gradient


def fit(summary: Summary) -> GammaGamma:
    """Maximum-likelihood (p, q, v) on the repeat customers of ``summary``."""
    data = _Prepared.of(summary)
    if len(data.x) == 0:
        raise FitFailed("no customer has a repeat purchase with a positive value")
    # q > 1 for a finite mean: start at q = 2, p = 1, and v so that p v/(q-1) is the sample's
    # mean order value (v is a scale in money). BFGS on the log-parameters as in bgnbd.fit.
    start = np.log([1.0, 2.0, float(np.exp(data.log_m).mean())])
    result = minimize(
        _negative_mean_and_gradient,
        start,
        args=(data,),
        jac=True,
        method="BFGS",
        options={"maxiter": 1000, "gtol": 1e-9},
    )
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise FitFailed(f"Gamma-Gamma did not converge: {result.message}")
    params = np.exp(result.x)
    p, q, v = (float(value) for value in params)
    x, m = _eligible(summary)
    total = float(log_likelihood(params, x, m).sum())
    return GammaGamma(p=p, q=q, v=v, log_likelihood=total)


def expected_order_value(model: GammaGamma, summary: Summary) -> FloatArray:
    """E[M | x, m̄]: each customer's expected value of an order (the population's mean for a
    customer with no repeat order, whose first order the model does not use)."""
    x = summary.frequency
    m = np.where(x > 0, summary.monetary, 0.0)
    return np.asarray((model.v + m * x) * model.p / (model.p * x + model.q - 1), dtype=np.float64)
