"""The console provider of the embedded default: it logs the message and reports it delivered.

It sends nothing, so a developer's stack never texts a real customer; the number is logged with
its middle digits masked.
"""

import logging

from fastapi import APIRouter

from engagement_service.messages.providers.base import (
    CallbackSink,
    OutgoingMessage,
    SendAccepted,
    SendOutcome,
)

log = logging.getLogger(__name__)


def _masked(phone: str) -> str:
    return phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:] if len(phone) > 7 else "***"


class ConsoleProvider:
    """Logs each message; its acceptance is the delivery."""

    name = "console"

    async def send(self, message: OutgoingMessage) -> SendOutcome:
        log.info(
            "sms to %s 【%s】%s",
            _masked(message.phone),
            message.signature,
            message.text,
            extra={"message_id": message.out_id, "category": message.category},
        )
        # The message's own id is the provider id: a resend after a restart logs the same id.
        return SendAccepted(provider_message_id=f"console-{message.out_id}", delivered=True)

    def callback_routes(self, sink: CallbackSink) -> APIRouter | None:
        return None

    async def aclose(self) -> None:
        return None
