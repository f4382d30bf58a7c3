from datetime import date, datetime

from sqlalchemy import Boolean, Column, Date, DateTime, Index, Integer, Text, text
from sqlmodel import Field, SQLModel


class CustomerFile(SQLModel, table=True):
    """Engagement's read copy of a customer file: what tasks and care need, kept from
    ``crm.customers.v1`` (no name, phone, address, ID or health data)."""

    __tablename__ = "customer_file"
    # The special-day job's walk over the stores and its read of a store's files, all or those
    # changed since its last read (care/scheduled.py).
    __table_args__ = (
        Index(
            "ix_customer_file_store_active",
            "store_id",
            "updated_at",
            postgresql_where=text("status = 'active'"),
        ),
    )

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    # Set on a merged-away file: the survivor that now holds its history.
    merged_into: str | None = Field(default=None, sa_column=Column(Text))
    timezone: str | None = Field(default=None, sa_column=Column(Text))
    owner_staff_id: str | None = Field(default=None, sa_column=Column(Text))
    birthday: date | None = Field(default=None, sa_column=Column(Date))
    birthday_calendar: str | None = Field(default=None, sa_column=Column(Text))
    wedding_anniversary: date | None = Field(default=None, sa_column=Column(Date))
    spouse_customer_id: str | None = Field(default=None, sa_column=Column(Text))
    # No record of consent is no consent.
    sms_consent_granted: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    sms_consent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    sms_consent_channel: str | None = Field(default=None, sa_column=Column(Text))
    # The file's version in the customer service: an event older than this one is not applied.
    version: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
