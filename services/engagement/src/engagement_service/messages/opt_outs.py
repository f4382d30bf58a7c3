"""Who may be sent what (DOMAIN.md §5's carrier rules), decided when a message is queued and
again when the worker sends it:

- a transactional message always goes (an order's notice is not care the customer refused);
- every other message stops when the customer opted out under its signature: consent withdrawn
  in the customer file (engagement's copy: not granted, with the time it was withdrawn), or a
  reply with an opt-out keyword (``sms_opt_out``) not followed by a re-subscribe keyword or a
  consent given later in the file;
- a promotional message goes only to a customer whose file records consent given.

No record of consent at all is not an opt-out: a care message may go, an advert may not.
"""

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession

from engagement_service.messages.categories import Category

log = logging.getLogger(__name__)

OPTED_OUT_BY_REPLY = "opted_out_by_reply"
CONSENT_WITHDRAWN = "consent_withdrawn"
NO_PROMOTIONAL_CONSENT = "no_promotional_consent"

REASONS = {
    OPTED_OUT_BY_REPLY: "The customer replied with an opt-out keyword under this signature",
    CONSENT_WITHDRAWN: "The customer withdrew consent to messages in the customer file",
    NO_PROMOTIONAL_CONSENT: "Promotional messages go only to customers who opted in",
}


@dataclass(frozen=True, slots=True)
class Consent:
    sms_consent_granted: bool
    sms_consent_at: datetime | None
    # When the customer replied with an opt-out keyword under the signature, if they did.
    opted_out_at: datetime | None


def refusal(category: Category, consent: Consent) -> str | None:
    """Why ``category`` may not be sent to the customer now, or None."""
    if category is Category.TRANSACTIONAL:
        return None
    granted_at = consent.sms_consent_at if consent.sms_consent_granted else None
    if consent.opted_out_at is not None and (
        granted_at is None or granted_at <= consent.opted_out_at
    ):
        return OPTED_OUT_BY_REPLY
    if not consent.sms_consent_granted and consent.sms_consent_at is not None:
        return CONSENT_WITHDRAWN
    if category is Category.PROMOTIONAL and not consent.sms_consent_granted:
        return NO_PROMOTIONAL_CONSENT
    return None


_CONSENT_SQL = sql(
    """
    SELECT f.sms_consent_granted, f.sms_consent_at, o.opted_out_at
    FROM customer_file AS f
    LEFT JOIN sms_opt_out AS o ON o.customer_id = f.customer_id AND o.signature = :signature
    WHERE f.customer_id = :customer_id
    """
)


async def consent_of(session: AsyncSession, *, customer_id: str, signature: str) -> Consent:
    """The customer's consent under ``signature`` as engagement knows it now."""
    row = (
        await session.execute(_CONSENT_SQL, {"customer_id": customer_id, "signature": signature})
    ).one_or_none()
    if row is None:
        return Consent(sms_consent_granted=False, sms_consent_at=None, opted_out_at=None)
    return Consent(
        sms_consent_granted=row.sms_consent_granted,
        sms_consent_at=row.sms_consent_at,
        opted_out_at=row.opted_out_at,
    )


def phone_hash(phone: str, *, secret: str) -> str:
    """A keyed hash of the number's digits (a mainland number's +86 dropped): replies are
    matched to customers by it, and the number itself is never kept here."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    # Derived from the service's principal secret, which production already requires private,
    # under its own label so that the hash reveals nothing about the secret's other use.
    key = hashlib.sha256(b"crm sms phone hash\x00" + secret.encode()).digest()
    return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()


def _keyword(reply: str) -> str:
    return re.sub(r"\s+", "", reply).upper()


_CUSTOMERS_BY_PHONE = sql(
    """
    SELECT DISTINCT customer_id FROM sms_message
    WHERE signature = :signature AND phone_hash = :phone_hash
    """
)
_OPT_OUT = sql(
    """
    INSERT INTO sms_opt_out (signature, customer_id, keyword, opted_out_at)
    VALUES (:signature, :customer_id, :keyword, :at)
    ON CONFLICT (signature, customer_id) DO UPDATE
    SET keyword = EXCLUDED.keyword, opted_out_at = EXCLUDED.opted_out_at
    """
)
_RESUBSCRIBE = sql(
    "DELETE FROM sms_opt_out WHERE signature = :signature AND customer_id = :customer_id"
)


async def record_inbound(
    session: AsyncSession,
    *,
    signature: str,
    phone_hash_or_customer: str,
    text: str,
    received_at: datetime,
    opt_out_keywords: list[str],
    resubscribe_keywords: list[str],
) -> str | None:
    """Apply a customer's reply under ``signature``: ``opted_out``, ``resubscribed`` or None
    (not a keyword, or no customer known by that number or id). ``phone_hash_or_customer`` is
    the number's :func:`phone_hash` or a customer id."""
    word = _keyword(text)
    if word in {_keyword(k) for k in opt_out_keywords}:
        action, statement = "opted_out", _OPT_OUT
    elif word in {_keyword(k) for k in resubscribe_keywords}:
        action, statement = "resubscribed", _RESUBSCRIBE
    else:
        return None
    customers = list(
        (
            await session.execute(
                _CUSTOMERS_BY_PHONE,
                {"signature": signature, "phone_hash": phone_hash_or_customer},
            )
        ).scalars()
    )
    if not customers:
        known = await session.execute(
            sql("SELECT customer_id FROM customer_file WHERE customer_id = :id"),
            {"id": phone_hash_or_customer},
        )
        customers = list(known.scalars())
    if not customers:
        log.warning(
            "a reply from a number no message went to", extra={"fields": {"signature": signature}}
        )
        return None
    for customer_id in customers:
        await session.execute(
            statement,
            {
                "signature": signature,
                "customer_id": customer_id,
                "keyword": word,
                "at": received_at,
            },
        )
    # Messages already queued are not touched here: the worker checks again when it sends.
    return action
