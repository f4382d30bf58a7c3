"""``CRM_SMS_PROVIDER`` → the provider the worker sends through.

A provider module other than the console's lives beside this one
(``messages/providers/<name>.py``) and exposes ``create_provider(settings) -> SmsProvider``; it
is imported only when selected, so its dependencies stay out of the embedded default.
"""

import importlib

from engagement_service.config import Settings
from engagement_service.messages.providers.base import SmsProvider
from engagement_service.messages.providers.console import ConsoleProvider


def create_provider(settings: Settings) -> SmsProvider:
    """The provider ``settings.sms_provider`` names."""
    if settings.sms_provider == "console":
        return ConsoleProvider()
    module = importlib.import_module(
        f"engagement_service.messages.providers.{settings.sms_provider}"
    )
    provider: SmsProvider = module.create_provider(settings)
    return provider
