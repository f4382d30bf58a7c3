"""The analysis's share of a consumed batch: what the events carry beyond the purchase facts,
written in one statement per table for the whole batch (arrays unnested), apart from the
scoring pipeline's statements and their store locks: each row is its own event's, keyed by it.

- a purchase: its serving staff and its lines with their amounts;
- a refund: its lines, amounts negative, under the refund's id;
- a customer file event: the address's district, when the file is newer than the one held;
- a visit: when it was, its method and whether the customer was reached (``reached`` absent in
  an event published before it was carried: not kept, as nobody can tell).
"""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import asyncpg


class LineSeen(NamedTuple):
    source_id: str  # the purchase's id, or the refund's
    line_no: int
    purchase_id: str
    sku: str | None
    category: str | None
    amount: Decimal  # negative for a refund's line


class SaleSeen(NamedTuple):
    """A purchase's staff (``staff_id`` None for a refund) and its lines."""

    purchase_id: str
    staff_id: str | None
    lines: tuple[LineSeen, ...]
    refund: bool = False


class DistrictSeen(NamedTuple):
    customer_id: str
    store_id: str
    district: str | None
    version: int


class ContactSeen(NamedTuple):
    visit_id: str
    store_id: str
    customer_id: str
    occurred_at: datetime
    method: str
    reached: bool


_STAFF_SQL = """
    INSERT INTO analysis_sale_staff (purchase_id, staff_id)
    SELECT * FROM unnest($1::text[], $2::text[])
    ON CONFLICT (purchase_id) DO NOTHING
"""
_LINES_SQL = """
    INSERT INTO analysis_sale_line (source_id, line_no, purchase_id, sku, category, amount)
    SELECT * FROM unnest($1::text[], $2::smallint[], $3::text[], $4::text[], $5::text[],
                         $6::numeric[])
    ON CONFLICT (source_id, line_no) DO NOTHING
"""
# The newest file wins: an older event (a replay, a redelivery) changes nothing.
_DISTRICT_SQL = """
    INSERT INTO analysis_customer_district (customer_id, store_id, district, version)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[])
    ON CONFLICT (customer_id) DO UPDATE
    SET store_id = excluded.store_id, district = excluded.district, version = excluded.version
    WHERE analysis_customer_district.version < excluded.version
"""
_CONTACTS_SQL = """
    INSERT INTO analysis_contact (visit_id, store_id, customer_id, occurred_at, method, reached)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                         $6::boolean[])
    ON CONFLICT (visit_id) DO NOTHING
"""


async def store_seen(
    db: asyncpg.Connection,
    *,
    sales: Sequence[SaleSeen],
    districts: Sequence[DistrictSeen],
    contacts: Sequence[ContactSeen],
) -> None:
    """Write a batch's sales, refunds' lines, districts and contacts."""
    purchases = [s for s in sales if not s.refund]
    if purchases:
        await db.execute(
            _STAFF_SQL, [s.purchase_id for s in purchases], [s.staff_id for s in purchases]
        )
    lines = [line for s in sales for line in s.lines]
    if lines:
        await db.execute(_LINES_SQL, *(list(column) for column in zip(*lines, strict=True)))
    if districts:
        # One row per customer in a statement (ON CONFLICT cannot touch a row twice): the newest.
        newest: dict[str, DistrictSeen] = {}
        for d in districts:
            if d.customer_id not in newest or newest[d.customer_id].version < d.version:
                newest[d.customer_id] = d
        await db.execute(
            _DISTRICT_SQL, *(list(column) for column in zip(*newest.values(), strict=True))
        )
    if contacts:
        await db.execute(_CONTACTS_SQL, *(list(column) for column in zip(*contacts, strict=True)))
