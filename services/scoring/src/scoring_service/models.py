"""Every table this service owns, imported in one place for migrations."""


def import_all_models() -> None:
    from crm_libs.events import consumer, outbox  # noqa: F401
    from scoring_service.scores import models as _scores  # noqa: F401
