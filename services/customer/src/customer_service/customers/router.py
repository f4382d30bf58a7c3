from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Response

from crm_libs.field_crypto import FieldCipher
from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, problem_responses
from customer_service import audit_trail
from customer_service.customers import service, visibility
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerCreate, CustomerPublic, CustomerUpdate
from customer_service.deps import CipherDep, PrincipalDep, ReadSessionDep, SessionDep

router = APIRouter(prefix="/customers", tags=["customers"])
_PUBLIC_FIELDS = tuple(CustomerPublic.model_fields)


def _present(
    customer: Customer, principal: Principal, cipher: FieldCipher
) -> tuple[CustomerPublic, list[str]]:
    """The file as the caller's role may see it, and the sensitive fields shown whole.

    Encrypted fields are decrypted only for roles that may see them in some form.
    """
    # Read straight off the row; the one validation is of what the caller will see.
    record = {name: getattr(customer, name, None) for name in _PUBLIC_FIELDS}
    if customer.id_number_encrypted and visibility.may_see("id_number", principal.role):
        record["id_number"] = cipher.decrypt(customer.id_number_encrypted)
    if customer.health_encrypted and visibility.may_see("health", principal.role):
        record["health"] = orjson.loads(cipher.decrypt(customer.health_encrypted))
    shown, disclosed = visibility.present(record, principal.role)
    return CustomerPublic.model_validate(shown), disclosed


def _single(
    customer: Customer, principal: Principal, cipher: FieldCipher, response: Response
) -> CustomerPublic:
    public, disclosed = _present(customer, principal, cipher)
    response.headers["ETag"] = f'"{customer.version}"'
    if disclosed:
        audit_trail.note(
            response,
            action="read",
            resource=f"customer/{customer.id}",
            customer_id=customer.id,
            fields=disclosed,
        )
    return public


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise InvalidField("If-Match", "not an ETag of this resource")
    return int(tag)


@router.post(
    "",
    response_model=CustomerPublic,
    status_code=201,
    summary="Open a customer file",
    responses=problem_responses(400, 401, 422),
)
async def create_customer(
    customer_in: CustomerCreate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    cipher: CipherDep,
) -> CustomerPublic:
    customer = await service.register(
        session, principal=principal, customer_in=customer_in, cipher=cipher
    )
    audit_trail.note(
        response,
        action="create",
        resource=f"customer/{customer.id}",
        customer_id=customer.id,
        fields=sorted(customer_in.model_dump(exclude_unset=True)),
    )
    return _single(customer, principal, cipher, response)


@router.get(
    "",
    response_model=Page[CustomerPublic],
    summary="Search customer files",
    responses=problem_responses(400, 401, 422),
)
async def list_customers(
    session: ReadSessionDep,
    principal: PrincipalDep,
    response: Response,
    cipher: CipherDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=100, description="name part or phone tail")] = None,
) -> Page[CustomerPublic]:
    rows = page_of(
        await service.search(session, principal=principal, store_id=store_id, q=q, page=page), page
    )
    presented = [_present(r, principal, cipher) for r in rows.items]
    disclosed = sorted({f for _, fields in presented for f in fields})
    if disclosed:
        # One entry per page keeps the header small; the query names what was searched.
        audit_trail.note(
            response,
            action="search",
            resource=f"customers?store_id={store_id or ''}&q={q or ''}",
            fields=disclosed,
        )
    return Page[CustomerPublic](items=[p for p, _ in presented], next_cursor=rows.next_cursor)


@router.get(
    "/{customer_id}",
    response_model=CustomerPublic,
    summary="One customer file",
    responses=problem_responses(401, 404),
)
async def get_customer(
    customer_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    response: Response,
    cipher: CipherDep,
) -> CustomerPublic:
    customer = await service.get(session, principal=principal, customer_id=customer_id)
    return _single(customer, principal, cipher, response)


@router.patch(
    "/{customer_id}",
    response_model=CustomerPublic,
    summary="Change a customer file",
    responses=problem_responses(400, 401, 404, 412, 422),
)
async def update_customer(
    customer_id: str,
    customer_in: CustomerUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    cipher: CipherDep,
    if_match: Annotated[str | None, Header()] = None,
) -> CustomerPublic:
    customer, changed = await service.update(
        session,
        principal=principal,
        customer_id=customer_id,
        customer_in=customer_in,
        expected_version=_expected_version(if_match),
        cipher=cipher,
    )
    audit_trail.note(
        response,
        action="update",
        resource=f"customer/{customer.id}",
        customer_id=customer.id,
        fields=changed,
    )
    return _single(customer, principal, cipher, response)


@router.delete(
    "/{customer_id}",
    status_code=204,
    summary="Archive a customer file",
    responses=problem_responses(401, 404),
)
async def archive_customer(
    customer_id: str, session: SessionDep, principal: PrincipalDep, response: Response
) -> Response:
    customer = await service.archive(session, principal=principal, customer_id=customer_id)
    audit_trail.note(
        response,
        action="archive",
        resource=f"customer/{customer.id}",
        customer_id=customer.id,
        fields=["status"],
    )
    return Response(status_code=204, headers=dict(response.headers))
