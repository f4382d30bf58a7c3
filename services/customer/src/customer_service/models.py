"""Every table this service owns, imported in one place for migrations."""


def import_all_models() -> None:
    import crm_libs.events.consumer  # noqa: F401
    import crm_libs.events.outbox  # noqa: F401
    from customer_service.customers import merge as _merge  # noqa: F401
    from customer_service.customers import models as _customers  # noqa: F401
    from customer_service.imports import tables as _imports  # noqa: F401
    from customer_service.member_events import models as _member_events  # noqa: F401
    from customer_service.membership import models as _membership  # noqa: F401
    from customer_service.ownership import models as _ownership  # noqa: F401
    from customer_service.products import models as _products  # noqa: F401
    from customer_service.purchases import models as _purchases  # noqa: F401
    from customer_service.relations import models as _relations  # noqa: F401
    from customer_service.staff import models as _staff  # noqa: F401
    from customer_service.stores import models as _stores  # noqa: F401
    from customer_service.visits import models as _visits  # noqa: F401
