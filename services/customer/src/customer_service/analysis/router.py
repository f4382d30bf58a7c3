from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from crm_libs.problems import problem_responses
from crm_libs.tables import JSON, TABLE_CONTENT, Column, media_type, table_response
from customer_service.analysis import sources
from customer_service.analysis.schemas import SourceAnalysis, SourceConversion
from customer_service.deps import PrincipalDep, ReadSessionDep

router = APIRouter(prefix="/stores/{store_id}/analysis", tags=["analysis"])

# The table as CSV or a workbook (crm_libs.tables), for the managers' spreadsheets.
_COLUMNS = (
    Column("channel", "收档渠道"),
    Column("files", "档案数", "integer"),
    Column("converted", "成交数", "integer"),
    Column("conversion_rate", "转化率", "rate"),
    Column("cost", "获客成本", "money"),
    Column("cost_per_converted", "每成交成本", "money"),
)


@router.get(
    "/sources",
    response_model=SourceAnalysis,
    response_model_by_alias=True,
    summary="Files, conversions and acquisition cost per source channel",
    description=(
        "The files opened from `from` to `to` (dates in the store's time zone, both included; "
        "open-ended when left out), per source channel: how many, how many have bought since, "
        "and what acquiring them cost in all and per converted customer. `Accept: text/csv` "
        "or the XLSX type answer the items as a spreadsheet. 422 (problem+json naming the "
        "field) when the period is reversed, `to` is after the store's today or `from` is "
        "before the first day of the month of the store's first file or purchase (the detail "
        "names that day and the earliest `from`); a store with no data answers an empty table."
    ),
    responses={**problem_responses(401, 404, 406, 422), **TABLE_CONTENT},
)
async def source_analysis(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response | SourceAnalysis:
    media = media_type(accept)
    items = await sources.by_channel(
        session, principal=principal, store_id=store_id, since=since, until=until
    )
    if media != JSON:
        return table_response(media=media, name="sources", columns=_COLUMNS, rows=items)
    return SourceAnalysis.model_validate(
        {
            "store_id": store_id,
            "from": since,
            "to": until,
            "items": [SourceConversion.model_validate(i) for i in items],
        }
    )
