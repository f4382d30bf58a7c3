"""The gateway: the only public entrance. Authenticates, limits, audits, routes /api/v1."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from crm_gateway.access import POLICY
from crm_gateway.accounts.router import auth_router
from crm_gateway.accounts.router import router as accounts_router
from crm_gateway.api_keys.router import router as api_keys_router
from crm_gateway.audit.intake import router as audit_intake_router
from crm_gateway.audit.router import router as audit_router
from crm_gateway.config import Settings
from crm_gateway.deps import get_principal
from crm_gateway.lifespan import make_lifespan
from crm_gateway.meta import meta_router
from crm_gateway.principal_forwarding import PrincipalSigner
from crm_gateway.proxy_route import PROXY_METHODS, ProxyMiddleware, unrouted_router
from crm_gateway.ratelimit import RateLimiter
from crm_gateway.security_headers import SecurityHeadersMiddleware
from crm_libs.access import guarded, require_declared
from crm_libs.logs import configure_logging
from crm_libs.metrics import instrument_app
from crm_libs.problems import install_problem_handlers
from crm_libs.request_id import RequestIdMiddleware


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.service_name, settings.log_level)
    upstreams = {
        "customer": settings.customer_url.rstrip("/"),
        "engagement": settings.engagement_url.rstrip("/"),
        "scoring": settings.scoring_url.rstrip("/"),
    }
    signer = PrincipalSigner(
        secret=settings.principal_secret, ttl_seconds=settings.principal_ttl_seconds
    )
    app = FastAPI(
        title="CRM platform API",
        version="1.0.0",
        lifespan=make_lifespan(settings, upstreams=upstreams, signer=signer),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # No OpenTelemetry here: FastAPI would otherwise ask for a tracer provider per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.sign_in_limiter = RateLimiter(settings.sign_in_rate_limit)
    install_problem_handlers(app)
    _add_middleware(app, settings, upstreams=upstreams, signer=signer)
    app.include_router(meta_router(upstreams))
    app.include_router(auth_router)
    app.include_router(
        guarded(
            [accounts_router, api_keys_router, audit_router],
            policy=POLICY,
            principal_dependency=get_principal,
        )
    )
    # Services' own audit entries, under their signed principal: outside /api/v1 and the policy.
    app.include_router(audit_intake_router)
    # Last: its catch-all path must not shadow the gateway's own /api/v1 routes.
    app.include_router(unrouted_router())
    require_declared(app, POLICY)
    return app


def _add_middleware(
    app: FastAPI, settings: Settings, *, upstreams: dict[str, str], signer: PrincipalSigner
) -> None:
    """Added innermost first."""
    # The gateway's own routes, counted by route template; the page itself is served on
    # settings.metrics_port (see lifespan), not here.
    instrument_app(app, serve_metrics=False)
    # Proxied requests are answered before the route table and count themselves in the same
    # metrics: finding their template in the route table again was ~12% of the gateway's CPU.
    app.add_middleware(ProxyMiddleware, settings=settings, upstreams=upstreams, signer=signer)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=PROXY_METHODS,
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-API-Key",
            "Idempotency-Key",
            "If-Match",
            "X-Request-ID",
        ],
        expose_headers=["X-Request-ID", "ETag", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
