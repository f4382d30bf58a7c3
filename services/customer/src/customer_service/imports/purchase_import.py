"""An old till's purchase history written as ordinary purchases, a chunk at a time.

The purchase path's rules (purchases/service.py): the customer is a file of the store (by its
id, or the phone's keyed hash), each product is in the catalogue, the quantity is at least one;
the line's amount is what was paid. Each row becomes a purchase of one line with its
``purchase.recorded`` event (built by purchases/events.py), so scoring sees the history; a
prospect's first purchase makes it ``bought``, as a sale at the counter does. Contraindication
warnings are not checked: they guard a sale about to be made, and these were made years ago.

Rows are written in the order they happened (the sheet's rows sorted by time, then by row):
one customer's purchases reach scoring oldest first, whatever order the till exported them in.

Each imported purchase earns points as a sale at the counter does, in the chunk's transaction
(membership/imported.py): as of its own day, expiring on that day plus the store's expiry
months, so history older than that earns points that are expired at once (an ``earn`` row and
its ``expire`` row in the ledger, both naming the purchase: the balance and the points that will
expire next are right when the chunk commits, not after the nightly job). The level follows the
12-month spend the history makes, one ``customer.level_changed`` per customer and chunk at most.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from crm_libs.events.envelope import Topics
from crm_libs.ids import new_id
from crm_libs.problems import InvalidField
from customer_service.customers.phones import normalise_phone, phone_lookup_hash
from customer_service.imports.file_phones import ACTIVE, files_with_phones
from customer_service.imports.jobs import Progress
from customer_service.imports.purchase_rows import PurchaseCandidate
from customer_service.imports.rows import RowError
from customer_service.membership.imported import PastSale, earn_for_history
from customer_service.money import to_cents
from customer_service.purchases import events
from customer_service.purchases.service import Sale, SaleLine

KIND = "purchases"

_CUSTOMERS_BY_ID = """
    SELECT id, coalesce(merged_into, id) AS buyer FROM customer
    WHERE store_id = $1 AND id = ANY($2::text[])
"""
_CATALOGUE = """
    SELECT sku, id, category, days_per_unit FROM product WHERE sku = ANY($1::text[])
"""


async def buyers(
    conn: Any, *, store_id: str, phone_hash_key: str, candidates: Sequence[PurchaseCandidate]
) -> dict[int, str | RowError]:
    """Each row's customer (by row number), or why it has none."""
    found: dict[int, str | RowError] = {}
    ids = list({c.customer_id for c in candidates if c.customer_id})
    by_id: dict[str, str] = {}
    if ids:
        by_id = {r["id"]: r["buyer"] for r in await conn.fetch(_CUSTOMERS_BY_ID, store_id, ids)}
    digest_of: dict[int, str] = {}
    for c in candidates:
        if c.customer_id:
            continue
        if c.phone:
            try:
                e164 = normalise_phone(c.phone, field="phone")
            except InvalidField as exc:
                found[c.row] = RowError(c.row, "phone", (exc.errors or [{}])[0].get("message", ""))
                continue
            digest_of[c.row] = phone_lookup_hash(e164, key=phone_hash_key)
    by_digest: dict[str, list[str]] = {}
    if digest_of:
        files = await files_with_phones(
            conn, store_id=store_id, digests=list(set(digest_of.values())), statuses=ACTIVE
        )
        for file_id, hashes in files:
            for digest in hashes:
                by_digest.setdefault(digest, []).append(file_id)
    for c in candidates:
        if c.row in found:
            continue
        if c.customer_id:
            found[c.row] = by_id.get(c.customer_id) or RowError(
                c.row, "customer_id", "no customer of the store has this id"
            )
        elif c.row in digest_of:
            owners = by_digest.get(digest_of[c.row], [])
            found[c.row] = (
                owners[0]
                if len(owners) == 1
                else RowError(
                    c.row,
                    "phone",
                    "no customer file of the store has this phone: import the customers first"
                    if not owners
                    else f"{len(owners)} customer files of the store have this phone: give the "
                    "customer_id",
                )
            )
        else:
            found[c.row] = RowError(
                c.row,
                "external_id",
                "customers are not kept by the old till's id: give the phone or customer_id",
            )
    return found


async def catalogue(conn: Any, *, skus: Sequence[str]) -> dict[str, Any]:
    return {r["sku"]: r for r in await conn.fetch(_CATALOGUE, list(set(skus)))}


def sales_of(
    candidates: Sequence[PurchaseCandidate],
    *,
    store_id: str,
    timezone: str,
    buyers: Mapping[int, str | RowError],
    products: Mapping[str, Any],
) -> tuple[list[tuple[PurchaseCandidate, Sale]], list[RowError]]:
    """The sales the rows record, or their errors."""
    sales: list[tuple[PurchaseCandidate, Sale]] = []
    errors: list[RowError] = []
    for c in candidates:
        buyer = buyers[c.row]
        product = products.get(c.sku)
        row_errors = [buyer] if isinstance(buyer, RowError) else []
        if product is None:
            row_errors.append(RowError(c.row, "sku", f"unknown product {c.sku!r}"))
        if row_errors or isinstance(buyer, RowError) or product is None:
            errors.extend(row_errors)
            continue
        amount = to_cents(c.amount)
        line = SaleLine(
            product_id=product["id"],
            sku=c.sku,
            category=product["category"],
            days_per_unit=product["days_per_unit"],
            qty=c.qty,
            unit_price=to_cents(amount / c.qty),
            amount=amount,
        )
        sale = Sale(
            id=new_id(),
            store_id=store_id,
            customer_id=buyer,
            staff_id=None,
            member_event_id=None,
            purchased_at=c.purchased_at.astimezone(UTC),
            total=amount,
            timezone=timezone,
            lines=[line],
        )
        sales.append((c, sale))
    return sales, errors


_CLAIM_FINGERPRINTS = """
    INSERT INTO import_fingerprint (store_id, kind, fingerprint, job_id, record_id)
    SELECT $1, $2, f, $3, r FROM unnest($4::text[], $5::text[]) AS t(f, r)
    ON CONFLICT DO NOTHING
    RETURNING fingerprint
"""
# The purchases, their lines, their events and the prospects they end, in one statement (as a
# sale at the counter is written). The chunk's ``purchase.recorded`` events are one batch row of
# the outbox (crm_libs.events.outbox.stage_batch's shape: the relay sends them one by one, each
# on its customer's partition, in the chunk's order), not a row each to write, claim and mark.
_INSERT_SALES = """
    WITH sales AS (
        INSERT INTO purchase (id, store_id, customer_id, purchased_at, total)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[])
    ), sale_lines AS (
        INSERT INTO purchase_line (purchase_id, product_id, sku, qty, unit_price, amount)
        SELECT * FROM unnest($1::text[], $6::text[], $7::text[], $8::int[], $9::numeric[],
                             $5::numeric[])
    ), prospects AS (
        UPDATE customer SET prospect_stage = 'bought', version = version + 1
        WHERE id = ANY($3::text[]) AND prospect_stage IS DISTINCT FROM 'bought'
    )
    INSERT INTO outbox_event (event_id, topic, key, keys, envelopes, events)
    VALUES (($11::text[])[1], $10, '', $3::text[], $12::text[], cardinality($3::text[]))
"""


async def write(
    conn: Any,
    *,
    sales: Sequence[tuple[PurchaseCandidate, Sale]],
    errors: Sequence[RowError],
    skipped: int,
    store_id: str,
    job_id: str,
) -> Progress:
    """Inside the chunk's transaction: the sales not imported before, with their events."""
    claimed: set[str] = set()
    if sales:
        claimed = {
            r["fingerprint"]
            for r in await conn.fetch(
                _CLAIM_FINGERPRINTS,
                store_id,
                KIND,
                job_id,
                [c.fingerprint for c, _ in sales],
                [s.id for _, s in sales],
            )
        }
    fresh = [s for c, s in sales if c.fingerprint in claimed]
    skipped += len(sales) - len(fresh)
    if fresh:
        recorded = [events.purchase_recorded(s) for s in fresh]
        await conn.execute(
            _INSERT_SALES,
            [s.id for s in fresh],
            [s.store_id for s in fresh],
            [s.customer_id for s in fresh],
            [s.purchased_at for s in fresh],
            [s.total for s in fresh],
            [s.lines[0].product_id for s in fresh],
            [s.lines[0].sku for s in fresh],
            [s.lines[0].qty for s in fresh],
            [s.lines[0].unit_price for s in fresh],
            Topics.PURCHASES,
            [str(e.event_id) for e in recorded],
            [e.to_bytes().decode() for e in recorded],
        )
        # After the purchases: the members' 12-month spend read next counts them.
        await earn_for_history(
            conn,
            store_id=store_id,
            timezone=fresh[0].timezone,
            sales=[PastSale(s.id, s.customer_id, s.total, s.purchased_at) for s in fresh],
        )
    return Progress(
        rows=0,
        created=len(fresh),
        skipped=skipped,
        errors=sorted(errors, key=lambda e: e.row),
    )
