from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    Text,
    text,
)
from sqlmodel import Field, SQLModel


class CustomerRelation(SQLModel, table=True):
    """One direction of a family link: ``related_customer_id`` is this customer's ``kind``.

    Every link is two rows, one per direction, written and removed together, so each side reads
    its own list with one index range and no ``OR``. Both files belong to ``store_id``.
    """

    __tablename__ = "customer_relation"
    __table_args__ = (
        # Leads with the store (DESIGN.md "Scale plan"); serves one file's list in page order.
        PrimaryKeyConstraint("store_id", "customer_id", "related_customer_id"),
        CheckConstraint("customer_id <> related_customer_id", name="ck_customer_relation_not_self"),
        CheckConstraint(
            "kind IN ('spouse', 'parent', 'child', 'sibling', 'other')",
            name="ck_customer_relation_kind",
        ),
        # One spouse per file, held by the database too (the service refuses it first, by name).
        Index(
            "ux_customer_relation_one_spouse",
            "store_id",
            "customer_id",
            unique=True,
            postgresql_where=text("kind = 'spouse'"),
        ),
    )

    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    customer_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), nullable=False))
    related_customer_id: str = Field(
        sa_column=Column(Text, ForeignKey("customer.id"), nullable=False)
    )
    kind: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
