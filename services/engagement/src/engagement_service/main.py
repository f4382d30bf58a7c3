"""The engagement service: follow-up plans, tasks and visits, the day's work list and staff
statistics (messages and events come later), kept with a read copy of the customer files."""

from functools import partial

from fastapi import FastAPI

from crm_libs.access import guarded, require_declared
from crm_libs.events.consumer import EventConsumer
from crm_libs.events.envelope import Topics
from crm_libs.events.relay import relay_worker
from crm_libs.principal import principal_dependency
from crm_libs.service_app import create_service_app
from engagement_service.access import POLICY
from engagement_service.campaigns.job import campaign_worker
from engagement_service.campaigns.router import router as campaigns_router
from engagement_service.care.routine import routine_care_worker
from engagement_service.care.scheduled import special_days_worker
from engagement_service.complaints.router import router as complaints_router
from engagement_service.config import Settings
from engagement_service.consumed import decode_event
from engagement_service.customers.events import applied_by_version
from engagement_service.followups.router import router as tasks_router
from engagement_service.handlers import handle_events
from engagement_service.member_events.guest_files import guest_files_worker
from engagement_service.member_events.router import router as member_events_router
from engagement_service.messages.callbacks import DatabaseSink
from engagement_service.messages.providers.registry import create_provider
from engagement_service.messages.router import router as messages_router
from engagement_service.messages.worker import message_worker
from engagement_service.peer_audit import PeerAuditMiddleware
from engagement_service.stats.month_close import staff_month_worker
from engagement_service.stats.router import router as stats_router
from engagement_service.visits.router import router as visits_router


async def run_event_consumer(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    consumer = EventConsumer(
        name=settings.consumer_group,
        topics=[Topics.CUSTOMERS, Topics.PURCHASES, Topics.SCORES],
        bootstrap=settings.kafka_bootstrap,
        sessionmaker=app.state.sessionmaker,
        stopping=app.state.stopping,
        handler=partial(
            handle_events,
            horizon_days=settings.routine_horizon_days,
            default_timezone=settings.default_timezone,
        ),
        decode=decode_event,
        idempotent=applied_by_version,
    )
    await consumer.run()


# Stopped after the relay: it applies and commits what the broker still holds, then returns.
run_event_consumer.drains_on_stop = True  # type: ignore[attr-defined]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    provider = create_provider(settings)
    app = create_service_app(
        title="Engagement service",
        settings=settings,
        routers=[
            guarded(
                [
                    tasks_router,
                    visits_router,
                    stats_router,
                    complaints_router,
                    member_events_router,
                ],
                policy=POLICY,
                principal_dependency=principal_dependency,
            ),
            guarded(
                [messages_router, campaigns_router],
                policy=POLICY,
                principal_dependency=principal_dependency,
            ),
        ],
        workers=[
            run_event_consumer,
            relay_worker,
            special_days_worker,
            routine_care_worker,
            staff_month_worker,
            guest_files_worker,
            message_worker,
            campaign_worker,
        ],
    )
    app.state.sms_provider = provider
    # What the customer service disclosed to a route goes out in its audit header, for the
    # gateway to record against the caller: no route has to remember it.
    app.add_middleware(PeerAuditMiddleware)
    # The provider's delivery-status and inbound routes: called by the SMS platform, which
    # proves itself by the secret token in their path; out of the API document and the policy.
    if (callbacks := provider.callback_routes(DatabaseSink(app))) is not None:
        app.include_router(callbacks)
    require_declared(app, POLICY)
    return app
