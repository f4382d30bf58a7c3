"""consumption by month as a read model: a summary per store and month, kept exact by marking
the months whose facts change; and the day each store's first file was seen

Revision ID: 0017
Revises: 0016
Create Date: 2027-01-12 09:00:00.000000

``analysis_store_month`` holds each store's months (customers, purchases, revenue net of
refunds), recomputed from the facts by the route that reads them (analysis/month_summary.py)
for the months marked in ``analysis_dirty_month``. The marks are written by statement-level
triggers on ``purchase_fact`` with transition tables: one INSERT per statement whatever it
wrote (a batch's COPY fires them once), one row per store, month and writing transaction, so
two writers never wait on one mark. Inserts mark their rows' months, updates (a refund applied,
a merge moving facts to the survivor) both their old and new months, deletes their old ones;
a TRUNCATE empties the summary with the facts.

``analysis_store_since``: the store-local day scoring registered a store's first file (an
insert into ``customer_score``, by a statement trigger that writes only for a store not held
yet), which with the store's first fact bounds the periods the analysis answers
(analysis/periods.py). Stores registered before it have none: their data begins with their
first fact.

Existing facts: every store and month they hold is marked, so the first read computes them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A fact's month: its store-local day's month, as a date (the first day).
_MONTH = "date_trunc('month', f.purchased_on::timestamp)::date"

_MARK_FUNCTION = f"""
CREATE FUNCTION analysis_mark_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO analysis_dirty_month (store_id, month, xid)
        SELECT DISTINCT f.store_id, {_MONTH}, txid_current() FROM new_facts AS f
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO analysis_dirty_month (store_id, month, xid)
        SELECT DISTINCT f.store_id, {_MONTH}, txid_current()
        FROM (SELECT store_id, purchased_on FROM old_facts
              UNION ALL SELECT store_id, purchased_on FROM new_facts) AS f
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO analysis_dirty_month (store_id, month, xid)
        SELECT DISTINCT f.store_id, {_MONTH}, txid_current() FROM old_facts AS f
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$
"""  # noqa: S608 (only the month's expression is interpolated)
_TRUNCATE_FUNCTION = """
CREATE FUNCTION analysis_forget_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM analysis_dirty_month;
    DELETE FROM analysis_store_month;
    RETURN NULL;
END
$$
"""
# Only a store not held yet is written (a probe per store of the statement): the first batch
# of a store's files, and never an update of a held row another writer could be waiting on.
_SINCE_FUNCTION = """
CREATE FUNCTION analysis_store_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analysis_store_since (store_id, first_on)
    SELECT s.store_id, min((now() AT TIME ZONE s.timezone)::date)
    FROM (SELECT DISTINCT store_id, timezone FROM new_scores) AS s
    WHERE NOT EXISTS (SELECT FROM analysis_store_since AS h WHERE h.store_id = s.store_id)
    GROUP BY s.store_id
    ON CONFLICT (store_id) DO NOTHING;
    RETURN NULL;
END
$$
"""
_TRIGGERS = (
    """CREATE TRIGGER analysis_facts_inserted AFTER INSERT ON purchase_fact
       REFERENCING NEW TABLE AS new_facts
       FOR EACH STATEMENT EXECUTE FUNCTION analysis_mark_months()""",
    """CREATE TRIGGER analysis_facts_updated AFTER UPDATE ON purchase_fact
       REFERENCING OLD TABLE AS old_facts NEW TABLE AS new_facts
       FOR EACH STATEMENT EXECUTE FUNCTION analysis_mark_months()""",
    """CREATE TRIGGER analysis_facts_deleted AFTER DELETE ON purchase_fact
       REFERENCING OLD TABLE AS old_facts
       FOR EACH STATEMENT EXECUTE FUNCTION analysis_mark_months()""",
    """CREATE TRIGGER analysis_facts_truncated AFTER TRUNCATE ON purchase_fact
       FOR EACH STATEMENT EXECUTE FUNCTION analysis_forget_months()""",
    """CREATE TRIGGER analysis_store_seen AFTER INSERT ON customer_score
       REFERENCING NEW TABLE AS new_scores
       FOR EACH STATEMENT EXECUTE FUNCTION analysis_store_seen()""",
)


def upgrade() -> None:
    op.create_table(
        "analysis_store_month",
        sa.Column("store_id", sa.Text(), primary_key=True),
        sa.Column("month", sa.Date(), primary_key=True),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(14, 2), nullable=False),
    )
    op.create_table(
        "analysis_dirty_month",
        sa.Column("store_id", sa.Text(), primary_key=True),
        sa.Column("month", sa.Date(), primary_key=True),
        sa.Column("xid", sa.BigInteger(), primary_key=True),
    )
    op.create_table(
        "analysis_store_since",
        sa.Column("store_id", sa.Text(), primary_key=True),
        sa.Column("first_on", sa.Date(), nullable=False),
    )
    for statement in (_MARK_FUNCTION, _TRUNCATE_FUNCTION, _SINCE_FUNCTION, *_TRIGGERS):
        op.execute(statement)
    op.execute(
        f"""INSERT INTO analysis_dirty_month (store_id, month, xid)
            SELECT DISTINCT f.store_id, {_MONTH}, txid_current() FROM purchase_fact AS f"""  # noqa: S608
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER analysis_store_seen ON customer_score")
    for name in ("inserted", "updated", "deleted", "truncated"):
        op.execute(f"DROP TRIGGER analysis_facts_{name} ON purchase_fact")
    op.execute("DROP FUNCTION analysis_store_seen()")
    op.execute("DROP FUNCTION analysis_forget_months()")
    op.execute("DROP FUNCTION analysis_mark_months()")
    op.drop_table("analysis_store_since")
    op.drop_table("analysis_dirty_month")
    op.drop_table("analysis_store_month")
