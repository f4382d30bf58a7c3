"""Every table this service owns, imported in one place for migrations."""


def import_all_models() -> None:
    import crm_libs.events.consumer  # noqa: F401
    import crm_libs.events.outbox  # noqa: F401
    from engagement_service import idempotency as _idempotency  # noqa: F401
    from engagement_service.campaigns import models as _campaigns  # noqa: F401
    from engagement_service.care import models as _care  # noqa: F401
    from engagement_service.care import stop_reasons as _stop_reasons  # noqa: F401
    from engagement_service.complaints import models as _complaints  # noqa: F401
    from engagement_service.customers import models as _customers  # noqa: F401
    from engagement_service.followups import models as _followups  # noqa: F401
    from engagement_service.followups import routine_care as _routine_care  # noqa: F401
    from engagement_service.member_events import models as _member_events  # noqa: F401
    from engagement_service.messages import models as _messages  # noqa: F401
    from engagement_service.scores import models as _scores  # noqa: F401
    from engagement_service.stats import models as _stats  # noqa: F401
    from engagement_service.visits import models as _visits  # noqa: F401
