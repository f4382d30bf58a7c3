"""Routes of duplicate candidates and merges (customers/duplicates.py, customers/merge.py).

Registered before the customers router: ``GET /customers/duplicates`` would otherwise be read
as the file whose id is "duplicates".
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from crm_libs.pagination import Page, PageParams, page_params
from crm_libs.problems import InvalidField, problem_responses
from customer_service import audit_trail
from customer_service.customers import duplicates, merge
from customer_service.deps import CipherDep, PrincipalDep, ReadSessionDep, SessionDep

router = APIRouter(prefix="/customers", tags=["customers"])


class DuplicatePair(BaseModel):
    customer_id: str
    duplicate_id: str
    names: list[str]
    keys: list[str] = Field(description="the keys that agree: phone, name_pinyin, …")
    rules: list[str] = Field(description="the rules of customers/duplicates.py that hold")
    confidence: float
    suggested_survivor_id: str


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_id: str = Field(min_length=1, max_length=64)


class MergeRecord(BaseModel):
    id: str
    store_id: str
    survivor_id: str
    duplicate_id: str
    merged_by: str
    merged_at: datetime
    taken: list[str]
    moved: dict[str, Any]


class MergeOut(BaseModel):
    survivor_id: str
    duplicate_id: str
    version: int
    changed: list[str]
    merge: MergeRecord


@router.get(
    "/duplicates",
    response_model=Page[DuplicatePair],
    summary="Duplicate candidates of a store, with the keys that agree",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_duplicates(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    items, cursor = await duplicates.candidates(
        session, principal=principal, store_id=store_id, page=page
    )
    return {"items": items, "next_cursor": cursor}


@router.post(
    "/{customer_id}/merge",
    response_model=MergeOut,
    summary="Merge a duplicate file into this one",
    responses=problem_responses(401, 404, 409, 412, 422),
)
async def merge_customer(
    customer_id: str,
    merge_in: MergeIn,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
    cipher: CipherDep,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    expected = None
    if if_match is not None:
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise InvalidField("If-Match", "not an ETag of this resource")
        expected = int(tag)
    done = await merge.merge(
        session,
        principal=principal,
        survivor_id=customer_id,
        duplicate_id=merge_in.duplicate_id,
        expected_version=expected,
        cipher=cipher,
    )
    pointer = ["status", "merged_into"]
    for file, fields in ((done.survivor, done.changed), (done.duplicate, pointer)):
        audit_trail.note(
            response,
            action="merge",
            resource=f"customer/{file.id}",
            customer_id=file.id,
            fields=fields,
        )
    response.headers["ETag"] = f'"{done.survivor.version}"'
    return {
        "survivor_id": done.survivor.id,
        "duplicate_id": done.duplicate.id,
        "version": done.survivor.version,
        "changed": done.changed,
        "merge": done.record.model_dump(),
    }


@router.get(
    "/{customer_id}/merges",
    response_model=Page[MergeRecord],
    summary="The merges a file took part in (survivor or merged away)",
    responses=problem_responses(401, 404),
)
async def list_merges(
    customer_id: str, session: ReadSessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    records = await merge.merges_of(session, principal=principal, customer_id=customer_id)
    return {"items": [r.model_dump() for r in records], "next_cursor": None}
