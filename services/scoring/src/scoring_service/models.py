"""Every table this service owns, imported in one place for migrations."""


def import_all_models() -> None:
    import crm_libs.events.consumer  # noqa: F401
    import crm_libs.events.outbox  # noqa: F401
    from scoring_service.analysis import models as _analysis  # noqa: F401
    from scoring_service.scores import models as _scores  # noqa: F401
