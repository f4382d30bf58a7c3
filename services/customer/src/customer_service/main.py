"""The customer service: stores, roster, catalogue, customer files and purchases."""

from fastapi import FastAPI

from crm_libs.access import guarded, require_declared
from crm_libs.events.consumer import EventConsumer
from crm_libs.events.envelope import Topics
from crm_libs.events.relay import relay_worker
from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import principal_dependency
from crm_libs.service_app import create_service_app
from customer_service.access import POLICY
from customer_service.analysis.router import router as analysis_router
from customer_service.completeness.router import router as completeness_router
from customer_service.config import Settings
from customer_service.customers import pinyin
from customer_service.customers.merge_router import router as merge_router
from customer_service.customers.privacy_router import router as privacy_router
from customer_service.customers.router import router as customers_router
from customer_service.handlers import handle_events
from customer_service.imports.router import router as imports_router
from customer_service.imports.worker import import_worker
from customer_service.membership.expiry import points_expiry_worker
from customer_service.membership.router import router as membership_router
from customer_service.ownership.inactivity import staff_inactivity_worker
from customer_service.ownership.router import router as ownership_router
from customer_service.products.router import router as products_router
from customer_service.purchases.router import router as purchases_router
from customer_service.referrals.router import router as referrals_router
from customer_service.relations.router import router as relations_router
from customer_service.staff.router import router as staff_router
from customer_service.stores.router import router as stores_router
from customer_service.visits.router import router as visits_router

# What the service consumes: the scores' read copy, the fields visits collected, the member
# events and the staff's monthly completion (customer_service.handlers).
CONSUMED_TOPICS = (Topics.SCORES, Topics.ENGAGEMENT)


async def run_event_consumer(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    consumer = EventConsumer(
        name=settings.consumer_group,
        topics=CONSUMED_TOPICS,
        bootstrap=settings.kafka_bootstrap,
        sessionmaker=app.state.sessionmaker,
        stopping=app.state.stopping,
        handler=handle_events,
    )
    await consumer.run()


# Stopped after the relay: it applies and commits what the broker still holds, then returns.
run_event_consumer.drains_on_stop = True  # type: ignore[attr-defined]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = create_service_app(
        title="Customer service",
        settings=settings,
        routers=[
            guarded(
                # The router tries routes in this order (and FastAPI matches an included
                # router's routes more than once per request): the busiest first.
                [
                    # Before the customers router: /customers/duplicates is no file's id.
                    merge_router,
                    customers_router,
                    purchases_router,
                    membership_router,
                    stores_router,
                    staff_router,
                    ownership_router,
                    products_router,
                    relations_router,
                    completeness_router,
                    referrals_router,
                    visits_router,
                    analysis_router,
                    privacy_router,
                    imports_router,
                ],
                policy=POLICY,
                principal_dependency=principal_dependency,
            )
        ],
        workers=[
            run_event_consumer,
            relay_worker,
            import_worker,
            points_expiry_worker,
            staff_inactivity_worker,
        ],
    )
    require_declared(app, POLICY)
    app.state.cipher = FieldCipher(settings.field_encryption_keys)
    # pypinyin loads its tables on first use (about 0.5 s): at start, not in a registration.
    pinyin.name_search_keys("王芳")
    return app
