"""Routes of the customer's privacy rights: the export (JSON or a workbook) and erasure."""

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict

from crm_libs.problems import ProblemError, problem_responses
from customer_service import audit_trail
from customer_service.customers import privacy, privacy_export, privacy_sheets, service
from customer_service.customers.schemas import CustomerPublic
from customer_service.deps import CipherDep, PrincipalDep, SessionDep

router = APIRouter(prefix="/customers", tags=["privacy"])

JSON = "application/json"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CustomerExport(BaseModel):
    """Everything this service holds on the customer; ``elsewhere`` names what it does not."""

    customer_id: str
    exported_at: datetime
    file: CustomerPublic
    relations: list[dict[str, Any]]
    purchases: list[dict[str, Any]]
    consents: dict[str, Any]
    merges: dict[str, Any]
    imports: dict[str, Any]
    changes: list[dict[str, Any]]
    elsewhere: list[dict[str, Any]]
    note: str


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: privacy.ErasureReason


class ErasedFile(BaseModel):
    """What is left of an erased file: the pointer its purchases and events still name."""

    id: str
    store_id: str
    status: str
    merged_into: str | None = None
    version: int


def _media_type(accept: str | None) -> str:
    """JSON unless the client prefers the workbook (the quality values of RFC 9110 §12.5.1)."""
    best, best_q = None, 0.0
    for part in (accept or "*/*").split(","):
        media, *params = [p.strip().lower() for p in part.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        offered = {XLSX: XLSX, JSON: JSON, "application/*": JSON, "*/*": JSON}.get(media)
        # Equally preferred: JSON, the default.
        if offered and q > 0 and (q, offered == JSON) > (best_q, best == JSON):
            best, best_q = offered, q
    if best is None:
        raise ProblemError(
            f"The export is offered as {JSON} or {XLSX}", status=406, title="Not Acceptable"
        )
    return best


@router.get(
    "/{customer_id}/export",
    response_model=CustomerExport,
    summary="Everything held on the customer: their copy (JSON, or a workbook with Accept)",
    responses={
        **problem_responses(401, 403, 404, 406),
        200: {"content": {JSON: {}, XLSX: {}}},
    },
)
async def export_customer(
    customer_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    cipher: CipherDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    media_type = _media_type(accept)
    exported = await privacy_export.export(
        session, principal=principal, customer_id=customer_id, cipher=cipher
    )
    if media_type == XLSX:
        response = Response(
            privacy_sheets.workbook(exported),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.xlsx"'},
        )
    else:
        response = Response(
            orjson.dumps(exported, option=orjson.OPT_UTC_Z), media_type="application/json"
        )
    # A copy of the customer's data is theirs to take away, not to leave in a cache.
    response.headers["Cache-Control"] = "no-store"
    audit_trail.note(
        response,
        action="export",
        resource=f"customer/{customer_id}/export",
        customer_id=customer_id,
        fields=privacy_export.disclosed(exported),
    )
    return response


@router.post(
    "/{customer_id}/erase",
    response_model=ErasedFile,
    summary="Erase the customer (PIPL): anonymise the file for good, keep anonymous sales",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def erase_customer(
    customer_id: str,
    erasure_in: ErasureRequest,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
) -> ErasedFile:
    erasure = await privacy.erase(session, principal=principal, customer_id=customer_id)
    customer = erasure.customer
    audit_trail.note(
        response,
        action="erase",
        resource=f"customer/{customer.id}?reason={erasure_in.reason.value}",
        customer_id=customer.id,
        fields=erasure.cleared,
    )
    for relative in erasure.relatives:
        audit_trail.note(
            response,
            action="update",
            resource=f"customer/{relative}",
            customer_id=relative,
            fields=["relations"],
        )
    return ErasedFile.model_validate(privacy.pointer(service.row_of(customer)))
