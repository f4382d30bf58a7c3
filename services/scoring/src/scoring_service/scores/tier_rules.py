"""A store's tier rules (``GET/PUT /stores/{id}/tier-rules``): the value pyramid's shares, the
spend window and the lifecycle's thresholds, with DOMAIN.md §3's numbers as defaults.

Stored per store in ``store_tier_rules``; a store without a row uses the defaults. The
statements read the row themselves (tiers.bounds_sql for the pyramid, the spend window in
service.py's add, rebuild and window refresh, the lifecycle thresholds in classify.py): no
round trip per batch, and a batch locked after a change reads the new rules.

Not rules of a store: the ladder's 12-month windows and the three referred buyers, and loyalty's
three repeat purchases in 24 months. They are the membership standard's (会员维护标准) and
define what a level or ``loyal`` means across the chain, so a customer's ladder compares
between stores; the pyramid's shares, the window and the lifecycle's patience are commercial
choices that depend on a store's size and products.

A change takes the store's lock and is written with an audit entry; the store is then
recomputed with the new rules (recompute.recompute_store, publishing every resulting
``score.changed``) in a task of its own after the answer: a million-customer store recomputes
in about 20 s (bench/README.md), longer than a request should wait. Batches consumed meanwhile
already rank and classify with the new rules; if the service stops before the task ends, the
store's next daily ageing ranks and classifies it whole with them.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.driver import driver_connection
from crm_libs.principal import Principal
from crm_libs.problems import NotFound, ProblemError
from scoring_service.scores import recompute, service
from scoring_service.scores.thresholds import DEFAULT_THRESHOLDS
from scoring_service.scores.tiers import DEFAULT_BOUNDS, WINDOW_DAYS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TierRules:
    # Cumulative shares of the store's spenders: vip the top vip_share, major down to
    # major_share, medium down to medium_share (DOMAIN.md §3's p < bound).
    vip_share: Decimal = DEFAULT_BOUNDS[0]
    major_share: Decimal = DEFAULT_BOUNDS[1]
    medium_share: Decimal = DEFAULT_BOUNDS[2]
    window_days: int = WINDOW_DAYS
    lost_after_days: int = DEFAULT_THRESHOLDS.lost_after_days
    stopped_after_days: int = DEFAULT_THRESHOLDS.stopped_after_days


DEFAULT_RULES = TierRules()
SHARES = ("vip_share", "major_share", "medium_share")

_GET_SQL = """
    SELECT vip_share, major_share, medium_share, window_days, lost_after_days,
           stopped_after_days
    FROM store_tier_rules WHERE store_id = $1
"""
_KNOWN_SQL = "SELECT EXISTS (SELECT FROM customer_score WHERE store_id = $1)"
_PUT_SQL = """
    INSERT INTO store_tier_rules (store_id, vip_share, major_share, medium_share, window_days,
                                  lost_after_days, stopped_after_days, updated_by, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
    ON CONFLICT (store_id) DO UPDATE SET
        vip_share = excluded.vip_share, major_share = excluded.major_share,
        medium_share = excluded.medium_share, window_days = excluded.window_days,
        lost_after_days = excluded.lost_after_days,
        stopped_after_days = excluded.stopped_after_days,
        updated_by = excluded.updated_by, updated_at = excluded.updated_at
"""


def checked(rules: TierRules) -> TierRules:
    """422 naming each share that does not rise above the one before it (each is a bound on
    the share of spenders at that tier or above). Ranges and types are the schema's."""
    errors = [
        {"field": later, "message": f"must be greater than {earlier}"}
        for earlier, later in zip(SHARES, SHARES[1:], strict=False)
        if getattr(rules, later) <= getattr(rules, earlier)
    ]
    if errors:
        raise ProblemError(
            "The pyramid's shares must rise strictly: vip < major < medium",
            status=422,
            title="Invalid field value",
            errors=errors,
        )
    return rules


async def get_rules(session: AsyncSession, *, principal: Principal, store_id: str) -> TierRules:
    """The store's rules (the defaults where it set none); another store's is a 404."""
    principal.require_store(store_id, what="store")
    db = await driver_connection(session)
    row = await db.fetchrow(_GET_SQL, store_id)
    if row is None:
        if not await db.fetchval(_KNOWN_SQL, store_id):
            raise NotFound("Scoring holds no customer of this store")
        return DEFAULT_RULES
    return TierRules(**dict(row))


async def put_rules(
    session: AsyncSession, *, principal: Principal, store_id: str, rules: TierRules
) -> TierRules:
    """Store the store's rules under its lock (a batch ranking it waits, then reads them)."""
    principal.require_store(store_id, what="store")
    checked(rules)
    db = await driver_connection(session)
    if not await db.fetchval(_KNOWN_SQL, store_id):
        raise NotFound("Scoring holds no customer of this store")
    await service.lock_stores(session, store_ids=[store_id])
    values = asdict(rules)
    await db.execute(
        _PUT_SQL,
        store_id,
        *(values[name] for name in TierRules.__dataclass_fields__),
        principal.subject,
    )
    return rules


async def recompute_after_change(
    sessionmaker: async_sessionmaker[AsyncSession], *, store_id: str, as_of: date | None
) -> None:
    """The store recomputed with its new rules, in a transaction of its own."""
    try:
        async with sessionmaker() as session, session.begin():
            done = await recompute.recompute_store(session, store_id=store_id, as_of=as_of)
        log.info(
            "store recomputed after a change of its tier rules",
            extra={"fields": {"store_id": store_id, "changed": done.changed}},
        )
    except Exception:  # the next daily ageing applies the rules instead
        log.exception("recompute after a change of tier rules failed", extra={"fields": {}})
