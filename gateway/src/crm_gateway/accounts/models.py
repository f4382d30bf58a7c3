from datetime import datetime

from sqlalchemy import Column, DateTime, Integer, Text, text
from sqlmodel import Field, SQLModel

from crm_libs.ids import new_id


class Account(SQLModel, table=True):
    """A person who signs in: head office, a store manager, staff or an expert."""

    id: str = Field(default_factory=new_id, primary_key=True)
    username: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    role: str = Field(sa_column=Column(Text, nullable=False))
    store_id: str | None = Field(default=None, sa_column=Column(Text, index=True))
    staff_id: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(default="active", sa_column=Column(Text, nullable=False))
    failed_logins: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    # Bumped by every change of password, role, store or status; access tokens carry it.
    token_version: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )


class RefreshToken(SQLModel, table=True):
    """A long-lived, single-use token that buys a new access token (rotated on every use)."""

    __tablename__ = "refresh_token"

    id: str = Field(default_factory=new_id, primary_key=True)
    account_id: str = Field(sa_column=Column(Text, nullable=False, index=True))
    token_hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
