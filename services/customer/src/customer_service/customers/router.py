from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from crm_libs.db import request_connection
from crm_libs.field_crypto import FieldCipher
from crm_libs.pagination import MAX_LIMIT, Page, PageParams, next_cursor, page_params
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, problem_responses
from customer_service import audit_trail
from customer_service.config import Settings
from customer_service.customers import privacy, profile, search, service, visibility
from customer_service.customers.schemas import (
    CustomerCreate,
    CustomerName,
    CustomerPublic,
    CustomerUpdate,
    HealthRecord,
)
from customer_service.deps import CipherDep, PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/customers", tags=["customers"])
_PUBLIC_FIELDS = tuple(CustomerPublic.model_fields)
# CustomerPublic's JSON form, written by orjson from the row (tests/test_customer_json.py keeps
# the two equal): times in UTC end in "Z", like pydantic's.
_JSON_OPTIONS = orjson.OPT_UTC_Z


def _present(
    row: Mapping[str, Any], principal: Principal, cipher: FieldCipher
) -> tuple[dict[str, Any], list[str]]:
    """The file as the caller's role may see it (CustomerPublic's fields, in its order), and
    the sensitive fields shown whole.

    Built straight from the row: a field of the public schema is read from the column of the
    same name, so a new column is shown by adding it to the model and the schema; the fields
    stored in another form come from ``profile.public_values``. Encrypted fields are decrypted
    only for roles that may see them in some form.
    """
    record = {name: row.get(name) for name in _PUBLIC_FIELDS}
    phones = (
        profile.opened_phones(row["phones_encrypted"], cipher)
        if visibility.may_see("phone", principal.role)
        else []
    )
    record.update(profile.public_values(row, phones))
    if row["id_number_encrypted"] and visibility.may_see("id_number", principal.role):
        record["id_number"] = cipher.decrypt(row["id_number_encrypted"])
    if row["health_encrypted"] and visibility.may_see("health", principal.role):
        # Through the model: what was stored may leave out the lists that were empty.
        health = HealthRecord.model_validate_json(cipher.decrypt(row["health_encrypted"]))
        record["health"] = health.model_dump(mode="json")
    return visibility.present(record, principal.role)


def _single(
    row: Mapping[str, Any],
    principal: Principal,
    cipher: FieldCipher,
    *,
    status_code: int = 200,
    noted: Response | None = None,
) -> Response:
    """One file as JSON, serialised once, with its ETag and the audit entries of ``noted`` (what
    the route already recorded) followed by what this answer discloses."""
    shown, disclosed = _present(row, principal, cipher)
    response = Response(
        orjson.dumps(shown, option=_JSON_OPTIONS),
        status_code=status_code,
        media_type="application/json",
        headers=dict(noted.headers) if noted is not None else None,
    )
    response.headers["ETag"] = f'"{row["version"]}"'
    if disclosed:
        audit_trail.note(
            response,
            action="read",
            resource=f"customer/{row['id']}",
            customer_id=row["id"],
            fields=disclosed,
        )
    return response


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
    settings: SettingsDep,
) -> Response:
    customer = await service.register(
        session,
        principal=principal,
        customer_in=customer_in,
        protection=service.Protection(cipher, settings.phone_hash_key),
    )
    audit_trail.note(
        response,
        action="create",
        resource=f"customer/{customer.id}",
        customer_id=customer.id,
        fields=sorted(customer_in.model_dump(exclude_unset=True)),
    )
    return _single(service.row_of(customer), principal, cipher, status_code=201, noted=response)


@router.get(
    "",
    response_model=Page[CustomerPublic] | Page[CustomerName],
    summary="Search customer files",
    description="`fields=` is a sparse read: each file's id and the fields asked for among "
    "`name`, `gender` and `has_phone` (whether it has a number), nothing else read or "
    "decrypted (a list elsewhere that shows names, a campaign addressing its recipients); any "
    "other field is a 422 naming `fields`.",
    responses=problem_responses(400, 401, 422),
)
async def list_customers(
    request: Request,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="name part, pinyin or its initials, or phone tail"),
    ] = None,
    owner_staff_id: Annotated[str | None, Query(max_length=64)] = None,
    value_tier: search.ValueTier | None = None,
    lifecycle: search.Lifecycle | None = None,
    status: search.Status = "active",
    ids: Annotated[
        list[str] | None,
        Query(description="only these files (at most a page's worth): a list's names at once"),
    ] = None,
    fields: Annotated[
        str | None,
        Query(
            max_length=100,
            description="a sparse read: `id,name,gender,has_phone` (the id is always given)",
        ),
    ] = None,
) -> Response:
    settings: Settings = request.app.state.settings
    if ids is not None and (len(ids) > MAX_LIMIT or any(len(i) > 64 for i in ids)):
        raise InvalidField("ids", f"at most {MAX_LIMIT} ids of at most 64 characters")
    columns = search.sparse_fields(fields)
    tail = search.longer_tail(q, principal=principal)
    async with request_connection(request) as conn:
        rows = await search.search(
            conn,
            principal=principal,
            page=page,
            phone_hash_key=settings.phone_hash_key,
            store_id=store_id,
            q=q,
            owner_staff_id=owner_staff_id,
            value_tier=value_tier,
            lifecycle=lifecycle,
            status=status,
            ids=ids,
            # A longer phone tail is checked on the numbers: the whole rows, then only columns.
            columns=columns if tail is None else None,
        )
    cipher: FieldCipher = request.app.state.cipher
    if columns is not None and tail is None:
        # Nothing encrypted was read: the columns, masked by role as the whole file's would be.
        presented = [visibility.present(dict(row), principal.role) for row in rows[: page.limit]]
    else:
        presented = [_present(row, principal, cipher) for row in rows[: page.limit]]
    if tail:
        # The index found the last four digits; the numbers, decrypted, say the rest. A page may
        # come out short: the cursor still follows the rows read.
        presented = [
            (shown, disclosed)
            for shown, disclosed in presented
            if any(p["number"].endswith(tail) for p in shown["phones"])
        ]
        if columns is not None:
            # Only what is shown is disclosed: the numbers checked are not.
            presented = [
                ({c: shown[c] for c in columns}, [f for f in disclosed if f in columns])
                for shown, disclosed in presented
            ]
    body = {"items": [shown for shown, _ in presented], "next_cursor": next_cursor(rows, page)}
    response = Response(orjson.dumps(body, option=_JSON_OPTIONS), media_type="application/json")
    disclosed = sorted({f for _, shown_whole in presented for f in shown_whole})
    if disclosed:
        # One entry per page keeps the header small; the query names what was searched.
        audit_trail.note(
            response,
            action="search",
            resource=f"customers?store_id={store_id or ''}&q={q or ''}",
            fields=disclosed,
        )
    return response


@router.get(
    "/{customer_id}",
    response_model=CustomerPublic,
    summary="One customer file",
    responses=problem_responses(401, 404),
)
async def get_customer(customer_id: str, request: Request, principal: PrincipalDep) -> Response:
    # The hottest route: the driver connection, no session, one dependency (the caller).
    async with request_connection(request) as conn:
        row = await service.read(conn, principal=principal, customer_id=customer_id)
    if row["status"] in (service.ERASED, privacy.MERGED):
        # Anonymised for good, or merged into another file (customers/merge.py): only the
        # pointer its purchases and events still name; a client follows ``merged_into``.
        return Response(
            orjson.dumps(privacy.pointer(row)),
            media_type="application/json",
            headers={"ETag": f'"{row["version"]}"'},
        )
    return _single(row, principal, request.app.state.cipher)


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
    settings: SettingsDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    customer, changed = await service.update(
        session,
        principal=principal,
        customer_id=customer_id,
        customer_in=customer_in,
        expected_version=_expected_version(if_match),
        protection=service.Protection(cipher, settings.phone_hash_key),
    )
    audit_trail.note(
        response,
        action="update",
        resource=f"customer/{customer.id}",
        customer_id=customer.id,
        fields=changed,
    )
    return _single(service.row_of(customer), principal, cipher, noted=response)


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
