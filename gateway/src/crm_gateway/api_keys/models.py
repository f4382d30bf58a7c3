from datetime import datetime

from sqlalchemy import Column, DateTime, Text, text
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class ApiKey(SQLModel, table=True):
    """A partner store's system credential: shown once, stored as a hash, found by its prefix."""

    __tablename__ = "api_key"

    id: str = Field(default_factory=new_id, primary_key=True)
    store_id: str = Field(sa_column=Column(Text, nullable=False, index=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    prefix: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    key_hash: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    last_used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
