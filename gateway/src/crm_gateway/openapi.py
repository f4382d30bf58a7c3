"""One OpenAPI document for the whole API, merged from the services' own documents."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from crm_gateway.routes import API_PREFIX, owner_of

log = logging.getLogger(__name__)


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
PUBLIC_PATHS = {f"{API_PREFIX}/auth/token", f"{API_PREFIX}/auth/refresh"}


def merge_documents(
    documents: dict[str, dict[str, Any]],
    *,
    title: str,
    version: str,
    own: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Prefix every path with the API base, keep only paths the gateway routes to that service,
    and merge component schemas (a clash between different schemas is renamed per service).
    ``own`` is the gateway's document (accounts, keys, audit), whose paths are already prefixed."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    for service, document in sorted(documents.items()):
        renames: dict[str, str] = {}
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                renames[name] = f"{service}_{name}"
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = _rename_refs(schema, renames)
        for path, item in document.get("paths", {}).items():
            if owner_of(path) == service:
                merged["paths"][API_PREFIX + path] = _rename_refs(item, renames)
    if own is not None:
        for name, schema in own.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(name, schema)
        for path, item in own.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                item = {m: {**op, "security": []} for m, op in item.items()}
            merged["paths"][path] = item
    return merged


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if not renames:
        return node
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[-1]
                out[key] = f"#/components/schemas/{renames.get(name, name)}"
            else:
                out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, renames) for v in node]
    return node


async def fetch_documents(
    client: httpx.AsyncClient, upstreams: dict[str, str]
) -> dict[str, dict[str, Any]]:
    documents = {}
    for service, base_url in upstreams.items():
        response = await client.get(f"{base_url}/openapi.json")
        response.raise_for_status()
        documents[service] = response.json()
    return documents
