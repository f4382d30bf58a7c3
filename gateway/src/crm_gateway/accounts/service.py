"""Accounts: creation within the caller's reach, sign-in with back-off, token refresh."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_gateway.access import MANAGES_ACCOUNTS_OF
from crm_gateway.accounts.models import Account, RefreshToken
from crm_gateway.accounts.schemas import AccountCreate, AccountRole, AccountStatus, AccountUpdate
from crm_gateway.auth.authenticate import announce_account
from crm_gateway.auth.passwords import hash_password, verify_password
from crm_gateway.auth.tokens import digest, new_secret
from crm_gateway.config import Settings
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal, Role
from crm_libs.problems import (
    Conflict,
    Forbidden,
    InvalidField,
    NotFound,
    ProblemError,
    Unauthorized,
)


class LockedOut(ProblemError):
    status = 429
    title = "Too many failed sign-ins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-ins; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def _check_reach(caller: Principal, *, role: str, store_id: str | None) -> None:
    """The roles a caller manages are declared in crm_gateway.access; stores other than their
    own only by head office."""
    if role not in MANAGES_ACCOUNTS_OF.get(caller.role, frozenset()):
        raise Forbidden(f"A {caller.role.value} does not manage {role} accounts")
    if caller.role == Role.HQ_ADMIN:
        if role != AccountRole.HQ_ADMIN and not store_id:
            raise InvalidField("store_id", "required for every role but hq_admin")
        return
    if store_id != caller.store_id:
        raise Forbidden("A store manager manages the accounts of their own store only")


async def create(session: AsyncSession, *, caller: Principal, account_in: AccountCreate) -> Account:
    """Open an account (its password is stored as an Argon2 hash only)."""
    store_id = None if account_in.role == AccountRole.HQ_ADMIN else account_in.store_id
    _check_reach(caller, role=account_in.role, store_id=store_id)
    account = Account(
        username=account_in.username,
        password_hash=await hash_password(account_in.password),
        role=account_in.role.value,
        store_id=store_id,
        staff_id=account_in.staff_id,
    )
    session.add(account)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"The username {account_in.username!r} is taken") from exc
    await announce_account(session, account)
    return account


async def get_visible(session: AsyncSession, *, caller: Principal, account_id: str) -> Account:
    account = await session.get(Account, account_id)
    if account is None or (caller.role != Role.HQ_ADMIN and account.store_id != caller.store_id):
        raise NotFound("No such account")
    if caller.role not in (Role.HQ_ADMIN, Role.STORE_MANAGER):
        raise NotFound("No such account")
    return account


async def update(
    session: AsyncSession, *, caller: Principal, account_id: str, account_in: AccountUpdate
) -> Account:
    account = await get_visible(session, caller=caller, account_id=account_id)
    changes = account_in.model_dump(exclude_unset=True)
    standing = {"role", "store_id", "status"} & changes.keys()
    if account.id == caller.subject and standing:
        raise Forbidden("Nobody changes their own role, store or status")
    role = changes.get("role") or account.role
    store_id = changes.get("store_id", account.store_id)
    _check_reach(caller, role=account.role, store_id=account.store_id)
    _check_reach(caller, role=role, store_id=None if role == AccountRole.HQ_ADMIN else store_id)
    if "password" in changes and changes["password"]:
        account.password_hash = await hash_password(changes.pop("password"))
    changes.pop("password", None)
    for name, value in changes.items():
        if value is None and name in ("role", "status"):
            raise InvalidField(name, "may not be null")
        setattr(account, name, value.value if hasattr(value, "value") else value)
    if account.role == AccountRole.HQ_ADMIN:
        account.store_id = None
    account.failed_logins = 0 if account.status == AccountStatus.ACTIVE else account.failed_logins
    await session.flush()
    # The access token carries the roster entry too (the services default a file's owner to it).
    if standing or {"password", "staff_id"} & account_in.model_fields_set:
        # Tokens issued before this change carry an older version: every replica refuses them.
        await session.refresh(account, ["token_version"], with_for_update=True)
        account.token_version += 1
        await session.flush()
        await announce_account(session, account)
    if "password" in account_in.model_fields_set:
        await _retire_refresh_tokens(session, account_id=account.id)
    return account


async def _retire_refresh_tokens(session: AsyncSession, *, account_id: str) -> None:
    """A new password signs the account out of every device at its next refresh."""
    await session.execute(
        sa_update(RefreshToken)
        .where(col(RefreshToken.account_id) == account_id, col(RefreshToken.used_at).is_(None))
        .values(used_at=datetime.now(UTC))
    )


async def list_visible(
    session: AsyncSession, *, caller: Principal, page: PageParams
) -> list[Account]:
    if caller.role not in (Role.HQ_ADMIN, Role.STORE_MANAGER):
        raise Forbidden("Only head office and store managers list accounts")
    query = keyset(select(Account), col(Account.id), page)
    if caller.role != Role.HQ_ADMIN:
        query = query.where(col(Account.store_id) == caller.store_id)
    return list((await session.execute(query)).scalars())


async def authenticate(
    session: AsyncSession, *, username: str, password: str, settings: Settings
) -> Account:
    """The account these credentials open, or 401; repeated failures lock it for a while."""
    account = (
        await session.execute(
            select(Account).where(col(Account.username) == username).with_for_update()
        )
    ).scalar_one_or_none()
    now = datetime.now(UTC)
    if account is not None and account.locked_until and account.locked_until > now:
        raise LockedOut(int((account.locked_until - now).total_seconds()) + 1)
    valid = await verify_password(account.password_hash if account else None, password)
    if account is None or not valid or account.status != AccountStatus.ACTIVE:
        if account is not None and not valid:
            account.failed_logins += 1
            if account.failed_logins >= settings.login_max_failures:
                account.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
                account.failed_logins = 0
        raise Unauthorized("Wrong username or password")
    account.failed_logins = 0
    account.locked_until = None
    return account


async def issue_refresh_token(
    session: AsyncSession, *, account: Account, settings: Settings
) -> str:
    token = new_secret()
    session.add(
        RefreshToken(
            account_id=account.id,
            token_hash=digest(token),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    await session.flush()
    return token


async def redeem_refresh_token(session: AsyncSession, *, token: str) -> Account:
    """Use a refresh token once; the account must still be active."""
    stored = (
        await session.execute(
            select(RefreshToken)
            .where(col(RefreshToken.token_hash) == digest(token))
            .with_for_update()
        )
    ).scalar_one_or_none()
    now = datetime.now(UTC)
    if stored is None or stored.used_at is not None or stored.expires_at <= now:
        raise Unauthorized("The refresh token is not valid")
    stored.used_at = now
    account = await session.get(Account, stored.account_id)
    if account is None or account.status != AccountStatus.ACTIVE:
        raise Unauthorized("The refresh token is not valid")
    return account


async def ensure_bootstrap_admin(session: AsyncSession, *, username: str, password: str) -> bool:
    """Create the first administrator if that username does not exist yet."""
    exists = (
        await session.execute(select(col(Account.id)).where(col(Account.username) == username))
    ).scalar_one_or_none()
    if exists is not None:
        return False
    session.add(
        Account(
            username=username,
            password_hash=await hash_password(password),
            role=AccountRole.HQ_ADMIN.value,
        )
    )
    await session.flush()
    return True


def principal_of(account: Account) -> Principal:
    return Principal(
        subject=account.id,
        role=Role(account.role),
        store_id=account.store_id,
        staff_id=account.staff_id,
    )
