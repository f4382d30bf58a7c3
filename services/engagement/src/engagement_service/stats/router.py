"""``GET /staff/{staff_id}/stats`` and ``GET /stores/{store_id}/staff-stats`` (stats/service.py
says what each number counts).

Who reads whose: staff and experts only their own (the account's staff member), a store
manager their store's staff, head office anyone; a partner's system none (a staff member's
performance is the store's business, not a partner's: access.py). The staff member is looked
up on the customer service's roster as the caller, so another store's is a 404 as an unknown
one.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.principal import Principal, Role
from crm_libs.problems import Forbidden, InvalidField, NotFound, ProblemError, problem_responses
from engagement_service import customer_api
from engagement_service.care.files import local_day
from engagement_service.complaints.stats import ComplaintStats, complaint_stats
from engagement_service.config import Settings
from engagement_service.deps import PrincipalDep, ReadSessionDep, SettingsDep
from engagement_service.peer_client import PeerUnavailable
from engagement_service.stats.service import MAX_PERIOD_DAYS, StaffStats, staff_stats
from engagement_service.worklist.service import store_timezone

router = APIRouter(tags=["staff statistics"])

OWN_ONLY = frozenset({Role.STAFF, Role.EXPERT})


class StaffStatsPublic(BaseModel):
    staff_id: str
    store_id: str
    # The period, store-local days, both included.
    start: date
    end: date
    visits: int
    calls: int
    home_visits: int
    messages: int
    done_on_time: int
    done_late: int
    overdue: int
    tasks_due: int
    completion_rate: float | None

    @classmethod
    def of(cls, stats: StaffStats) -> "StaffStatsPublic":
        return cls(
            **{k: getattr(stats, k) for k in cls.model_fields},
        )


class StoreStaffStats(BaseModel):
    items: list[StaffStatsPublic]


_PERIOD_DOC = (
    "`from` and `to` are store-local days, both included (default: this month so far); "
    "`from` not after `to`, at most a year apart."
)


def _period(start: date | None, end: date | None, *, today: date) -> tuple[date, date]:
    end = end or today
    start = start or end.replace(day=1)
    if start > end:
        raise InvalidField("from", "after to")
    if (end - start) > timedelta(days=MAX_PERIOD_DAYS - 1):
        raise InvalidField("to", f"more than {MAX_PERIOD_DAYS} days after from")
    return start, end


async def _store_period(
    session: AsyncSession,
    *,
    store_id: str,
    settings: Settings,
    start: date | None,
    end: date | None,
) -> tuple[str, date, date, date]:
    """The store's time zone, its day today, and the period asked of it in its days."""
    zone = await store_timezone(session, store_id=store_id) or settings.default_timezone
    today = local_day(datetime.now(UTC), zone, settings.default_timezone)
    start, end = _period(start, end, today=today)
    return zone, today, start, end


async def _store_of(request: Request, principal: Principal, staff_id: str) -> str:
    if principal.role in OWN_ONLY:
        if principal.staff_id != staff_id:
            raise Forbidden("Staff read only their own statistics")
        if principal.store_id is None:
            raise NotFound("No such staff member")
        return principal.store_id
    try:
        member = await customer_api.staff_member(request, staff_id)
    except PeerUnavailable as exc:
        raise ProblemError("The staff roster is unavailable", status=503) from exc
    if member is None:
        raise NotFound("No such staff member")
    return str(member["store_id"])


@router.get(
    "/staff/{staff_id}/stats",
    response_model=StaffStatsPublic,
    summary="A staff member's visits, calls, messages and tasks over a period",
    description=_PERIOD_DOC,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_staff_stats(
    staff_id: str,
    request: Request,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> StaffStatsPublic:
    store_id = await _store_of(request, principal, staff_id)
    zone, today, start, end = await _store_period(
        session, store_id=store_id, settings=settings, start=start, end=end
    )
    [stats] = await staff_stats(
        session,
        store_id=store_id,
        start=start,
        end=end,
        today=today,
        timezone=zone,
        staff_ids=[staff_id],
    )
    return StaffStatsPublic.of(stats)


@router.get(
    "/stores/{store_id}/staff-stats",
    response_model=StoreStaffStats,
    summary="Every staff member's statistics in a store over a period (managers)",
    description=_PERIOD_DOC + " Every staff member with a visit, a message or a task due in the "
    "period, in staff id order (a store's roster is one page).",
    responses=problem_responses(401, 403, 422),
)
async def get_store_staff_stats(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> StoreStaffStats:
    principal.require_store(store_id, what="store")
    zone, today, start, end = await _store_period(
        session, store_id=store_id, settings=settings, start=start, end=end
    )
    found = await staff_stats(
        session, store_id=store_id, start=start, end=end, today=today, timezone=zone
    )
    return StoreStaffStats(items=[StaffStatsPublic.of(s) for s in found])


class ComplaintStatsPublic(BaseModel):
    store_id: str
    start: date
    end: date
    opened: int
    still_open: int
    by_category: dict[str, int]
    closed: int
    resolved_on_the_spot: int
    on_the_spot_rate: float | None
    mean_resolution_minutes: float | None
    median_resolution_minutes: float | None
    second_follow_ups: int

    @classmethod
    def of(cls, stats: ComplaintStats) -> "ComplaintStatsPublic":
        return cls(**{k: getattr(stats, k) for k in cls.model_fields})


@router.get(
    "/stores/{store_id}/complaint-stats",
    response_model=ComplaintStatsPublic,
    summary="A store's complaints over a period: resolution time, resolved on the spot (managers)",
    description=_PERIOD_DOC + " `opened` counts the complaints opened in the period; `closed`, "
    "`resolved_on_the_spot` (closed satisfied in the first round on the store-local day it "
    "was opened) and the resolution times (opened to closed, minutes) those closed in it; "
    "`second_follow_ups` the unsatisfied feedbacks recorded in it.",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_complaint_stats(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> ComplaintStatsPublic:
    principal.require_store(store_id, what="store")
    zone, today, start, end = await _store_period(
        session, store_id=store_id, settings=settings, start=start, end=end
    )
    return ComplaintStatsPublic.of(
        await complaint_stats(session, store_id=store_id, start=start, end=end, timezone=zone)
    )
