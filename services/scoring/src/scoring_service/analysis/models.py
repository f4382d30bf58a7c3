"""What the analysis keeps beside the purchase facts, written from the events scoring consumes
(analysis/seen.py): a purchase's serving staff and lines with their amounts (the facts keep the
lines' skus and boxes, not their money), refunds' lines, the district of each customer's address
and the visits for the contact times. Each is keyed by its event's own id, so a redelivery or a
replay writes nothing twice.

Beside them the read model of consumption by month (analysis/month_summary.py): each store's
months summed, the months their facts' triggers marked since, and the day a store's first file
was seen (triggers of migration 0017)."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Text,
)
from sqlmodel import Field, SQLModel


class SaleStaff(SQLModel, table=True):
    """Who served a purchase (``purchase.recorded``'s ``staff_id``)."""

    __tablename__ = "analysis_sale_staff"

    purchase_id: str = Field(sa_column=Column(Text, primary_key=True))
    staff_id: str | None = Field(default=None, sa_column=Column(Text))


class SaleLine(SQLModel, table=True):
    """A line of a purchase (``source_id`` the purchase) or of a refund (``source_id`` the
    refund, ``amount`` negative), with its purchase: a product's revenue is the sum of its
    purchases' lines less what their refunds took back."""

    __tablename__ = "analysis_sale_line"
    __table_args__ = (Index("ix_analysis_sale_line_purchase", "purchase_id"),)

    source_id: str = Field(sa_column=Column(Text, primary_key=True))
    line_no: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    purchase_id: str = Field(sa_column=Column(Text, nullable=False))
    sku: str | None = Field(default=None, sa_column=Column(Text))
    category: str | None = Field(default=None, sa_column=Column(Text))
    amount: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))


class CustomerDistrict(SQLModel, table=True):
    """The district (区/县) of a customer's address as the newest file event carried it; never
    the street: the region of the consumption structure and no address detail."""

    __tablename__ = "analysis_customer_district"

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    district: str | None = Field(default=None, sa_column=Column(Text))
    version: int = Field(sa_column=Column(Integer, nullable=False))


class Contact(SQLModel, table=True):
    """A visit or call engagement logged (``visit.recorded``): when, how, and whether the
    customer was reached."""

    __tablename__ = "analysis_contact"
    __table_args__ = (Index("ix_analysis_contact_store_at", "store_id", "occurred_at"),)

    visit_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str = Field(sa_column=Column(Text, nullable=False))
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    method: str = Field(sa_column=Column(Text, nullable=False))
    reached: bool = Field(sa_column=Column(Boolean, nullable=False))


class StoreMonth(SQLModel, table=True):
    """A store's consumption of one store-local month as its purchase facts make it: customers
    with a purchase left after refunds, such purchases and their revenue net of refunds
    (analysis/month_summary.py keeps it exact from the months its triggers mark)."""

    __tablename__ = "analysis_store_month"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    month: date = Field(sa_column=Column(Date, primary_key=True))  # the month's first day
    customers: int = Field(sa_column=Column(Integer, nullable=False))
    purchases: int = Field(sa_column=Column(Integer, nullable=False))
    revenue: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))


class DirtyMonth(SQLModel, table=True):
    """A store's month whose facts a transaction changed since its summary was computed: one row
    per writing transaction (``xid``), so writers never wait on each other's marks, and a
    reader takes away only the marks its snapshot sees (analysis/month_summary.py)."""

    __tablename__ = "analysis_dirty_month"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    month: date = Field(sa_column=Column(Date, primary_key=True))
    xid: int = Field(sa_column=Column(BigInteger, primary_key=True))


class StoreSince(SQLModel, table=True):
    """The store-local day scoring first saw a file of the store: with its first purchase fact,
    where its data begins (analysis/periods.py)."""

    __tablename__ = "analysis_store_since"

    store_id: str = Field(sa_column=Column(Text, primary_key=True))
    first_on: date = Field(sa_column=Column(Date, nullable=False))
