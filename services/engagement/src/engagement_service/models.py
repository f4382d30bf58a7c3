"""Every table this service owns, imported in one place for migrations."""


def import_all_models() -> None:
    from crm_libs.events import consumer, outbox  # noqa: F401
    from engagement_service.followups import models as _followups  # noqa: F401
