"""The consumption values without a model: each rule of the next product or category and of
the capability at its edges (pure), the stores' transitions computed from stored facts and the
lines kept by both ways facts are written (real, migrated PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events import consumer
from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import EventEnvelope
from scoring_service.scores import next_purchase
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.consumed import ConsumedEvent, decode_event
from scoring_service.scores.handlers import make_batch_handler
from scoring_service.scores.next_purchase import (
    Bought,
    NextProduct,
    Product,
    StoreChoices,
    capability,
    choose,
)

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def bought(day: int, *lines: tuple[str, str | None], purchase_id: str | None = None) -> Bought:
    return Bought(
        T0 + timedelta(days=day),
        purchase_id or f"p{day}",
        tuple(s for s, _ in lines),
        tuple(c for _, c in lines),
    )


FISH = ("fish-oil", "oils")
KRILL = ("krill-oil", "oils")
CALCIUM = ("calcium", "minerals")
STORE = StoreChoices(
    successor=Product("calcium", "minerals"),
    most_common=Product("zinc", "minerals"),
    most_common_first=Product("starter", "kits"),
)


def test_own_rebuy_comes_first_and_the_most_recently_bought_wins() -> None:
    history = [bought(0, FISH), bought(10, CALCIUM), bought(20, FISH), bought(30, CALCIUM)]
    assert choose(history, STORE) == NextProduct("calcium", "minerals", "rebuy")
    # Bought twice in one purchase is once: not a rebuy; the store's successor then.
    once = [bought(0, FISH, FISH)]
    assert choose(once, STORE) == NextProduct("calcium", "minerals", "successor")
    # Last bought together: the one bought more often, then by sku.
    together = [bought(0, KRILL), bought(5, FISH), bought(9, KRILL), bought(20, FISH, KRILL)]
    assert choose(together, STORE).sku == "krill-oil"
    tied = [bought(0, KRILL, FISH), bought(20, FISH, KRILL)]
    assert choose(tied, STORE).sku == "fish-oil"
    # Two purchases at one time: the later id is the later purchase, as the aggregates fold.
    same_time = [
        bought(0, FISH, purchase_id="a"),
        bought(0, KRILL, purchase_id="b"),
        bought(3, FISH, KRILL, purchase_id="c"),
        bought(3, KRILL, purchase_id="d"),
    ]
    assert choose(same_time, STORE).sku == "krill-oil"


def test_then_the_stores_successor_then_its_most_common_then_the_category() -> None:
    history = [bought(0, FISH), bought(10, KRILL)]
    assert choose(history, STORE).basis == "successor"
    no_successor = STORE._replace(successor=None)
    assert choose(history, no_successor) == NextProduct("zinc", "minerals", "store")
    # A prospect: the store's most common first purchase, else its most common next one.
    assert choose([], no_successor) == NextProduct("starter", "kits", "store")
    assert choose([], StoreChoices(most_common=Product("zinc", None))).sku == "zinc"
    # Nothing in the store: the category of the last purchase with lines.
    assert choose(history, StoreChoices()) == NextProduct(None, "oils", "category")
    without_lines = Bought(T0 + timedelta(days=40), "p40", (), ())
    assert choose([*history, without_lines], StoreChoices()).category == "oils"
    assert choose([bought(0, ("x", None))], StoreChoices()) == next_purchase.UNKNOWN
    assert choose([], StoreChoices()) == next_purchase.UNKNOWN


def test_capability_edges() -> None:
    history = [bought(0, FISH), bought(10, KRILL)]

    def of(product: NextProduct, *, count: int = 2, referred: bool = False) -> str:
        return capability(
            bought=history if count else [],
            purchase_count=count,
            referred=referred,
            next_product=product,
        )

    starter = NextProduct("starter", "kits", "store")
    assert of(starter, count=0) == "initial"
    assert of(starter, count=0, referred=True) == "referral"
    assert of(NextProduct("fish-oil", "oils", "rebuy")) == "repeat"
    # A new product of a line already bought is the same line: repeat; a new line: compound.
    assert of(NextProduct("cod-oil", "oils", "successor")) == "repeat"
    assert of(NextProduct("calcium", "minerals", "store")) == "compound"
    assert of(NextProduct("mystery", None, "store")) == "compound"
    assert of(NextProduct(None, "oils", "category")) == "repeat"
    assert of(next_purchase.UNKNOWN) == "repeat"
    # Referred, but bought already: the kind comes from what is bought next.
    assert of(NextProduct("calcium", "minerals", "store"), referred=True) == "compound"


def _purchase(customer: str, store: str, day: int, *lines: tuple[str, str, int]) -> ConsumedEvent:
    at = T0 + timedelta(days=day)
    return ConsumedEvent(
        event_id=f"e-{customer}-{day}",
        purchase=PurchaseSeen(
            f"p-{customer}-{day}",
            store,
            customer,
            at,
            at.date(),
            "Asia/Shanghai",
            Decimal("100.00"),
            30,
            tuple(s for s, _, _ in lines),
            tuple(c for _, c, _ in lines),
            tuple(q for _, _, q in lines),
        ),
    )


async def test_lines_are_stored_and_the_stores_transitions_computed(
    session: AsyncSession,
) -> None:
    handle = make_batch_handler(as_of=None)
    store = "np-s"
    # a: fish -> calcium -> fish; b: fish -> calcium; c: fish, krill (one purchase) -> zinc;
    # d: a fact of a purchase decoded without lines (neither counted nor counted after).
    # Applied as the consumer applies a first delivery: the facts' binary COPY.
    session.info[consumer._FIRST_DELIVERY] = True
    await handle(
        session,
        [
            _purchase("np-a", store, 0, ("fish", "oils", 2)),
            _purchase("np-a", store, 30, ("calcium", "minerals", 1)),
            _purchase("np-a", store, 60, ("fish", "oils", 1)),
            _purchase("np-b", store, 1, ("fish", "oils", 1)),
            _purchase("np-b", store, 31, ("calcium", "minerals", 3)),
            _purchase("np-c", store, 2, ("fish", "oils", 1), ("krill", "oils", 1)),
            _purchase("np-c", store, 40, ("zinc", None, 1)),
            _purchase("np-d", store, 3),
            _purchase("np-d", store, 50, ("zinc", None, 1)),
        ],
    )
    del session.info[consumer._FIRST_DELIVERY]
    # The other way in (a batch delivered again: INSERT from arrays) keeps lines too, quotes
    # and all.
    await handle(session, [_purchase("np-e", store, 5, ('odd "sku", {1}', "a\\b", 4))])
    lines = await session.execute(
        text(
            "SELECT purchase_id, line_skus, line_categories, line_quantities FROM purchase_fact "
            "WHERE purchase_id IN ('p-np-c-2', 'p-np-e-5', 'p-np-d-3') ORDER BY purchase_id"
        )
    )
    assert lines.all() == [
        ("p-np-c-2", ["fish", "krill"], ["oils", "oils"], [1, 1]),
        ("p-np-d-3", [], [], []),
        ("p-np-e-5", ['odd "sku", {1}'], ["a\\b"], [4]),
    ]
    db = await driver_connection(session)
    now = datetime.now(UTC)
    await next_purchase.refresh_transitions(db, store_id=store, now=now)
    pairs = await session.execute(
        text(
            "SELECT after_sku, sku, category, customers FROM product_transition "
            "WHERE store_id = :s ORDER BY after_sku, sku"
        ),
        {"s": store},
    )
    assert pairs.all() == [
        ("", "fish", "oils", 3),
        ("", "krill", "oils", 1),
        ("", 'odd "sku", {1}', "a\\b", 1),
        ("calcium", "fish", "oils", 1),
        ("fish", "calcium", "minerals", 2),
        ("fish", "zinc", None, 1),
        ("krill", "zinc", None, 1),
    ]
    # Computed again from nothing: the same rows, not more.
    assert await next_purchase.refresh_transitions(db, store_id=store, now=now) == 7

    # b's own history has no rebuy; its last product is calcium, whose successor is fish.
    b = await next_purchase.bought_by(db, customer_id="np-b")
    choices = await next_purchase.store_choices(db, store_id=store, bought=b)
    assert choices == StoreChoices(
        successor=Product("fish", "oils"),
        most_common=Product("calcium", "minerals"),
        most_common_first=Product("fish", "oils"),
    )
    assert choose(b, choices) == NextProduct("fish", "oils", "successor")
    a = await next_purchase.bought_by(db, customer_id="np-a")
    assert choose(a, choices) == NextProduct("fish", "oils", "rebuy")
    # A wholly refunded purchase is no purchase: a's second fish oil taken back, no rebuy.
    await session.execute(
        text("UPDATE purchase_fact SET wholly_refunded = true WHERE purchase_id = 'p-np-a-60'")
    )
    a = await next_purchase.bought_by(db, customer_id="np-a")
    assert [b.purchase_id for b in a] == ["p-np-a-0", "p-np-a-30"]
    assert choose(a, choices).basis == "successor"
    await next_purchase.refresh_transitions(db, store_id=store, now=now)
    after_calcium = await session.execute(
        text("SELECT count(*) FROM product_transition WHERE after_sku = 'calcium'")
    )
    assert after_calcium.scalar_one() == 0


def test_purchase_lines_and_member_events_decode() -> None:
    def raw(type_: str, payload: dict[str, object], customer: str = "c1") -> bytes:
        return EventEnvelope(
            type=type_, store_id="s1", customer_id=customer, payload=payload
        ).to_bytes()

    line = {"sku": "A1", "category": "oils", "qty": 2, "unit_price": "1.00", "amount": "2.00"}
    purchase = {
        "purchase_id": "p1",
        "purchased_at": "2026-05-01T10:00:00+08:00",
        "purchased_on": "2026-05-01",
        "timezone": "Asia/Shanghai",
        "total": "3.00",
        "lines": [
            {**line, "days_per_unit": 10},
            {**line, "sku": "B2", "category": None, "qty": 1, "days_per_unit": 5},
            {"qty": 1, "days_per_unit": 7},  # no sku: its supply counts, it is not kept
        ],
    }
    seen = decode_event(raw("purchase.recorded", purchase)).purchase
    assert seen is not None
    assert (seen.skus, seen.categories, seen.quantities, seen.supply_days) == (
        ("A1", "B2"),
        ("oils", None),
        (2, 1),
        32,
    )
    # The lenient way (a total as a number) keeps the same lines.
    lenient = decode_event(raw("purchase.recorded", {**purchase, "total": 3})).purchase
    assert lenient is not None and lenient.skus == ("A1", "B2") and lenient.categories[1] is None

    at = "2026-06-01T19:00:00+08:00"
    scheduled = decode_event(
        raw("event.scheduled", {"event_id": "ev1", "starts_at": at, "title": "联谊会"}, "ev1")
    ).scheduled
    assert scheduled is not None
    assert scheduled[:4] == ("ev1", "s1", datetime.fromisoformat(at), "联谊会")
    cancelled = decode_event(raw("event.cancelled", {"event_id": "ev1"}, "ev1")).cancelled
    assert cancelled is not None and cancelled[:2] == ("ev1", "s1")
    for bad in ({"starts_at": at}, {"event_id": "ev1"}, {"event_id": "ev1", "starts_at": "soon"}):
        try:
            decode_event(raw("event.scheduled", bad))
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")
