from typing import Annotated

from fastapi import APIRouter, Depends, Query

from crm_libs.pagination import PageParams, encode_cursor, page_params
from crm_libs.problems import ProblemError, problem_responses
from customer_service.deps import PrincipalDep, ReadSessionDep
from customer_service.referrals import service
from customer_service.referrals.schemas import Referral, Referrals

router = APIRouter(prefix="/customers/{customer_id}", tags=["referrals"])

# Deep enough for any real chain (a referral of a referral of…); a bound on the walk's work.
MAX_DEPTH = 20


def _after(page: PageParams) -> tuple[int, str] | None:
    """The cursor's (depth, id): this list is paged by both."""
    if page.after is None:
        return None
    depth, _, customer_id = page.after.partition(":")
    if not depth.isdigit() or not customer_id:
        raise ProblemError("The cursor is not one this API issued", status=400)
    return int(depth), customer_id


@router.get(
    "/referrals",
    response_model=Referrals,
    summary="The customers this one referred, down the chain",
    description=(
        "Every file referred by the customer (depth 1), by those (depth 2), and so on down to "
        f"`max_depth` (at most {MAX_DEPTH}), nearest first; within the customer's store."
    ),
    responses=problem_responses(400, 401, 404, 422),
)
async def list_referrals(
    customer_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    max_depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = MAX_DEPTH,
) -> Referrals:
    rows = await service.chain_below(
        session,
        principal=principal,
        customer_id=customer_id,
        max_depth=max_depth,
        limit=page.limit + 1,
        after=_after(page),
    )
    items = rows[: page.limit]
    cursor = None
    if len(rows) > page.limit and items:
        last = items[-1]
        cursor = encode_cursor(f"{last['depth']}:{last['customer_id']}")
    return Referrals(items=[Referral.model_validate(r) for r in items], next_cursor=cursor)
