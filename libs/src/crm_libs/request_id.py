"""``X-Request-ID`` in and out: the caller's, or a new one, on every response and log line."""

from __future__ import annotations

import random
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_libs.logs import request_id_var

REQUEST_ID_HEADER = "x-request-id"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def accept_request_id(value: str | None) -> str:
    """Keep a caller's request ID if it is sane, otherwise mint one (IDs end up in logs)."""
    if value and _VALID.match(value):
        return value
    # 128 random bits as 32 hex digits, like uuid4().hex without a system call per request:
    # an ID correlates log lines, it guards nothing.
    return f"{random.getrandbits(128):032x}"


class RequestIdMiddleware:
    """Pure ASGI middleware: cheaper than BaseHTTPMiddleware and keeps streaming bodies intact."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = accept_request_id(incoming)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
