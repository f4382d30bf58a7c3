"""The day's work list as the route answers it: the page from worklist/service.py, and the
page's names asked of the customer service in one request."""

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.pagination import Page, PageParams, encode_cursor
from crm_libs.principal import Principal
from engagement_service import customer_api
from engagement_service.care.files import local_day
from engagement_service.followups.schemas import TaskStatus
from engagement_service.peer_client import PeerUnavailable
from engagement_service.worklist import service
from engagement_service.worklist.schemas import WorkItem

log = logging.getLogger(__name__)


def _reason(row: Any) -> str:
    if row["kind"] == "recovery" and row["recovery_reason"]:
        return str(row["recovery_reason"])
    if row["kind"] == "special_day" and row["occasion"]:
        return str(row["occasion"])
    return str(row["purpose"])


def _item(row: Any, *, today: Any, name: str | None) -> WorkItem:
    shown = {field: row[field] for field in WorkItem.model_fields if field in row}
    shown["methods_allowed"] = row["methods_allowed"] or [row["method"]]
    if row["due_on"] < today:
        shown["status"] = TaskStatus.OVERDUE
    shown["customer_name"] = name
    shown["reason"] = _reason(row)
    return WorkItem.model_validate(shown)


async def day_list(
    session: AsyncSession,
    request: Request,
    *,
    principal: Principal,
    page: PageParams,
    staff_id: str | None,
    default_timezone: str,
) -> Page[WorkItem]:
    store_id = principal.store_scope()
    zone = await service.store_timezone(session, store_id=store_id)
    today = local_day(datetime.now(UTC), zone, default_timezone)
    rows = await service.work_list(
        session,
        today=today,
        store_id=store_id,
        staff_id=staff_id,
        after=service.WorkKey.decode(page.after) if page.after else None,
        limit=page.limit,
    )
    shown = rows[: page.limit]
    try:
        names = await customer_api.names_of(request, [r["customer_id"] for r in shown])
    except PeerUnavailable as exc:
        # The list is the day's work: it answers without names rather than not at all.
        log.warning(
            "work list without names: the customer service did not answer",
            extra={"fields": {"error": str(exc), "tasks": len(shown)}},
        )
        names = {}
    next_cursor = None
    if len(rows) > page.limit and shown:
        last = shown[-1]
        key = service.WorkKey(last["priority"], last["tier_rank"], last["due_on"], last["id"])
        next_cursor = encode_cursor(key.encode())
    return Page[WorkItem](
        items=[_item(r, today=today, name=names.get(r["customer_id"])) for r in shown],
        next_cursor=next_cursor,
    )
