from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from crm_libs.problems import problem_responses
from customer_service.analysis import sources
from customer_service.analysis.schemas import SourceAnalysis, SourceConversion
from customer_service.deps import PrincipalDep, ReadSessionDep

router = APIRouter(prefix="/stores/{store_id}/analysis", tags=["analysis"])


@router.get(
    "/sources",
    response_model=SourceAnalysis,
    response_model_by_alias=True,
    summary="Files, conversions and acquisition cost per source channel",
    description=(
        "The files opened from `from` to `to` (dates in the store's time zone, both included; "
        "open-ended when left out), per source channel: how many, how many have bought since, "
        "and what acquiring them cost in all and per converted customer."
    ),
    responses=problem_responses(401, 404, 422),
)
async def source_analysis(
    store_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
) -> SourceAnalysis:
    items = await sources.by_channel(
        session, principal=principal, store_id=store_id, since=since, until=until
    )
    return SourceAnalysis.model_validate(
        {
            "store_id": store_id,
            "from": since,
            "to": until,
            "items": [SourceConversion.model_validate(i) for i in items],
        }
    )
