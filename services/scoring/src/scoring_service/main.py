"""The scoring service: aggregates, value tiers and scores, recomputed from purchase events."""

from fastapi import FastAPI

from crm_libs.access import guarded, require_declared
from crm_libs.events.consumer import EventConsumer
from crm_libs.events.envelope import Topics
from crm_libs.events.relay import relay_worker
from crm_libs.principal import principal_dependency
from crm_libs.service_app import create_service_app
from scoring_service.access import POLICY
from scoring_service.analysis.month_summary_fold import month_summary_fold_worker
from scoring_service.analysis.router import router as analysis_router
from scoring_service.config import Settings
from scoring_service.report.router import router as report_router
from scoring_service.scores.consumed import decode_event
from scoring_service.scores.fits_scheduled import model_refit_worker
from scoring_service.scores.floor_router import router as floor_router
from scoring_service.scores.handlers import claimed_by_its_fact, make_batch_handler, prepare_batch
from scoring_service.scores.model_router import router as model_router
from scoring_service.scores.router import router as scores_router
from scoring_service.scores.scheduled import ageing_worker, window_refresh_worker
from scoring_service.scores.segment_router import router as segment_router
from scoring_service.scores.tier_rules_router import router as tier_rules_router


async def run_event_consumer(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    consumer = EventConsumer(
        name=settings.consumer_group,
        # Engagement: member-event attendance and guests, for the ladder (scores/signals.py).
        topics=[Topics.PURCHASES, Topics.CUSTOMERS, Topics.ENGAGEMENT],
        bootstrap=settings.kafka_bootstrap,
        sessionmaker=app.state.sessionmaker,
        stopping=app.state.stopping,
        handler=make_batch_handler(as_of=settings.as_of),
        decode=decode_event,
        prepare=prepare_batch,
        idempotent=claimed_by_its_fact,
        max_records=settings.consumer_max_records,
    )
    await consumer.run()


# Stopped after the relay: it applies and commits what the broker still holds, then returns.
run_event_consumer.drains_on_stop = True  # type: ignore[attr-defined]


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(
        title="Scoring service",
        settings=settings or Settings(),
        routers=[
            guarded(
                [
                    scores_router,
                    floor_router,
                    model_router,
                    segment_router,
                    tier_rules_router,
                    analysis_router,
                    report_router,
                ],
                policy=POLICY,
                principal_dependency=principal_dependency,
            )
        ],
        workers=[
            run_event_consumer,
            relay_worker,
            window_refresh_worker,
            ageing_worker,
            model_refit_worker,
            month_summary_fold_worker,
        ],
    )
    require_declared(app, POLICY)
    return app
