"""What the message worker needs from an SMS provider, and what a provider hands back to it.

The worker (messages/worker.py) claims a queued message, builds an :class:`OutgoingMessage` and
calls :meth:`SmsProvider.send`; the answer is one of three outcomes:

- :class:`SendAccepted`: the provider took it and named it (``provider_message_id``); the worker
  records that id and marks the message ``sent``. A provider that reports delivery on the spot
  (the console provider) says so with ``delivered=True`` and the message is ``delivered`` at once.
- :class:`SendRetryable`: a timeout, a throttle, a 5xx, a network error — the message stays queued
  and is tried again after a backoff (``retry_after_seconds`` when the provider says how long).
- :class:`SendRejected`: the provider will never take this message (invalid number, signature or
  template refused, content blocked); the message is marked ``failed`` for good with the code.

A provider must not raise for an ordinary failure: it maps it to one of the outcomes. An
exception escaping ``send`` is treated as retryable.

Idempotency: ``OutgoingMessage.out_id`` is the message's own id and stays the same on every
attempt. A provider passes it as the request's out-id / idempotency field where its API has one
(Alibaba Cloud SMS: ``OutId``), so a retry after a lost answer can be matched to the first
attempt, and delivery reports come back carrying it.

Callbacks: a provider with delivery-status reports or inbound replies exposes its own HTTP routes
(:meth:`SmsProvider.callback_routes`), checks their signatures itself, and hands what it parsed to
the :class:`CallbackSink` it is given; the sink (messages/callbacks.py) writes the database. A
callback for a message the sink does not know is ignored (``delivery_reported`` returns False) and
the provider answers the platform as its API expects (usually success, so it stops resending).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from fastapi import APIRouter

CarrierClass = Literal["notification", "promotional"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message as the provider sends it."""

    # The message's id in engagement: the provider's out-id, the same on every attempt.
    out_id: str
    # The destination in the form the customer file holds it (mainland mobiles: 11 digits).
    phone: str
    # The sender signature without its brackets (店名); the carrier shows it as 【店名】.
    signature: str
    # The body as rendered (placeholders filled, 回TD退订 appended for promotional), without the
    # signature: providers whose API takes the signature apart (Alibaba Cloud) send it as a
    # parameter, others prefix 【signature】.
    text: str
    carrier_class: CarrierClass
    # The template's category (holiday, birthday, ..., promotional) and its id, for providers
    # that send by a registered template code rather than free text.
    category: str
    template_id: str | None = None
    # The placeholders' values as rendered, for template-code providers.
    parameters: dict[str, str] = field(default_factory=dict)
    # How many attempts came before this one (0 on the first).
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class SendAccepted:
    """The provider took the message."""

    provider_message_id: str
    # True when the provider's acceptance is already the delivery (console): no report will come.
    delivered: bool = False


@dataclass(frozen=True, slots=True)
class SendRetryable:
    """Not sent this time; try again later."""

    reason: str
    code: str | None = None
    # How long the provider asked us to wait (a throttle's Retry-After), if it said.
    retry_after_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SendRejected:
    """Never to be sent: the provider refused this message for good (e.g. an invalid number)."""

    reason: str
    code: str | None = None


SendOutcome = SendAccepted | SendRetryable | SendRejected


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery-status report from the provider's callback."""

    # At least one of the two identifies the message; the sink looks up by provider id first.
    provider_message_id: str | None
    out_id: str | None
    delivered: bool
    # The carrier's code when not delivered (e.g. Alibaba Cloud's ``err_code``).
    error_code: str | None = None
    error_reason: str | None = None
    reported_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboundReply:
    """A customer's reply to a message, from the provider's inbound callback."""

    # The signature the reply answered (opt-out applies to everything under it).
    signature: str
    phone: str
    text: str
    received_at: datetime | None = None


@runtime_checkable
class CallbackSink(Protocol):
    """Where a provider's callback routes hand what they parsed (messages/callbacks.py)."""

    async def delivery_reported(self, report: DeliveryReport) -> bool:
        """Record a delivery report; False when no message matches it (ignored, logged)."""
        ...

    async def inbound_received(self, reply: InboundReply) -> None:
        """Record an inbound reply: an opt-out or re-subscribe keyword changes the consent."""
        ...


@runtime_checkable
class SmsProvider(Protocol):
    """An SMS platform as the message worker uses it."""

    # The name ``CRM_SMS_PROVIDER`` selects it by (console, aliyun).
    name: str

    async def send(self, message: OutgoingMessage) -> SendOutcome:
        """Send one message; map every ordinary failure to an outcome rather than raise."""
        ...

    def callback_routes(self, sink: CallbackSink) -> APIRouter | None:
        """The provider's delivery-status and inbound routes (signature-checked), or None."""
        ...

    async def aclose(self) -> None:
        """Release connections at shutdown."""
        ...
