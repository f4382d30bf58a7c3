"""Every table the gateway owns, imported in one place for migrations."""


def import_all_models() -> None:
    from crm_gateway.accounts import models as _accounts  # noqa: F401
    from crm_gateway.api_keys import models as _api_keys  # noqa: F401
    from crm_gateway.audit import models as _audit  # noqa: F401
