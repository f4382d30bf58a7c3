"""Fields collected on a visit, applied to the customer's file (DOMAIN.md §1: "Visits can carry
collected fields back into the file").

A visit's ``collected`` goes through the rules of ``PATCH /customers/{id}`` (the same schema and
the same ``customers.service.update``): the change bumps the file's version and is announced as
``customer.updated`` with ``changed``. A value the rules refuse is skipped, named in the trail
and the log, and the rest still goes in: one mistyped birthday must not lose the phone number
collected beside it, nor send the whole visit to the dead-letter topic. Fields a visit may not
set (the store, the owner, the status) are ignored. Every visit's effect is recorded in
``customer_change`` (visits/models.py says why there).
"""

import logging
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.envelope import EventEnvelope
from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Principal, Role
from crm_libs.problems import NotFound, ProblemError
from customer_service.config import Settings
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.customers.schemas import CustomerUpdate
from customer_service.visits.events import VisitRecorded
from customer_service.visits.models import CustomerChange

log = logging.getLogger(__name__)

# A visit adds what the customer told; where the file belongs and who serves it are decided
# elsewhere (a manager, the reassignment rules, archiving and merging).
NOT_FROM_VISITS = frozenset({"store_id", "owner_staff_id", "status", "merged_into", "id"})
# Their refusal messages may quote the value (a number of the wrong kind): the trail and the log
# keep personal data out and say only that the value was refused.
_SENSITIVE = frozenset({"phone", "phones", "email", "id_number", "address", "health"})
# A merge leaves a pointer to the survivor; a chain of merges is followed this far.
_MERGE_HOPS = 5


class _TriedAlone(Exception):
    """Rolls back a field tried on its own."""


@lru_cache(maxsize=1)
def _protection() -> customers.Protection:
    # The consumer runs in the service's process, under the service's settings (the same
    # environment the app read); built once, on the first visit.
    settings = Settings()
    return customers.Protection(
        FieldCipher(settings.field_encryption_keys), settings.phone_hash_key
    )


async def apply_visits(session: AsyncSession, events: list[EventEnvelope]) -> None:
    """``visit.recorded`` events, in the batch's order, each to its customer's file."""
    for event in events:
        # A payload without a visit id is not this contract's event: that one is dead-lettered.
        visit = VisitRecorded.model_validate(event.payload)
        await apply_visit(
            session,
            store_id=event.store_id,
            customer_id=event.customer_id,
            visit=visit,
            protection=_protection(),
        )


async def apply_visit(
    session: AsyncSession,
    *,
    store_id: str,
    customer_id: str,
    visit: VisitRecorded,
    protection: customers.Protection,
) -> CustomerChange | None:
    """Apply one visit's collected fields; the trail row written, or None when the file is
    gone (unknown in the store, or erased)."""
    if not visit.collected:
        return None
    # As the staff member who visited: forward-only prospect stages and every other rule of a
    # staff member's PATCH apply.
    principal = Principal(subject=f"visit:{visit.visit_id}", role=Role.STAFF, store_id=store_id)
    customer = await _target(session, principal=principal, customer_id=customer_id, visit=visit)
    if customer is None:
        return None
    ignored = sorted(set(visit.collected) & NOT_FROM_VISITS)
    fields = {k: v for k, v in visit.collected.items() if k not in NOT_FROM_VISITS}
    skipped = _refused_by_schema(fields)
    for field in skipped:
        fields.pop(field)
    # A rolled-back attempt expires the file's attributes: the id is kept aside.
    target_id = customer.id
    changed: list[str] = []
    while fields:
        try:
            async with session.begin_nested():
                customer, changed = await customers.update(
                    session,
                    principal=principal,
                    customer_id=target_id,
                    customer_in=CustomerUpdate.model_validate(fields),
                    expected_version=None,
                    protection=protection,
                )
            break
        except ProblemError as exc:
            refused = _named(exc, fields) or await _failing_alone(
                session,
                principal=principal,
                customer_id=target_id,
                fields=fields,
                protection=protection,
            )
            for field, message in refused.items():
                skipped[field] = message
                fields.pop(field)
    if not changed:
        # Read again: what a failed attempt expired is loaded by the query, not lazily.
        customer = await customers.get(session, principal=principal, customer_id=target_id)
    if skipped or ignored:
        log.warning(
            "visit fields not applied",
            extra={
                "fields": {
                    "visit_id": visit.visit_id,
                    "customer_id": customer.id,
                    "skipped": skipped,
                    "ignored": ignored,
                }
            },
        )
    change = CustomerChange(
        store_id=customer.store_id,
        customer_id=customer.id,
        origin="visit",
        origin_id=visit.visit_id,
        staff_id=visit.staff_id,
        occurred_at=visit.occurred_at,
        changed=changed,
        skipped=[{"field": f, "message": m} for f, m in sorted(skipped.items())],
        ignored=ignored,
        version=customer.version,
    )
    session.add(change)
    await session.flush()
    return change


async def _target(
    session: AsyncSession, *, principal: Principal, customer_id: str, visit: VisitRecorded
) -> Customer | None:
    """The file the visit's fields belong to: a merged-away file's survivor; None for a file
    the store does not have or one erased (an erased file never takes personal data again)."""
    for _ in range(_MERGE_HOPS):
        try:
            customer = await customers.get(
                session, principal=principal, customer_id=customer_id, for_update=True
            )
        except NotFound:
            break
        if customer.status == "merged" and customer.merged_into:
            customer_id = customer.merged_into
            continue
        if customer.status == "erased":
            break
        return customer
    log.warning(
        "visit for no file of the store, not applied",
        extra={"fields": {"visit_id": visit.visit_id, "customer_id": customer_id}},
    )
    return None


def _top(field: str) -> str:
    """The collected field an error's name points into (``phones.0.number`` → ``phones``)."""
    return field.split(".", 1)[0]


def _message(field: str, message: str) -> str:
    return "the value was refused by the file's rules" if field in _SENSITIVE else message


def _refused_by_schema(fields: dict[str, Any]) -> dict[str, str]:
    """The fields the write schema refuses (unknown ones included), with its reason."""
    try:
        CustomerUpdate.model_validate(fields)
    except ValidationError as exc:
        refused: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            if field in fields:
                refused.setdefault(field, _message(field, error["msg"]))
        # An error no field explains (none so far): nothing of this visit can be trusted.
        return refused or dict.fromkeys(fields, "the collected fields were not readable")
    return {}


def _named(exc: ProblemError, fields: dict[str, Any]) -> dict[str, str]:
    named: dict[str, str] = {}
    for error in exc.errors or []:
        field = _top(error["field"])
        if field in fields:
            named.setdefault(field, _message(field, error["message"]))
    return named


async def _failing_alone(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: str,
    fields: dict[str, Any],
    protection: customers.Protection,
) -> dict[str, str]:
    """The fields refused when tried one by one (each rolled back): for a rule between a
    collected field and one the file holds, which names the latter (a birthday after the
    file's wedding anniversary). Every field, should none fail alone."""
    failing: dict[str, str] = {}
    for field, value in fields.items():
        try:
            async with session.begin_nested():
                await customers.update(
                    session,
                    principal=principal,
                    customer_id=customer_id,
                    customer_in=CustomerUpdate.model_validate({field: value}),
                    expected_version=None,
                    protection=protection,
                )
                raise _TriedAlone
        except _TriedAlone:
            pass
        except ProblemError as exc:
            message = exc.errors[0]["message"] if exc.errors else exc.detail
            failing[field] = _message(field, message)
    return failing or dict.fromkeys(fields, "refused together with the visit's other fields")
