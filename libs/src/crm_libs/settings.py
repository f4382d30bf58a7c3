"""The one settings model every process starts from (pydantic-settings, env prefix ``CRM_``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_libs.workers import fitting_workers

# Development-only defaults: refusing them outside development is what keeps them out of production.
DEV_PRINCIPAL_SECRET = "dev-only-principal-secret-change-me-0123456789"  # noqa: S105
DEV_BOOTSTRAP_ADMIN_PASSWORD = "dev-admin-password"  # noqa: S105


class BaseServiceSettings(BaseSettings):
    """Database, broker, secrets and network settings shared by every service and the gateway."""

    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    service_name: str = "crm"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm"
    # Per worker process: an instance opens up to workers x this many connections (plus overflow).
    database_pool_size: int = 20
    # uvicorn worker processes per instance (CRM_WORKERS). By default what fits the cores this
    # process may use (affinity and container quota, at most crm_libs.workers.MAX_WORKERS); one in
    # tests, which start many stacks side by side. The devstack divides the cores between its
    # four services instead (crm_devstack.stack.default_workers).
    workers: int = Field(default_factory=lambda data: _default_workers(data), ge=1)
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Signs the principal the gateway forwards; every service verifies it with the same key.
    principal_secret: str = DEV_PRINCIPAL_SECRET
    principal_ttl_seconds: int = 60
    log_level: str = "INFO"
    default_timezone: str = "Asia/Shanghai"
    # Published outbox rows are kept this long, so a broker that lost its data gets them again.
    outbox_retention_days: float = 7
    # A row that fails this many times on its own (unknown topic, too large) is parked.
    outbox_max_attempts: int = 10

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> BaseServiceSettings:
        if self.environment == "production" and self.principal_secret == DEV_PRINCIPAL_SECRET:
            raise ValueError(
                "CRM_PRINCIPAL_SECRET must be set to a private value outside development"
            )
        if len(self.principal_secret) < 32:
            raise ValueError("CRM_PRINCIPAL_SECRET must be at least 32 characters long")
        return self


def _default_workers(data: dict[str, Any]) -> int:
    return 1 if data.get("environment") == "test" else fitting_workers()
