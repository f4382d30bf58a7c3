"""campaigns: the campaign, its messages' counts by status kept by triggers on sms_message, and
each customer's last purchase day (miss_you)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-23 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Counts kept per statement for inserts (a campaign's chunk of 1,000 is one upsert per status)
# and per row for the worker's one-message status changes, in status order so that two
# transactions moving messages between the same statuses lock the counters in the same order.
_TRIGGERS = (
    """
CREATE FUNCTION campaign_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_count (campaign_id, status, n)
    SELECT campaign_id, status, count(*) FROM inserted
    WHERE campaign_id IS NOT NULL
    GROUP BY campaign_id, status ORDER BY campaign_id, status
    ON CONFLICT (campaign_id, status) DO UPDATE SET n = campaign_count.n + EXCLUDED.n;
    RETURN NULL;
END $$;
    """,
    """
CREATE FUNCTION campaign_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE campaign_count SET n = n - 1
        WHERE campaign_id = OLD.campaign_id AND status = OLD.status;
        RETURN NULL;
    END IF;
    INSERT INTO campaign_count (campaign_id, status, n)
    SELECT OLD.campaign_id, moved.s, moved.d
    FROM (VALUES (OLD.status, -1), (NEW.status, 1)) AS moved (s, d)
    ORDER BY moved.s
    ON CONFLICT (campaign_id, status) DO UPDATE SET n = campaign_count.n + EXCLUDED.n;
    RETURN NULL;
END $$;
    """,
    """
CREATE TRIGGER sms_message_campaign_inserted AFTER INSERT ON sms_message
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION campaign_count_inserted();
    """,
    """
CREATE TRIGGER sms_message_campaign_moved AFTER UPDATE OF status ON sms_message
FOR EACH ROW WHEN (OLD.campaign_id IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION campaign_count_moved();
    """,
    """
CREATE TRIGGER sms_message_campaign_deleted AFTER DELETE ON sms_message
FOR EACH ROW WHEN (OLD.campaign_id IS NOT NULL)
EXECUTE FUNCTION campaign_count_moved();
    """,
)


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("template_id", sa.Text(), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_to", sa.Date(), nullable=True),
        sa.Column("occasion", sa.Text(), nullable=True),
        sa.Column("occasion_on", sa.Date(), nullable=True),
        sa.Column("unseen_days", sa.Integer(), nullable=True),
        sa.Column("segment", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("staff_id", sa.Text(), nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column("sent_by", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("leased_by", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("recipients", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "excluded",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_campaign_store", "campaign", ["store_id", "id"])
    op.create_index(
        "ix_campaign_sending",
        "campaign",
        ["id"],
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_table(
        "campaign_count",
        sa.Column("campaign_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "status"),
    )
    op.create_table(
        "customer_seen",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("last_purchase_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_customer_seen_store", "customer_seen", ["store_id", "last_purchase_on"])
    for statement in _TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER sms_message_campaign_deleted ON sms_message")
    op.execute("DROP TRIGGER sms_message_campaign_moved ON sms_message")
    op.execute("DROP TRIGGER sms_message_campaign_inserted ON sms_message")
    op.execute("DROP FUNCTION campaign_count_moved()")
    op.execute("DROP FUNCTION campaign_count_inserted()")
    op.drop_table("customer_seen")
    op.drop_table("campaign_count")
    op.drop_table("campaign")
