import ipaddress

from pydantic import field_validator, model_validator

from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD, BaseServiceSettings

# Development-only defaults; outside development the gateway refuses to start with them.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105


class Settings(BaseServiceSettings):
    service_name: str = "gateway"
    port: int = 8000
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/crm_gateway"
    customer_url: str = "http://127.0.0.1:8001"
    engagement_url: str = "http://127.0.0.1:8002"
    scoring_url: str = "http://127.0.0.1:8003"
    upstream_connect_timeout_seconds: float = 3.0
    upstream_read_timeout_seconds: float = 30.0
    upstream_max_connections: int = 200

    jwt_secret: str = DEV_JWT_SECRET
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 7 * 24 * 3600
    bootstrap_admin_user: str = "admin"
    bootstrap_admin_password: str | None = None
    # Failed logins per username before a back-off, and how long it lasts.
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    # Per account or API key; generous for a store's busy hour, configurable per deployment.
    # Each gateway process counts what it serves (crm_gateway.ratelimit): a client whose
    # connections land on several workers or replicas can get up to that many times the limit.
    rate_limit: str = "1200/minute"
    api_key_rate_limit: str = "600/minute"
    # Sign-in attempts per client address, whatever the username (slows guessing of names too).
    sign_in_rate_limit: str = "30/minute"
    api_key_cache_seconds: float = 30.0
    # An unknown key prefix is remembered this long, so a flood of made-up keys costs no lookups.
    api_key_unknown_cache_seconds: float = 30.0
    # Proxies (CIDRs) whose X-Forwarded-For names the client; nobody else's is believed.
    trusted_proxies: list[str] = []
    # Audit entries of committed writes wait here while the database is away (None: a
    # directory per database under the system's temporary directory).
    audit_spool_dir: str | None = None
    audit_spool_retry_seconds: float = 2.0
    cors_origins: list[str] = []
    # Prometheus metrics on a port of their own, never on the public one; None: not served.
    metrics_port: int | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # a ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _refuse_default_gateway_secrets(self) -> "Settings":
        if self.environment == "production":
            if self.jwt_secret == DEV_JWT_SECRET:
                raise ValueError(
                    "CRM_JWT_SECRET must be set to a private value outside development"
                )
            if self.bootstrap_admin_password in (None, "", DEV_BOOTSTRAP_ADMIN_PASSWORD):
                raise ValueError(
                    "CRM_BOOTSTRAP_ADMIN_PASSWORD must be set to a private value "
                    "outside development"
                )
        if len(self.jwt_secret) < 32:
            raise ValueError("CRM_JWT_SECRET must be at least 32 characters long")
        if self.bootstrap_admin_password is not None and len(self.bootstrap_admin_password) < 12:
            raise ValueError("CRM_BOOTSTRAP_ADMIN_PASSWORD must be at least 12 characters long")
        return self
