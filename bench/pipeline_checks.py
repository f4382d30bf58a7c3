"""The pipeline benchmark's checks: each customer's value tier and lifecycle in scoring against
their recomputation from the raw CDNOW file, and how they are printed."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import NamedTuple

import asyncpg
import cdnow

AS_OF = date(1998, 6, 30)  # the last day of the CDNOW data: tiers as at the end of the log
TIER_ORDER = ("vip", "major", "medium", "small", "inactive")
LIFECYCLE_ORDER = (
    "lost",
    "stopped",
    "new_this_year",
    "active_core",
    "active_second_line",
    "in_service_not_bought",
)


class Check(NamedTuple):
    """One column of ``customer_score`` against its recomputation from the raw file."""

    mismatches: int
    actual: Counter[str]
    expected: Counter[str]
    examples: list[str]


async def verify(
    conn: asyncpg.Connection, column: str, expected: dict[str, tuple[str, str]]
) -> Check:
    """Every customer's (store, ``column``) in scoring against ``expected``."""
    actual = {
        r["customer_id"]: (r["store_id"], r[column])
        for r in await conn.fetch(
            f"SELECT customer_id, store_id, {column} FROM customer_score"  # noqa: S608
        )
    }
    mismatches = 0
    examples: list[str] = []
    for customer in sorted(set(expected) | set(actual)):
        want, got = expected.get(customer), actual.get(customer)
        if want != got:
            mismatches += 1
            if len(examples) < 5:
                examples.append(f"{customer}: expected {want}, scoring has {got}")
    actual_dist = Counter(value or "None" for _, value in actual.values())
    return Check(mismatches, actual_dist, cdnow.distribution(expected), examples)


async def verify_tiers(conn: asyncpg.Connection, rows: list[cdnow.CdnowRow]) -> Check:
    return await verify(conn, "value_tier", cdnow.expected_tiers(rows, AS_OF))


async def verify_lifecycles(conn: asyncpg.Connection, rows: list[cdnow.CdnowRow]) -> Check:
    return await verify(conn, "lifecycle", cdnow.expected_lifecycles(rows, AS_OF))


def format_distribution(counts: Counter[str], order: tuple[str, ...] = TIER_ORDER) -> str:
    total = sum(counts.values()) or 1
    keys = [k for k in order if k in counts] + sorted(set(counts) - set(order))
    return ", ".join(f"{k} {counts[k]:,} ({counts[k] / total:.1%})" for k in keys)


def print_lifecycles(check: Check, *, indent: str = "") -> None:
    print(f"{indent}lifecycles as of {AS_OF} (UTC): {check.mismatches} mismatches")
    for example in check.examples:
        print(f"{indent}    {example}")
    print(f"{indent}    scoring:  {format_distribution(check.actual, LIFECYCLE_ORDER)}")
    if check.expected != check.actual:
        print(f"{indent}    expected: {format_distribution(check.expected, LIFECYCLE_ORDER)}")
