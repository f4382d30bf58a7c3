"""Three of the four consumption values (DOMAIN.md §3): which product or category next, when,
and as what kind of purchase. (The fourth, the expected value, is the fitted model's:
scores/predictions.py.)

**Next product or category**, the first rule that gives one:

1. ``rebuy``: the customer's own habit: a product they bought in two or more purchases; of
   several, the one bought most recently (then the one bought most often, then by sku).
2. ``successor``: the product the store's customers most often bought right after one of the
   products of this customer's last purchase (its most common successor, which may be itself;
   several products: their customers summed).
3. ``store``: the store's most common next purchase: the product most customers bought right
   after another purchase (summed over what they bought before). For a file with no purchase
   yet, the store's most common first purchase, else that.
4. ``category``: no product known: the category of the customer's last purchase.

The store's figures come from ``product_transition`` ("after X, this many customers bought Y
next"), computed for a whole store in one statement from its customers' facts by the daily
ageing and by a recompute (:func:`refresh_transitions`), never per request. A score read
costs two small statements: the customer's own lines and the store's candidates.

**Expected date** (``next_purchase_on``): the supply run-out date, or the store's member event
before it: scores/expected_dates.py's, kept with the score; the event to invite to is
scores/member_events.py's.

**Capability**, the expected kind of the next purchase (DOMAIN.md §2's purchase kinds):
``referral`` for a referred file with no purchase yet; ``initial`` for any other prospect;
``repeat`` when the next product is one the customer bought before, or is a new product of a
category they bought (the same product line); ``compound`` when it is of a category they never
bought (a new product line). A customer whose next product and category are both unknown
(facts stored before lines were kept, an empty store) is expected to repeat.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, NamedTuple

import asyncpg

Basis = Literal["rebuy", "successor", "store", "category"]
Capability = Literal["initial", "repeat", "compound", "referral"]
# product_transition.after_sku of a first purchase (nothing bought before).
FIRST_PURCHASE = ""


class Bought(NamedTuple):
    """One of the customer's purchases: its time and id (their order) and its lines."""

    purchased_at: datetime
    purchase_id: str
    skus: Sequence[str]
    categories: Sequence[str | None]


class Product(NamedTuple):
    sku: str
    category: str | None


class StoreChoices(NamedTuple):
    """The store's candidates (``product_transition``): the most common successor of the
    customer's last products, the most common next purchase, the most common first one."""

    successor: Product | None = None
    most_common: Product | None = None
    most_common_first: Product | None = None


class NextProduct(NamedTuple):
    sku: str | None
    category: str | None
    basis: Basis | None


UNKNOWN = NextProduct(None, None, None)


def rebought(bought: Sequence[Bought]) -> Product | None:
    """Rule 1: the product bought in two or more purchases, the most recently bought such."""
    seen: dict[str, tuple[int, tuple[datetime, str], str | None]] = {}
    for purchase in bought:
        at = (purchase.purchased_at, purchase.purchase_id)
        for sku, category in set(zip(purchase.skus, purchase.categories, strict=True)):
            times, last, _ = seen.get(sku, (0, at, None))
            seen[sku] = (times + 1, max(last, at), category)
    repeated = sorted((sku, times, last, c) for sku, (times, last, c) in seen.items() if times >= 2)
    if not repeated:
        return None
    # Most recent first, then most often; equal ones by sku ascending (the stable sort keeps
    # the order above), so every read agrees.
    repeated.sort(key=lambda r: (r[2], r[1]), reverse=True)
    return Product(repeated[0][0], repeated[0][3])


def last_purchase(bought: Sequence[Bought]) -> Bought | None:
    """The customer's last purchase that has lines (facts before lines were kept have none)."""
    with_lines = [b for b in bought if b.skus]
    return max(with_lines, key=lambda b: (b.purchased_at, b.purchase_id), default=None)


def choose(bought: Sequence[Bought], store: StoreChoices) -> NextProduct:
    """The next product or category by the module's rules, first that applies."""
    own = rebought(bought)
    if own is not None:
        return NextProduct(own.sku, own.category, "rebuy")
    if store.successor is not None:
        return NextProduct(store.successor.sku, store.successor.category, "successor")
    popular = store.most_common if bought else (store.most_common_first or store.most_common)
    if popular is not None:
        return NextProduct(popular.sku, popular.category, "store")
    last = last_purchase(bought)
    if last is not None:
        category = next((c for c in last.categories if c is not None), None)
        if category is not None:
            return NextProduct(None, category, "category")
    return UNKNOWN


def capability(
    *, bought: Sequence[Bought], purchase_count: int, referred: bool, next_product: NextProduct
) -> Capability:
    """The expected kind of the next purchase, by the module's rules."""
    if purchase_count <= 0:
        return "referral" if referred else "initial"
    if next_product.sku is not None and any(next_product.sku in b.skus for b in bought):
        return "repeat"
    if next_product.sku is None and next_product.category is None:
        return "repeat"
    if any(next_product.category in b.categories for b in bought):
        return "repeat"
    return "compound"


# The store's figures, all of them again: after X (each product of a purchase) the customers
# who bought Y (each product of their next purchase), counted once per customer; a first
# purchase counts after ''. One window over the store's customers' facts in date order (as
# the aggregates fold them); a fact without lines (stored before they were kept) counts for
# nothing, and neither does the purchase after it (unnest of its empty array: no pair); a wholly
# refunded purchase is left out as if never made.
# $1 store, $2 now.
_CLEAR_SQL = "DELETE FROM product_transition WHERE store_id = $1"
_REFRESH_SQL = f"""
    WITH bought AS (
        SELECT f.customer_id, f.line_skus, f.line_categories,
               lag(f.line_skus) OVER w AS before_skus
        FROM purchase_fact AS f
        WHERE f.customer_id IN (SELECT customer_id FROM customer_score WHERE store_id = $1)
          AND NOT f.wholly_refunded
        WINDOW w AS (PARTITION BY f.customer_id
                     ORDER BY f.purchased_at, f.purchase_id COLLATE "C")
    ), pairs AS (
        SELECT b.customer_id, a.after_sku, l.sku, l.category
        FROM bought AS b
        CROSS JOIN LATERAL unnest(b.line_skus, b.line_categories) AS l(sku, category)
        CROSS JOIN LATERAL unnest(COALESCE(b.before_skus, ARRAY['{FIRST_PURCHASE}']))
            AS a(after_sku)
    )
    INSERT INTO product_transition (store_id, after_sku, sku, category, customers, computed_at)
    SELECT $1, after_sku, sku, max(category), count(DISTINCT customer_id), $2
    FROM pairs
    GROUP BY after_sku, sku
"""  # noqa: S608 (only the first purchase's constant is interpolated)

# The customer's purchases with their lines, in date order; a wholly refunded one is no
# purchase (scores/refund_facts.py).
_BOUGHT_SQL = """
    SELECT purchased_at, purchase_id, line_skus, line_categories FROM purchase_fact
    WHERE customer_id = $1 AND NOT wholly_refunded
    ORDER BY purchased_at, purchase_id COLLATE "C"
"""

# The store's three candidates; ties by sku, so every read agrees. $1 store, $2 the products
# of the customer's last purchase.
_CANDIDATES_SQL = f"""
    (SELECT 'successor', sku, max(category), sum(customers) AS n FROM product_transition
     WHERE store_id = $1 AND after_sku = ANY($2::text[])
     GROUP BY sku ORDER BY n DESC, sku LIMIT 1)
    UNION ALL
    (SELECT 'most_common', sku, max(category), sum(customers) AS n FROM product_transition
     WHERE store_id = $1 AND after_sku <> '{FIRST_PURCHASE}'
     GROUP BY sku ORDER BY n DESC, sku LIMIT 1)
    UNION ALL
    (SELECT 'most_common_first', sku, max(category), sum(customers) AS n
     FROM product_transition
     WHERE store_id = $1 AND after_sku = '{FIRST_PURCHASE}'
     GROUP BY sku ORDER BY n DESC, sku LIMIT 1)
"""  # noqa: S608 (only the first purchase's constant is interpolated)


async def refresh_transitions(db: asyncpg.Connection, *, store_id: str, now: datetime) -> int:
    """Compute the store's product transitions again from its customers' facts; returns how
    many (after, next) pairs it holds. The caller holds the store's lock."""
    # Two statements: a data-modifying CTE's DELETE is not seen by the INSERT beside it.
    await db.execute(_CLEAR_SQL, store_id)
    status = await db.execute(_REFRESH_SQL, store_id, now)
    return int(status.rsplit(" ", 1)[-1])


async def bought_by(db: asyncpg.Connection, *, customer_id: str) -> list[Bought]:
    """The customer's purchases with their lines, in date order."""
    return [Bought(*row) for row in await db.fetch(_BOUGHT_SQL, customer_id)]


async def store_choices(
    db: asyncpg.Connection, *, store_id: str, bought: Sequence[Bought]
) -> StoreChoices:
    """The store's candidates for a customer who bought ``bought``."""
    last = last_purchase(bought)
    rows = await db.fetch(_CANDIDATES_SQL, store_id, list(last.skus) if last else [])
    found = {row[0]: Product(row[1], row[2]) for row in rows}
    return StoreChoices(**found)
