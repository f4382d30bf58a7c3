"""The CDNOW files of ``../shared/data/cdnow`` as the model fits read them (the validation tests
and ``bench/model_fit.py``): transactions as (customer, day, dollars) columns, and the published
39-week calibration summary of the 1/10 sample."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CDNOW_DIR = REPO_ROOT.parent / "shared" / "data" / "cdnow"
# Fader, Hardie and Lee (2005): 39 weeks of calibration (1997-01-01 to 1997-09-30 included),
# then 39 weeks of holdout.
CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)


def _iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"


def sample_transactions() -> tuple[list[int], list[str], list[float]]:
    """``CDNOW_sample.txt`` as (customer, ISO day, dollars) columns. Its columns are the master
    file's customer id, the sample's own id (the summary file's ``ID``, used here), the date, the
    CDs and the dollars."""
    customers, days, dollars = [], [], []
    for line in (CDNOW_DIR / "CDNOW_sample.txt").read_text().splitlines():
        fields = line.split()
        if fields:
            customers.append(int(fields[1]))
            days.append(_iso(fields[2]))
            dollars.append(float(fields[4]))
    return customers, days, dollars


def master_transactions() -> tuple[list[int], list[str], list[float]]:
    """``CDNOW_master.txt`` (23,570 customers) as (customer, ISO day, dollars) columns."""
    customers, days, dollars = [], [], []
    for line in (CDNOW_DIR / "CDNOW_master.txt").read_text().splitlines()[1:]:  # a header
        fields = line.split()
        if fields:
            customers.append(int(fields[0]))
            days.append(_iso(fields[1]))
            dollars.append(float(fields[3]))
    return customers, days, dollars


def calibration_summary() -> tuple[list[float], list[float], list[float]]:
    """``cdnow_customers_summary.csv``: the sample's (frequency, recency, T) in weeks."""
    with (CDNOW_DIR / "cdnow_customers_summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return (
        [float(r["frequency"]) for r in rows],
        [float(r["recency"]) for r in rows],
        [float(r["T"]) for r in rows],
    )
