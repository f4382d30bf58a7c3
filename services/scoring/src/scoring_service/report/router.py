"""``GET /stores/{store_id}/report``: the manager's month as one self-contained HTML page."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from crm_libs.events.driver import driver_connection
from crm_libs.problems import problem_responses
from scoring_service.analysis import periods
from scoring_service.deps import PrincipalDep, ReadSessionDep, SettingsDep
from scoring_service.report import figures, page

router = APIRouter(tags=["analysis"])


@router.get(
    "/stores/{store_id}/report",
    response_class=HTMLResponse,
    summary="The store's monthly report: its charts on one HTML page",
    description=(
        "One self-contained HTML page (inline SVG charts drawn on the server, no script, font "
        "or other resource to fetch: it opens offline) for `month` (`YYYY-MM`, this month "
        "when absent): the value pyramid and the lifecycle (as of today), consumption in the "
        "twelve months to the month and by product in it, the month's source conversion and "
        "each staff member's follow-up completion. A chart whose figures could not be had "
        "says so in its place; the page is still served. 422 (problem+json naming `month`) "
        "for a month to come or one that ends before the store's first data (its first "
        "purchase or the first file scoring saw)."
    ),
    responses={
        200: {"content": {"text/html": {}}, "description": "The report page"},
        **problem_responses(401, 403, 404, 422),
    },
)
async def store_report(
    store_id: str,
    request: Request,
    session: ReadSessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    month: Annotated[str | None, Query(description="YYYY-MM", max_length=7)] = None,
) -> HTMLResponse:
    principal.require_store(store_id, what="store")
    db = await driver_connection(session)
    days = await periods.store_days(db, store_id)
    checked = figures.checked_month(
        month,
        today=periods.today_in(days.timezone, as_of=settings.as_of),
        first_day=days.first_day,
    )
    html = await page.report(request, db, store_id=store_id, month=checked)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": page.CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
