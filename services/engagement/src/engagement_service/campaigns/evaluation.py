"""A chunk of a campaign's recipients rendered and checked against the rules a single message
obeys (messages/service.py's ``queue_message``), set-based: one statement for the files and
their consent, one for the frequency cap, one request per 500 names to the customer service,
the texts rendered in Python. The preview and the send job share it; the send job takes each
customer's lock first, as a single message does, so a message sent alongside cannot pass the
cap with the campaign's.

A recipient is left out, with the reason, when they opted out (``opted_out_by_reply``,
``consent_withdrawn``), a promotional campaign meets no consent (``no_promotional_consent``), the
cap is reached (``frequency_cap``), the file has no number (``no_phone``) or the customer service
does not show it to the sender (``not_visible``), or the rendered text holds a forbidden word
(``forbidden_words``: a name can bring one in).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from engagement_service.messages.categories import Category, forbidden_words
from engagement_service.messages.directory import CustomerDirectory
from engagement_service.messages.opt_outs import Consent, refusal
from engagement_service.messages.quiet_hours import is_quiet, quiet_ends_at
from engagement_service.messages.rendering import (
    form_of_address,
    placeholders_in,
    render,
    with_unsubscribe,
    words_found,
)
from engagement_service.messages.service import SendingRules

_LOCK_CUSTOMERS = text(
    """
    SELECT pg_advisory_xact_lock(hashtextextended('sms' || chr(10) || id, 0))
    FROM unnest(CAST(:ids AS text[])) AS id ORDER BY id
    """
)
_FILES = text(
    """
    SELECT f.customer_id, f.owner_staff_id, f.timezone, f.sms_consent_granted,
           f.sms_consent_at, o.opted_out_at
    FROM customer_file AS f
    LEFT JOIN sms_opt_out AS o ON o.customer_id = f.customer_id AND o.signature = :signature
    WHERE f.customer_id = ANY(:ids) AND f.store_id = :store_id AND f.status = 'active'
    """
)
_RECENT = text(
    """
    SELECT customer_id, count(*) AS n FROM sms_message
    WHERE store_id = :store_id AND customer_id = ANY(:ids) AND category <> 'transactional'
      AND status NOT IN ('failed', 'opted_out') AND created_at > :since
    GROUP BY customer_id
    """
)


@dataclass(frozen=True, slots=True)
class Rendered:
    customer_id: str
    staff_id: str | None
    body: str
    parameters: dict[str, str]
    status: str  # queued or held_quiet_hours
    not_before: datetime


@dataclass(slots=True)
class Evaluation:
    messages: list[Rendered] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Voice:
    """What every message of the campaign shares: the template, the store, its voice."""

    store_id: str
    category: Category
    body: str
    signature: str
    store_name: str
    staff_id: str | None
    due: datetime  # now, or the campaign's send_at when later
    # Staff names read so far (miss_you speaks as each customer's owner).
    staff_names: dict[str, str] = field(default_factory=dict)

    @property
    def used(self) -> set[str]:
        return set(placeholders_in(self.body))


async def evaluate(
    session: AsyncSession,
    voice: Voice,
    customer_ids: list[str],
    *,
    directory: CustomerDirectory,
    rules: SendingRules,
    now: datetime,
    lock: bool,
) -> Evaluation:
    """Render the chunk's messages and name who is left out and why (in customer order)."""
    result = Evaluation()
    if not customer_ids:
        return result
    ids = sorted(customer_ids)
    if lock:
        await session.execute(_LOCK_CUSTOMERS, {"ids": ids})
    files = {
        row.customer_id: row
        for row in await session.execute(
            _FILES, {"ids": ids, "store_id": voice.store_id, "signature": voice.signature}
        )
    }
    category = voice.category
    recent: dict[str, int] = {}
    if category is not Category.TRANSACTIONAL:
        since = now - timedelta(days=rules.cap_days)
        recent = {
            row.customer_id: row.n
            for row in await session.execute(
                _RECENT, {"ids": ids, "store_id": voice.store_id, "since": since}
            )
        }
    reasons: dict[str, str] = {}
    for customer_id in ids:
        row = files.get(customer_id)
        if row is None:
            reasons[customer_id] = "file_not_active"
            continue
        consent = Consent(
            sms_consent_granted=row.sms_consent_granted,
            sms_consent_at=row.sms_consent_at,
            opted_out_at=row.opted_out_at,
        )
        if (reason := refusal(category, consent)) is not None:
            reasons[customer_id] = reason
        elif recent.get(customer_id, 0) >= rules.cap_messages:
            reasons[customer_id] = "frequency_cap"
    people = await directory.people([c for c in ids if c not in reasons])
    used = voice.used
    forbidden = forbidden_words(category, rules.forbidden_overrides)
    for customer_id in ids:
        if customer_id in reasons:
            result.excluded.append((customer_id, reasons[customer_id]))
            continue
        person = people.get(customer_id)
        if person is None:
            result.excluded.append((customer_id, "not_visible"))
            continue
        if not person.has_phone:
            result.excluded.append((customer_id, "no_phone"))
            continue
        row = files[customer_id]
        staff_id = voice.staff_id
        if category is Category.MISS_YOU and row.owner_staff_id:
            staff_id = row.owner_staff_id
        staff_name = ""
        if "staff_name" in used:
            staff_name = await _staff_name(voice, directory, staff_id)
            if not staff_name:
                result.excluded.append((customer_id, "no_staff_name"))
                continue
        values = {
            "customer_name": person.name or "",
            "form_of_address": form_of_address(person.name, person.gender),
            "staff_name": staff_name,
            "store": voice.store_name,
        }
        body = render(voice.body, values)
        if words_found(body, forbidden):
            result.excluded.append((customer_id, "forbidden_words"))
            continue
        if category is Category.PROMOTIONAL:
            body = with_unsubscribe(body, rules.unsubscribe_suffix)
        zone = ZoneInfo(row.timezone or rules.default_timezone)
        held = is_quiet(voice.due, zone)
        result.messages.append(
            Rendered(
                customer_id=customer_id,
                staff_id=staff_id,
                body=body,
                parameters={k: v for k, v in values.items() if k in used},
                status="held_quiet_hours" if held else "queued",
                not_before=quiet_ends_at(voice.due, zone) if held else voice.due,
            )
        )
    return result


async def _staff_name(voice: Voice, directory: CustomerDirectory, staff_id: str | None) -> str:
    if not staff_id:
        return ""
    if staff_id not in voice.staff_names:
        voice.staff_names[staff_id] = await directory.staff_name(staff_id) or ""
    return voice.staff_names[staff_id]


def counted(excluded: list[tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, reason in excluded:
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def merge_counts(into: dict[str, Any], more: dict[str, int]) -> dict[str, int]:
    merged = {k: int(v) for k, v in into.items()}
    for reason, n in more.items():
        merged[reason] = merged.get(reason, 0) + n
    return merged
