from fastapi import APIRouter, Request

from crm_libs.db import request_connection
from crm_libs.problems import problem_responses
from customer_service.completeness import service
from customer_service.completeness.schemas import Completeness
from customer_service.customers import service as customers
from customer_service.customers import visibility
from customer_service.deps import PrincipalDep

router = APIRouter(prefix="/customers/{customer_id}", tags=["customers"])


@router.get(
    "/completeness",
    response_model=Completeness,
    summary="How complete a file is, and what to ask for next",
    description=(
        "`score` 0-100 weighs each field the file holds (health only with the customer's "
        "consent); `missing` lists the fields not held yet in the order etiquette allows "
        "asking: `registration` (name, phone), `acquainted` (birthday, address…), `trusted` "
        "(deep and health, through later visits), then `priority` within the stage."
    ),
    responses=problem_responses(401, 404),
)
async def get_completeness(
    customer_id: str, request: Request, principal: PrincipalDep
) -> Completeness:
    async with request_connection(request) as conn:
        row = await customers.read(conn, principal=principal, customer_id=customer_id)
    # Nothing is disclosed (names of fields, no values): no audit entry.
    return Completeness.model_validate(
        service.completeness(
            row,
            cipher=request.app.state.cipher,
            health_in_detail=visibility.may_see("health", principal.role),
        )
    )
