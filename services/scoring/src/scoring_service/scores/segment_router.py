from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crm_libs.pagination import PageParams, next_cursor, page_params
from crm_libs.problems import problem_responses
from scoring_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from scoring_service.scores import recompute, segments
from scoring_service.scores.segment_schemas import (
    RecomputeRequest,
    RecomputeResult,
    SegmentPage,
    SegmentScore,
    StoreDistribution,
)

router = APIRouter(tags=["segments"])

_Filter = Annotated[str | None, Query(max_length=40)]


@router.get(
    "/scores",
    response_model=SegmentPage,
    summary="A store's scores filtered by classification (a segment), in pages",
    description=(
        "Every filter is optional and they combine: value_tier, lifecycle, ladder, loyalty, "
        "rfm_segment (each one value). Ordered by customer id; `next_cursor` resumes after the "
        "page. Head office names `store_id`; a store's user may leave it out (their store)."
    ),
    responses=problem_responses(400, 401, 404, 422),
)
async def list_segment(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    value_tier: _Filter = None,
    lifecycle: _Filter = None,
    ladder: _Filter = None,
    loyalty: _Filter = None,
    rfm_segment: _Filter = None,
) -> SegmentPage:
    filters = segments.checked_filters(
        {
            "value_tier": value_tier,
            "lifecycle": lifecycle,
            "ladder": ladder,
            "loyalty": loyalty,
            "rfm_segment": rfm_segment,
        }
    )
    rows = await segments.list_scores(
        session, principal=principal, store_id=store_id, filters=filters, page=page
    )
    return SegmentPage(
        items=[SegmentScore.of(s) for s in rows[: page.limit]],
        next_cursor=next_cursor(
            [{"customer_id": s.customer_id} for s in rows], page, id_of="customer_id"
        ),
    )


@router.get(
    "/stores/{store_id}/distribution",
    response_model=StoreDistribution,
    summary="How a store's customers spread over each classification",
    responses=problem_responses(401, 404),
)
async def store_distribution(
    store_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> StoreDistribution:
    counted = await segments.distribution(session, principal=principal, store_id=store_id)
    return StoreDistribution(store_id=store_id, customers=counted.customers, **counted.counts)


@router.post(
    "/scores/recompute",
    response_model=RecomputeResult,
    status_code=200,
    summary="Rebuild every score of a store from the purchases and signals scoring stored",
    responses=problem_responses(401, 403, 404, 422),
)
async def recompute_store(
    body: RecomputeRequest, session: SessionDep, settings: SettingsDep
) -> RecomputeResult:
    done = await recompute.recompute_store(session, store_id=body.store_id, as_of=settings.as_of)
    return RecomputeResult(
        store_id=body.store_id,
        customers=done.customers,
        changed=done.changed,
        corrected=done.corrected,
    )
