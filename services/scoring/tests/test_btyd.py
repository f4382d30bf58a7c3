"""The buy-till-you-die maths: validated on CDNOW against the published fits, and on customers
simulated from the models themselves (parameters recovered, holdout purchases predicted)."""

from datetime import date

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from bench import cdnow_files
from bench.cdnow_files import CALIBRATION_END
from scoring_service.scores.btyd import bgnbd, clv, gamma_gamma
from scoring_service.scores.btyd.summary import Summary, summarise


def sig(value: float, figures: int = 3) -> float:
    return float(f"{value:.{figures - 1}e}")


def cdnow_calibration_summary() -> Summary:
    frequency, recency, age = cdnow_files.calibration_summary()
    return Summary.of(frequency=frequency, recency=recency, age=age)


def test_bgnbd_reproduces_fader_hardie_lee_2005_on_the_cdnow_calibration_summary() -> None:
    fitted = bgnbd.fit(cdnow_calibration_summary())
    assert (sig(fitted.r), sig(fitted.alpha), sig(fitted.a), sig(fitted.b)) == (
        sig(0.243),
        sig(4.414),
        sig(0.793),
        sig(2.426),
    )
    assert round(fitted.log_likelihood, 1) == -9582.4  # the paper's LL


def test_the_papers_worked_customer() -> None:
    """FHL (2005): a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make 1.226
    purchases in the next 39 weeks."""
    fitted = bgnbd.fit(cdnow_calibration_summary())
    one = Summary.of(frequency=[2], recency=[30.43], age=[38.86])
    assert round(float(bgnbd.expected_purchases(fitted, one, 39.0)[0]), 3) == 1.226


def test_the_sample_summarised_from_its_transactions_is_the_published_summary() -> None:
    customers, days, dollars = cdnow_files.sample_transactions()
    mine = summarise(
        customers=customers, days=days, amounts=dollars, calibration_end=CALIBRATION_END
    )
    published = cdnow_calibration_summary()
    # Summaries come out in customer id order, as the published file's rows are.
    assert len(mine) == len(published) == 2357
    assert np.array_equal(mine.frequency, published.frequency)
    # The published file rounds to two decimals.
    assert np.abs(mine.recency - published.recency).max() < 0.005
    assert np.abs(mine.age - published.age).max() < 0.005


def test_gamma_gamma_reproduces_the_published_fit_on_the_cdnow_samples_repeat_customers() -> None:
    customers, days, dollars = cdnow_files.sample_transactions()
    summary = summarise(
        customers=customers, days=days, amounts=dollars, calibration_end=CALIBRATION_END
    )
    assert summary.repeat_customers == 946
    fitted = gamma_gamma.fit(summary)
    assert (sig(fitted.p), sig(fitted.q), sig(fitted.v)) == (6.25, 3.74, 15.4)
    assert round(fitted.v, 2) == 15.44


def test_summary_conventions() -> None:
    summary = summarise(
        customers=["a", "a", "a", "a", "b", "c", "c"],
        days=[
            "2024-01-01",
            "2024-01-01",  # the same day: one purchase, amounts summed
            "2024-01-15",
            "2024-02-01",  # after the calibration end: not read
            "2024-01-10",
            "2024-01-03",
            "2024-01-17",
        ],
        amounts=[10.0, 5.0, 30.0, 99.0, 20.0, 7.0, 9.0],
        calibration_end=date(2024, 1, 29),
        time_unit="day",
    )
    # Customers come out in id order: a, b, c.
    assert summary.frequency.tolist() == [1, 0, 1]
    assert summary.recency.tolist() == [14, 0, 14]
    assert summary.age.tolist() == [28, 19, 26]
    # The repeat days' mean spend, the first day left out.
    assert summary.monetary.tolist() == [30.0, 0.0, 9.0]
    weeks = summarise(
        customers=["a"], days=["2024-01-01"], amounts=[1.0], calibration_end=date(2024, 1, 15)
    )
    assert weeks.age.tolist() == [2.0]


@pytest.mark.parametrize("at", [(0.24, 4.4, 0.79, 2.4), (1.5, 20.0, 3.0, 0.6)])
def test_bgnbd_gradient_is_the_likelihoods(at: tuple[float, ...]) -> None:
    summary = cdnow_calibration_summary()
    data = bgnbd._Prepared.of(summary)
    point = np.log(np.array(at))
    value, exact = bgnbd._negative_mean_and_gradient(point, data)
    # The optimiser's objective is the textbook likelihood, however it is computed.
    assert value == pytest.approx(-bgnbd.log_likelihood(np.array(at), summary).mean(), rel=1e-12)
    numeric = approx_fprime(point, lambda u: bgnbd._negative_mean_and_gradient(u, data)[0], 1e-7)
    assert np.allclose(exact, numeric, rtol=1e-4, atol=1e-6)


def test_gamma_gamma_gradient_is_the_likelihoods() -> None:
    customers, days, dollars = cdnow_files.sample_transactions()
    summary = summarise(
        customers=customers, days=days, amounts=dollars, calibration_end=CALIBRATION_END
    )
    data = gamma_gamma._Prepared.of(summary)
    at = np.array([3.0, 2.5, 20.0])
    value, exact = gamma_gamma._negative_mean_and_gradient(np.log(at), data)
    x, m = gamma_gamma._eligible(summary)
    assert value == pytest.approx(-gamma_gamma.log_likelihood(at, x, m).mean(), rel=1e-12)
    numeric = approx_fprime(
        np.log(at), lambda u: gamma_gamma._negative_mean_and_gradient(u, data)[0], 1e-7
    )
    assert np.allclose(exact, numeric, rtol=1e-4, atol=1e-6)


def simulate(
    *, r: float, alpha: float, a: float, b: float, customers: int, holdout: float, seed: int
) -> tuple[Summary, np.ndarray, np.ndarray]:
    """Customers who behave exactly as BG/NBD says: the calibration summary, each one's
    purchases in the ``holdout`` after it, and whether each was alive at the calibration end."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1.0 / alpha, customers)
    drop = rng.beta(a, b, customers)
    age = rng.uniform(13.0, 39.0, customers)  # first purchases spread over a quarter
    now = np.zeros(customers)
    alive = np.ones(customers, dtype=bool)
    alive_at_end = np.ones(customers, dtype=bool)
    frequency = np.zeros(customers)
    recency = np.zeros(customers)
    later = np.zeros(customers)
    while alive.any():
        now = np.where(alive, now + rng.exponential(1.0 / rate), now)
        alive &= now <= age + holdout
        in_calibration = alive & (now <= age)
        frequency += in_calibration
        recency = np.where(in_calibration, now, recency)
        later += alive & (now > age)
        # A customer may drop out after each repeat purchase (none after the first).
        dropped = alive & (rng.random(customers) < drop)
        alive_at_end &= ~(dropped & (now <= age))
        alive &= ~dropped
    summary = Summary.of(frequency=frequency, recency=recency, age=age)
    return summary, later, alive_at_end


def test_a_fit_recovers_the_parameters_customers_were_simulated_with() -> None:
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 3.0}
    summary, _, _ = simulate(**truth, customers=40_000, holdout=39.0, seed=7)
    fitted = bgnbd.fit(summary)
    for name, value in truth.items():
        assert getattr(fitted, name) == pytest.approx(value, rel=0.12), name


def test_holdout_purchases_and_p_alive_match_what_simulated_customers_did() -> None:
    truth = bgnbd.BgNbd(r=0.5, alpha=6.0, a=0.9, b=3.0, log_likelihood=0.0)
    summary, later, alive = simulate(
        r=0.5, alpha=6.0, a=0.9, b=3.0, customers=40_000, holdout=39.0, seed=11
    )
    predicted = bgnbd.expected_purchases(truth, summary, 39.0)
    assert predicted.sum() == pytest.approx(later.sum(), rel=0.03)
    # Per group of history too: the repeat customers' and the one-time buyers'.
    repeat = summary.frequency > 0
    assert predicted[repeat].sum() == pytest.approx(later[repeat].sum(), rel=0.04)
    assert predicted[~repeat].sum() == pytest.approx(later[~repeat].sum(), rel=0.08)
    p_alive = bgnbd.p_alive(truth, summary)
    assert p_alive[repeat].mean() == pytest.approx(alive[repeat].mean(), abs=0.01)
    assert np.all(p_alive[~repeat] == 1.0)


def test_gamma_gamma_recovers_simulated_spending() -> None:
    rng = np.random.default_rng(3)
    p, q, v = 6.0, 4.0, 15.0
    customers = 20_000
    x = rng.integers(1, 8, customers).astype(np.float64)
    nu = rng.gamma(q, 1.0 / v, customers)
    # The mean of x orders each Gamma(p, nu) is Gamma(p x, nu x).
    means = rng.gamma(p * x, 1.0 / (nu * x))
    summary = Summary.of(frequency=x, recency=x, age=x + 1, monetary=means)
    fitted = gamma_gamma.fit(summary)
    assert (fitted.p, fitted.q, fitted.v) == pytest.approx((p, q, v), rel=0.1)
    expected = gamma_gamma.expected_order_value(fitted, summary)
    # Conditional expectations average out to what the customers' orders are worth: p / nu.
    assert expected.mean() == pytest.approx(np.mean(p / nu), rel=0.02)


def test_a_fit_in_days_predicts_what_the_fit_in_weeks_does() -> None:
    customers, days, dollars = cdnow_files.sample_transactions()
    by = {
        unit: summarise(
            customers=customers,
            days=days,
            amounts=dollars,
            calibration_end=CALIBRATION_END,
            time_unit=unit,
        )
        for unit in ("week", "day")
    }
    weekly, daily = bgnbd.fit(by["week"]), bgnbd.fit(by["day"])
    assert daily.alpha == pytest.approx(7 * weekly.alpha, rel=1e-4)
    assert (daily.r, daily.a, daily.b) == pytest.approx((weekly.r, weekly.a, weekly.b), rel=1e-4)
    assert np.allclose(
        bgnbd.expected_purchases(daily, by["day"], 90.0),
        bgnbd.expected_purchases(weekly, by["week"], 90.0 / 7),
        rtol=1e-4,
    )


def test_clv_is_the_discounted_monthly_purchases_times_the_order_value() -> None:
    customers, days, dollars = cdnow_files.sample_transactions()
    summary = summarise(
        customers=customers, days=days, amounts=dollars, calibration_end=CALIBRATION_END
    )
    purchases, spending = bgnbd.fit(summary), gamma_gamma.fit(summary)
    value = gamma_gamma.expected_order_value(spending, summary)
    year = bgnbd.expected_purchases(purchases, summary, 365.25 / 7)
    undiscounted = clv.lifetime_value(
        purchases, spending, summary, time_unit="week", monthly_discount_rate=0.0
    )
    assert np.allclose(undiscounted, year * value)
    discounted = clv.lifetime_value(
        purchases, spending, summary, time_unit="week", monthly_discount_rate=0.01
    )
    assert np.all(discounted < undiscounted)
    # Month by month: the first month's purchases discounted once, the twelfth's twelve times.
    assert np.all(discounted > undiscounted / 1.01**12)


def test_a_customer_who_never_came_back_is_expected_to_spend_the_populations_mean() -> None:
    spending = gamma_gamma.GammaGamma(p=6.25, q=3.74, v=15.44, log_likelihood=0.0)
    once = Summary.of(frequency=[0], recency=[0], age=[10], monetary=[0])
    expected = gamma_gamma.expected_order_value(spending, once)
    assert expected[0] == pytest.approx(6.25 * 15.44 / 2.74)


def test_no_repeat_customer_is_refused() -> None:
    nobody = Summary.of(frequency=[0, 0], recency=[0, 0], age=[3, 4])
    with pytest.raises(bgnbd.FitFailed):
        bgnbd.fit(nobody)
