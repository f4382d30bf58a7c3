"""The segment listings' indexes (real, migrated PostgreSQL): a prospect's score row, which has
no ladder, lifecycle or RFM, goes into none of those three indexes, nor into the tier's or the
loyalty's (partial, without prospects and floating customers), and every listing filtered by a
classification still reads its own index."""

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from crm_libs.pagination import PageParams
from crm_libs.principal import Principal, Role
from scoring_service.scores import segments, service

HEAD_OFFICE = Principal(subject="hq", role=Role.HQ_ADMIN)
PROSPECTS = 3000
# The indexes (by suffix) a prospect is not in: the classifications it lacks, and the tier's and
# the loyalty's, which leave out prospects and floating customers (a prospect is floating).
UNCLASSIFIED_BY_PROSPECT = ("ladder", "lifecycle", "rfm", "tier", "loyalty")


async def _index_pages(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        text(
            "SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS size "
            "FROM pg_index WHERE indrelid = 'customer_score'::regclass"
        )
    )
    return {r.name: r.size // 8192 for r in rows}


async def test_prospects_go_into_no_ladder_lifecycle_rfm_tier_or_loyalty_index(
    session: AsyncSession,
) -> None:
    before = await _index_pages(session)
    prospects = [(f"p{n:05d}", "s-prospects", "Asia/Shanghai") for n in range(PROSPECTS)]
    await service.score_batch(session, prospects=prospects, purchases=[])
    after = await _index_pages(session)
    # The indexes every file is in grew by the prospects' entries (tens of pages)...
    for name in ("customer_score_pkey", "ix_customer_score_store_customer"):
        assert after[name] - before[name] >= 5, (name, before, after)
    # ...and those of the classifications a prospect lacks did not grow at all.
    for suffix in UNCLASSIFIED_BY_PROSPECT:
        name = f"ix_customer_score_store_{suffix}"
        assert after[name] == before[name], (name, before, after)


@pytest.mark.parametrize(
    ("parameter", "value", "index"),
    [
        ("ladder", "C", "ix_customer_score_store_ladder"),
        ("lifecycle", "stopped", "ix_customer_score_store_lifecycle"),
        ("rfm_segment", "champions", "ix_customer_score_store_rfm"),
        ("value_tier", "vip", "ix_customer_score_store_tier"),
        # Most of the store: rows in customer order (the store's, or all where the store is
        # most of the table, as here), filtered.
        ("value_tier", "prospect", "ix_customer_score_store_customer|customer_score_pkey"),
        ("loyalty", "loyal", "ix_customer_score_store_loyalty"),
        ("loyalty", "floating", "ix_customer_score_store_customer|customer_score_pkey"),
    ],
)
async def test_a_listing_filtered_by_a_classification_reads_its_index(
    session: AsyncSession, parameter: str, value: str, index: str
) -> None:
    """In a store of prospects and classified customers, each value a few of them: the listing
    ``GET /scores`` runs (captured as sent) is planned on the filter's own index."""
    await session.execute(
        text(
            """
            INSERT INTO customer_score (customer_id, store_id, timezone, purchase_count,
                net_spend_365d, value_tier, loyalty, ladder_level, lifecycle, rfm_segment,
                version)
            SELECT 'c' || lpad(n::text, 5, '0'), 's-mixed', 'Asia/Shanghai', 1, n,
                   CASE WHEN n % 50 = 0 THEN 'vip' ELSE 'prospect' END,
                   CASE WHEN n % 50 = 1 THEN 'loyal' ELSE 'floating' END,
                   CASE n % 50 WHEN 0 THEN 'C' WHEN 25 THEN 'A' END,
                   CASE n % 50 WHEN 0 THEN 'stopped' WHEN 25 THEN 'active_core' END,
                   CASE n % 50 WHEN 0 THEN 'champions' WHEN 25 THEN 'hibernating' END,
                   1
            FROM generate_series(1, 6000) AS n
            """
        )
    )
    await session.execute(text("ANALYZE customer_score"))
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, params))

    sync_engine = session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        found = await segments.list_scores(
            session,
            principal=HEAD_OFFICE,
            store_id="s-mixed",
            filters={parameter: value},
            page=PageParams(limit=50, after=None),
        )
    finally:
        event.remove(sync_engine, "before_cursor_execute", capture)
    assert found and all(getattr(s, segments_column(parameter)) == value for s in found)
    statement, params = sent[-1]
    db = await driver_connection(session)
    plan = "\n".join(r[0] for r in await db.fetch("EXPLAIN " + statement, *params))
    assert any(name in plan for name in index.split("|")), plan


def segments_column(parameter: str) -> str:
    return next(d.column for d in segments.DIMENSIONS if d.parameter == parameter)
