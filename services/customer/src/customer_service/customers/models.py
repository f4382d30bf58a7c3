from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Customer(SQLModel, table=True):
    """A customer file (顾客档案); this first part holds the basic facts."""

    __table_args__ = (
        Index("ix_customer_store_id_id", "store_id", "id"),
        Index("ix_customer_store_id_phone", "store_id", "phone"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    name: str = Field(sa_column=Column(Text, nullable=False))
    phone: str | None = Field(default=None, sa_column=Column(Text))
    gender: str | None = Field(default=None, sa_column=Column(Text))
    birthday: date | None = Field(default=None, sa_column=Column(Date))
    # Sensitive personal information, encrypted at rest (crm_libs.field_crypto).
    id_number_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    health_encrypted: str | None = Field(default=None, sa_column=Column(Text))
    health_consent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    status: str = Field(
        default="active", sa_column=Column(Text, nullable=False, server_default="active")
    )
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
