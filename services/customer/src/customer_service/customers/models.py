from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Customer(SQLModel, table=True):
    """A customer file (顾客档案): the profile of DOMAIN.md §1 under API.md's names.

    Columns named like a field of ``CustomerPublic`` are shown as they are; the others are the
    stored form of a field (``phones_encrypted``, ``prospect_stage``…), see customers/profile.py.
    """

    __table_args__ = (
        Index("ix_customer_store_id_id", "store_id", "id"),
        # btree_gin: the store leads, so a search reads one store's entries only.
        Index("ix_customer_store_phone_tails", "store_id", "phone_tails", postgresql_using="gin"),
        Index("ix_customer_store_phone_hashes", "store_id", "phone_hashes", postgresql_using="gin"),
        Index(
            "ix_customer_store_name_keys",
            "store_id",
            func.to_tsvector(text("'simple'"), text("name_keys")),
            postgresql_using="gin",
        ),
        Index("ix_customer_store_owner", "store_id", "owner_staff_id"),
        Index("ix_customer_store_referrer", "store_id", "referrer_id"),
        # Search (customers/search.py, migration 0008).
        Index(
            "ix_customer_store_name_trgm",
            "store_id",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index("ix_customer_store_tier", "store_id", "value_tier", "id"),
        Index("ix_customer_store_lifecycle", "store_id", "lifecycle", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    name: str = Field(sa_column=Column(Text, nullable=False))
    # The name's pinyin search keys (customers/pinyin.py), written with the name.
    name_keys: str | None = Field(default=None, sa_column=Column(Text))
    gender: str | None = Field(default=None, sa_column=Column(Text))
    ethnicity: str | None = Field(default=None, sa_column=Column(Text))
    approximate_age: int | None = Field(default=None, sa_column=Column(Integer))
    # The solar date of birth, whatever calendar the customer celebrates in.
    birthday: date | None = Field(default=None, sa_column=Column(Date))
    birthday_calendar: str = Field(
        default="solar", sa_column=Column(Text, nullable=False, server_default="solar")
    )
    wedding_anniversary: date | None = Field(default=None, sa_column=Column(Date))
    email: str | None = Field(default=None, sa_column=Column(Text))
    address: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    deep: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    source: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    referrer_id: str | None = Field(default=None, sa_column=Column(Text, ForeignKey("customer.id")))
    owner_staff_id: str | None = Field(default=None, sa_column=Column(Text, ForeignKey("staff.id")))
    # The pipeline of DOMAIN.md §1; a file's first purchase moves it to `bought`.
    prospect_stage: str | None = Field(default=None, sa_column=Column(Text))
    prospect_grade: str | None = Field(default=None, sa_column=Column(Text))
    consents: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    # Sensitive personal information, encrypted at rest (crm_libs.field_crypto). The phones are
    # one encrypted JSON list; their keyed hashes (exact lookup) and last four digits (tail
    # search) are kept beside it, in the list's order.
    phones_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    phone_hashes: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
    )
    phone_tails: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
    )
    id_number_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    health_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    health_consent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    # Whether the health file lists other health products (competitors' too): all that travels
    # of it (deploy/README.md, payload.file), for scoring's loyalty (``switcher``). Written with
    # the health data, so no event decrypts it.
    uses_competitor_products: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    status: str = Field(
        default="active", sa_column=Column(Text, nullable=False, server_default="active")
    )
    merged_into: str | None = Field(default=None, sa_column=Column(Text, ForeignKey("customer.id")))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    # The read copy of the customer's score, kept from crm.scores.v1 (customer_service.handlers):
    # for filtering a search, not shown on the file. No score yet means no purchase: a prospect.
    value_tier: str = Field(
        default="prospect", sa_column=Column(Text, nullable=False, server_default="prospect")
    )
    lifecycle: str | None = Field(default=None, sa_column=Column(Text))
    ladder_level: str | None = Field(default=None, sa_column=Column(Text))
    score_version: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
