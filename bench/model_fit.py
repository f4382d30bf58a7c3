"""The buy-till-you-die fits on all of CDNOW (23,570 customers) against the ``lifetimes`` package
fitting the same summary in the same run: seconds, the ratio, and whether the parameters agree
to three significant figures.

    uv run python bench/model_fit.py [--runs 7] [--whole-period] [--against lifetimes|textbook]

``lifetimes`` (0.11.3, 2020) is not a dependency of the project: it runs in a virtual
environment of its own (``--lifetimes-venv``, made with uv on first use), in a child process
given the same summary. Should it no longer install, the comparison is against a plain
``scipy.optimize`` fit of the textbook likelihoods written per customer in Python
(``--against textbook`` forces it).

The calibration period is FHL's 39 weeks (1997-01-01 to 1997-09-30), as a store's fit has a
calibration end; ``--whole-period`` fits all 78 weeks instead. Times are the median of
``--runs`` fits; each side's summary of the transactions is timed too, apart from the fits.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
UV = REPO_ROOT / ".tools" / "bin" / "uv"
DEFAULT_VENV = Path(tempfile.gettempdir()) / "crm-bench-lifetimes"
FIGURES = 3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(runs: int, work: Any) -> tuple[float, Any]:
    """The median wall time of ``runs`` calls of ``work`` and its last result."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def sig(value: float) -> str:
    return f"{value:.{FIGURES - 1}e}"


# -- lifetimes, in its own interpreter ------------------------------------------------------


def lifetimes_worker(arrays: Path, runs: int, calibration_end: str) -> None:
    """Child process: fit with lifetimes and print the times and parameters as JSON."""
    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    loaded = np.load(arrays, allow_pickle=False)
    transactions = pd.DataFrame(
        {
            "customer": loaded["customers"],
            "day": pd.to_datetime(loaded["days"]),
            "amount": loaded["amounts"],
        }
    )

    def summary() -> Any:
        # Days, as the service summarises (a day's purchases once), then weeks: freq="W" would
        # round recency and T to whole weeks, which is not FHL's summary.
        s = summary_data_from_transaction_data(
            transactions,
            "customer",
            "day",
            monetary_value_col="amount",
            observation_period_end=calibration_end,
            freq="D",
        )
        s["recency"] /= 7.0
        s["T"] /= 7.0
        return s

    summary_seconds, s = timed(runs, summary)
    # The fits get the very arrays the service's fit gets, so only the fitting is compared.
    frequency, recency, age, monetary = (
        loaded["frequency"],
        loaded["recency"],
        loaded["age"],
        loaded["monetary"],
    )

    def bgnbd() -> Any:
        return BetaGeoFitter().fit(frequency, recency, age)

    def gamma_gamma() -> Any:
        keep = (frequency > 0) & (monetary > 0)
        return GammaGammaFitter().fit(frequency[keep], monetary[keep])

    bgnbd_seconds, bg = timed(runs, bgnbd)
    gamma_gamma_seconds, gg = timed(runs, gamma_gamma)
    print(
        json.dumps(
            {
                "summary_seconds": summary_seconds,
                "summary_customers": len(s),
                "bgnbd_seconds": bgnbd_seconds,
                "gamma_gamma_seconds": gamma_gamma_seconds,
                "bgnbd": {k: float(bg.params_[k]) for k in ("r", "alpha", "a", "b")},
                "gamma_gamma": {k: float(gg.params_[k]) for k in ("p", "q", "v")},
            }
        )
    )


def lifetimes_python(venv: Path) -> Path | None:
    """The interpreter of a virtual environment with lifetimes, made if missing; None if it
    cannot be installed."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import lifetimes, pandas"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log(f"installing lifetimes into {venv}")
    made = subprocess.run([str(UV), "venv", "-q", "--python", "3.11", str(venv)])
    installed = made.returncode == 0 and (
        subprocess.run(
            [str(UV), "pip", "install", "-q", "--python", str(python), "lifetimes"]
        ).returncode
        == 0
    )
    if installed and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log("lifetimes does not install here: comparing against the textbook fit instead")
    return None


# -- the textbook fit: the published likelihoods, one customer at a time -------------------


def textbook_fits(frequency: Any, recency: Any, age: Any, monetary: Any) -> dict[str, Any]:
    """FHL (2005) eq. 6 and the Gamma-Gamma density written per customer with ``math``,
    maximised by Nelder-Mead on the log-parameters from scipy."""
    from scipy.optimize import minimize

    rows = list(zip(frequency.tolist(), recency.tolist(), age.tolist(), strict=True))

    def bgnbd_negative(log_params: Any) -> float:
        r, alpha, a, b = (math.exp(v) for v in log_params)
        total = 0.0
        for x, t_x, t in rows:
            a1 = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
            a2 = math.lgamma(a + b) + math.lgamma(b + x) - math.lgamma(b) - math.lgamma(a + b + x)
            a3 = -(r + x) * math.log(alpha + t)
            if x > 0:
                a4 = math.log(a) - math.log(b + x - 1) - (r + x) * math.log(alpha + t_x)
                high = max(a3, a4)
                total += a1 + a2 + high + math.log(math.exp(a3 - high) + math.exp(a4 - high))
            else:
                total += a1 + a2 + a3
        return -total

    spenders = [
        (x, m)
        for x, m in zip(frequency.tolist(), monetary.tolist(), strict=True)
        if x > 0 and m > 0
    ]

    def gamma_gamma_negative(log_params: Any) -> float:
        p, q, v = (math.exp(value) for value in log_params)
        total = 0.0
        for x, m in spenders:
            total += (
                math.lgamma(p * x + q)
                - math.lgamma(p * x)
                - math.lgamma(q)
                + q * math.log(v)
                + (p * x - 1) * math.log(m)
                + p * x * math.log(x)
                - (p * x + q) * math.log(v + m * x)
            )
        return -total

    options = {"xatol": 1e-7, "fatol": 1e-7, "maxiter": 5000}
    started = time.perf_counter()
    bg = minimize(bgnbd_negative, [0.0, 0.0, 0.0, 0.0], method="Nelder-Mead", options=options)
    bgnbd_seconds = time.perf_counter() - started
    started = time.perf_counter()
    gg = minimize(gamma_gamma_negative, [0.0, 0.0, 0.0], method="Nelder-Mead", options=options)
    gamma_gamma_seconds = time.perf_counter() - started
    return {
        "bgnbd_seconds": bgnbd_seconds,
        "gamma_gamma_seconds": gamma_gamma_seconds,
        "bgnbd": dict(zip(("r", "alpha", "a", "b"), (math.exp(v) for v in bg.x), strict=True)),
        "gamma_gamma": dict(zip(("p", "q", "v"), (math.exp(v) for v in gg.x), strict=True)),
    }


# -- the run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--whole-period", action="store_true")
    parser.add_argument("--against", choices=("lifetimes", "textbook"), default="lifetimes")
    parser.add_argument("--lifetimes-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--lifetimes-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--calibration-end", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lifetimes_worker:
        lifetimes_worker(args.lifetimes_worker, args.runs, args.calibration_end)
        return

    import numpy as np

    sys.path.insert(0, str(REPO_ROOT))
    from bench.cdnow_files import CALIBRATION_END, HOLDOUT_END, master_transactions
    from scoring_service.scores.btyd import bgnbd, gamma_gamma
    from scoring_service.scores.btyd.summary import summarise

    calibration_end = HOLDOUT_END if args.whole_period else CALIBRATION_END
    customers, days, amounts = master_transactions()
    log(f"CDNOW: {len(customers):,} purchases, calibration to {calibration_end}")

    def ours_summary() -> Any:
        return summarise(
            customers=customers, days=days, amounts=amounts, calibration_end=calibration_end
        )

    summary_seconds, summary = timed(args.runs, ours_summary)
    bgnbd_seconds, bg = timed(args.runs, lambda: bgnbd.fit(summary))
    gamma_gamma_seconds, gg = timed(args.runs, lambda: gamma_gamma.fit(summary))
    ours = {
        "summary_seconds": summary_seconds,
        "bgnbd_seconds": bgnbd_seconds,
        "gamma_gamma_seconds": gamma_gamma_seconds,
        "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b},
        "gamma_gamma": {"p": gg.p, "q": gg.q, "v": gg.v},
    }
    log(f"ours: {len(summary):,} customers, {summary.repeat_customers:,} came back")

    python = lifetimes_python(args.lifetimes_venv) if args.against == "lifetimes" else None
    if python is not None:
        with tempfile.TemporaryDirectory() as scratch:
            arrays = Path(scratch) / "cdnow.npz"
            np.savez(
                arrays,
                customers=np.asarray(customers),
                days=np.asarray(days),
                amounts=np.asarray(amounts),
                frequency=summary.frequency,
                recency=summary.recency,
                age=summary.age,
                monetary=summary.monetary,
            )
            child = subprocess.run(
                [str(python), __file__, "--lifetimes-worker", str(arrays), "--runs",
                 str(args.runs), "--calibration-end", str(calibration_end)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        other, other_name = json.loads(child.stdout), "lifetimes 0.11.3"
        if other["summary_customers"] != len(summary):
            raise SystemExit("lifetimes summarised another number of customers")
    else:
        log("textbook fit: Nelder-Mead over a per-customer Python likelihood (a minute or two)")
        other = textbook_fits(summary.frequency, summary.recency, summary.age, summary.monetary)
        other_name = "textbook"

    print(f"model fit on all of CDNOW: {len(summary):,} customers, "
          f"{summary.repeat_customers:,} with a repeat purchase, calibration to {calibration_end}, "
          f"median of {args.runs} runs")  # fmt: skip
    print(f"{'parameter':<10} {'ours':>14} {other_name:>24}  same to {FIGURES} s.f.")
    agree = True
    for model in ("bgnbd", "gamma_gamma"):
        for name, value in ours[model].items():
            theirs = other[model][name]
            same = sig(value) == sig(theirs)
            agree &= same
            print(f"{name:<10} {value:>14.6f} {theirs:>24.6f}  {'yes' if same else 'NO'}")
    print(f"{'seconds':<22} {'ours':>10} {'other':>10} {'other/ours':>11}")
    rows = [("BG/NBD fit", "bgnbd_seconds"), ("Gamma-Gamma fit", "gamma_gamma_seconds")]
    if "summary_seconds" in other:
        rows.append(("summary of purchases", "summary_seconds"))
    for label, key in rows:
        print(
            f"{label:<22} {ours[key]:>10.4f} {other[key]:>10.4f} {other[key] / ours[key]:>10.1f}x"
        )
    both = ours["bgnbd_seconds"] + ours["gamma_gamma_seconds"]
    theirs_both = other["bgnbd_seconds"] + other["gamma_gamma_seconds"]
    print(f"{'both fits':<22} {both:>10.4f} {theirs_both:>10.4f} {theirs_both / both:>10.1f}x")
    print(f"parameters agree to {FIGURES} significant figures: {'yes' if agree else 'NO'}")
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
