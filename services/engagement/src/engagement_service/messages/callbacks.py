"""What a provider's callback routes report, written to the database (providers/base.py's
:class:`CallbackSink`): delivery statuses and the customers' replies."""

import logging
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import text

from engagement_service.config import Settings
from engagement_service.messages.opt_outs import phone_hash, record_inbound
from engagement_service.messages.providers.base import DeliveryReport, InboundReply

log = logging.getLogger(__name__)

# By the provider's id, or by our id (the out-id) when the report came before the send's answer
# was recorded. A report never undoes a later one: delivered stays delivered.
_REPORT = text(
    """
    UPDATE sms_message
    SET status = CASE WHEN :delivered THEN 'delivered' ELSE 'failed' END,
        delivered_at = CASE WHEN :delivered THEN coalesce(:at, now()) END,
        failed_at = CASE WHEN :delivered THEN NULL ELSE coalesce(:at, now()) END,
        reason = CASE WHEN :delivered THEN NULL ELSE :reason END,
        provider_message_id = coalesce(provider_message_id, :provider_message_id)
    WHERE id = (
        SELECT id FROM sms_message
        WHERE (provider_message_id = :provider_message_id OR id = :out_id)
        LIMIT 1
    ) AND status IN ('queued', 'held_quiet_hours', 'sent', 'failed')
    RETURNING id
    """
)
_KNOWN = text(
    "SELECT 1 FROM sms_message WHERE provider_message_id = :provider_message_id OR id = :out_id"
)


class DatabaseSink:
    """The sink the provider's routes call; one transaction per report."""

    def __init__(self, app: FastAPI) -> None:
        # The engine is made in the lifespan, after the routes: looked up when a report comes.
        self._app = app

    async def delivery_reported(self, report: DeliveryReport) -> bool:
        params = {
            "delivered": report.delivered,
            "at": report.reported_at,
            "reason": f"{report.error_code or 'undelivered'}: {report.error_reason or ''}".strip(),
            "provider_message_id": report.provider_message_id,
            "out_id": report.out_id,
        }
        async with self._app.state.sessionmaker() as session:
            updated = (await session.execute(_REPORT, params)).first()
            if updated is None:
                known = (await session.execute(_KNOWN, params)).first()
                if known is None:
                    log.warning(
                        "a delivery report for no known message, ignored",
                        extra={
                            "fields": {
                                "provider_message_id": report.provider_message_id,
                                "out_id": report.out_id,
                            }
                        },
                    )
                    return False
            await session.commit()
        return True

    async def inbound_received(self, reply: InboundReply) -> None:
        settings: Settings = self._app.state.settings
        async with self._app.state.sessionmaker() as session:
            action = await record_inbound(
                session,
                signature=reply.signature,
                phone_hash_or_customer=phone_hash(reply.phone, secret=settings.principal_secret),
                text=reply.text,
                received_at=reply.received_at or datetime.now(UTC),
                opt_out_keywords=settings.sms_opt_out_keywords,
                resubscribe_keywords=settings.sms_resubscribe_keywords,
            )
            await session.commit()
        if action:
            log.info("a reply changed consent", extra={"fields": {"action": action}})
