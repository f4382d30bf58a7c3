"""A batch is ranked from thresholds on spend, not by ranking its stores again: the batch's
customers and the ones a threshold crossed get their tiers, nobody else is read. Random batches
(ties, zero totals, purchases outside the window, back-dated ones, files registered first) must
leave every tier, and every staged tier change, as a full recomputation from the purchases
gives them, batch after batch."""

import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores import service
from scoring_service.scores.aggregates import PurchaseSeen
from scoring_service.scores.tiers import INACTIVE, PROSPECT, tier_for

TOTALS = ["0.00", "5.00", "10.00", "10.00", "20.00", "35.50", "100.00", "250.00"]


def expected_tiers(
    bought: dict[str, list[PurchaseSeen]], store_of: dict[str, str], since: datetime
) -> dict[str, str]:
    """DOMAIN §3 from every purchase so far: per store, p = greater / positive spenders."""
    spend = {
        c: sum((p.total for p in ps if p.purchased_at > since), Decimal(0))
        for c, ps in bought.items()
    }
    by_store: dict[str, list[Decimal]] = defaultdict(list)
    for c, s in spend.items():
        if s > 0:
            by_store[store_of[c]].append(s)
    tiers = {c: PROSPECT for c in store_of}
    for c, s in spend.items():
        if s <= 0:
            tiers[c] = INACTIVE
        else:
            others = by_store[store_of[c]]
            tiers[c] = tier_for(sum(1 for o in others if o > s), len(others))
    return tiers


async def stored_tiers(session: AsyncSession, stores: list[str]) -> dict[str, str]:
    rows = await session.execute(
        text("SELECT customer_id, value_tier FROM customer_score WHERE store_id = ANY(:s)"),
        {"s": stores},
    )
    return {c: t for c, t in rows.all()}


async def test_random_batches_rank_as_a_full_recomputation(session: AsyncSession) -> None:
    rng = random.Random(20)
    tag = uuid.uuid4().hex[:6]
    stores = [f"inc-{tag}-s{n}" for n in range(3)]
    # Stores of very different sizes: 0.01 of a few spenders is nobody, of hundreds a few.
    customers = [
        (f"inc-{tag}-c{n}", stores[0] if n < 250 else stores[1] if n < 290 else stores[2])
        for n in range(300)
    ]
    store_of = dict(customers)
    now, since = service.window_start(None)
    today = now.replace(hour=12, minute=0, second=0, microsecond=0)
    bought: dict[str, list[PurchaseSeen]] = defaultdict(list)
    registered: set[str] = set()
    before = expected_tiers(bought, {}, since)
    made = 0
    for round_ in range(14):
        prospects = [
            (c, s, "UTC")
            for c, s in rng.sample(customers, 10)
            if c not in registered and c not in bought
        ]
        batch = []
        for customer, store in rng.sample(customers, rng.randint(1, 120)):
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                made += 1
                last = max((p.purchased_at for p in bought[customer]), default=None)
                if last is not None and rng.random() < 0.15:  # back-dated: before the last one
                    at = last - timedelta(days=rng.randint(1, 30))
                else:
                    at = today - timedelta(days=rng.choice([rng.randint(1, 360), 400, 700]))
                batch.append(
                    PurchaseSeen(
                        f"{customer}-{made}",
                        store,
                        customer,
                        at,
                        at.date(),
                        "UTC",
                        Decimal(rng.choice(TOTALS)),
                        30,
                    )
                )
        changes = await service.score_batch(session, prospects=prospects, purchases=batch)
        registered.update(c for c, _, _ in prospects)
        for p in batch:
            bought[p.customer_id].append(p)
        known = {c: store_of[c] for c in registered | set(bought)}
        after = expected_tiers(bought, known, since)

        assert await stored_tiers(session, stores) == after, f"round {round_}"
        # A registration stages nothing (a file without a score is a prospect); a purchase in
        # the batch moves the prospect on.
        registered_first = before | {c: PROSPECT for c, _, _ in prospects}
        moved = sorted(
            [
                (c, registered_first.get(c), t)
                for c, t in after.items()
                if registered_first.get(c) != t
            ],
            key=str,
        )
        staged = [(c.customer_id, c.previous_tier, c.value_tier) for c in changes]
        assert sorted(staged, key=str) == moved, f"round {round_}"
        # Ranking the stores whole finds nothing left to move.
        db = await driver_connection(session)
        assert await service._rerank(db, stores, now=now) == [], f"round {round_}"
        before = after
    staged = await session.execute(
        text("SELECT count(*) FROM outbox_event WHERE key LIKE :k"), {"k": f"inc-{tag}-%"}
    )
    assert staged.scalar_one() > 300
