from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from crm_gateway.auth.passwords import MIN_PASSWORD_LENGTH

ACCOUNT_ROLES = ("hq_admin", "store_manager", "staff", "expert")


class AccountRole(StrEnum):
    HQ_ADMIN = "hq_admin"
    STORE_MANAGER = "store_manager"
    STAFF = "staff"
    EXPERT = "expert"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class AccountCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)
    role: AccountRole
    store_id: str | None = Field(default=None, min_length=1, max_length=64)
    staff_id: str | None = Field(default=None, max_length=64)


class AccountUpdate(BaseModel):
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=256)
    role: AccountRole | None = None
    store_id: str | None = Field(default=None, min_length=1, max_length=64)
    staff_id: str | None = Field(default=None, max_length=64)
    status: AccountStatus | None = None


class AccountPublic(BaseModel):
    id: str
    username: str
    role: AccountRole
    store_id: str | None
    staff_id: str | None
    status: AccountStatus
    created_at: datetime | None


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_in: int
    refresh_token: str
