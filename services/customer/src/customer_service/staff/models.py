from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, ForeignKey, Index, Text, text
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Staff(SQLModel, table=True):
    __table_args__ = (Index("ix_staff_store_id_id", "store_id", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    name: str = Field(sa_column=Column(Text, nullable=False))
    role: str = Field(sa_column=Column(Text, nullable=False))
    phone: str | None = Field(default=None, sa_column=Column(Text))
    hired_on: date | None = Field(default=None, sa_column=Column(Date))
    status: str = Field(sa_column=Column(Text, nullable=False, server_default="active"))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
