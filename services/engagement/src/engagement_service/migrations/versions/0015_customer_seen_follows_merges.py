"""a merged-away file's last purchase day is its survivor's

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 10:00:00.000000

miss_you campaigns read each file's last purchase day from ``customer_seen``; a merge left the
day under the merged-away file, which no campaign reaches, so its survivor was missed as never
seen or as unseen for too long. Merges applied from now on move the day as they come
(campaigns/seen.py); this moves the days of the files merged before, following chains of merges
to the last survivor, and keeps the later day where the survivor has one too.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        WITH RECURSIVE chain (merged, customer_id, depth) AS (
            SELECT s.customer_id, s.customer_id, 0
            FROM customer_seen AS s
            JOIN customer_file AS f ON f.customer_id = s.customer_id AND f.status = 'merged'
            UNION ALL
            SELECT chain.merged, f.merged_into, chain.depth + 1
            FROM chain JOIN customer_file AS f ON f.customer_id = chain.customer_id
            WHERE f.status = 'merged' AND f.merged_into IS NOT NULL AND chain.depth < 16
        ),
        survivor AS (
            SELECT DISTINCT ON (merged) merged, customer_id AS survivor_id
            FROM chain ORDER BY merged, depth DESC
        ),
        moved AS (
            DELETE FROM customer_seen AS s USING survivor AS v
            WHERE s.customer_id = v.merged AND v.survivor_id <> v.merged
            RETURNING v.survivor_id, s.store_id, s.last_purchase_on
        )
        INSERT INTO customer_seen (customer_id, store_id, last_purchase_on)
        SELECT DISTINCT ON (survivor_id) survivor_id, store_id, last_purchase_on
        FROM moved ORDER BY survivor_id, last_purchase_on DESC
        ON CONFLICT (customer_id) DO UPDATE
        SET last_purchase_on = GREATEST(customer_seen.last_purchase_on, EXCLUDED.last_purchase_on)
        """
    )


def downgrade() -> None:
    # The days stay with the survivors: which file each came from is not kept.
    pass
