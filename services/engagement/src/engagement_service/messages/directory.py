"""What a message needs from the customer service, asked over HTTP (peer_client.py).

Engagement keeps no names and no numbers (its copy of the files carries none by contract):

- when a message is queued, the customer's name and gender, the staff member's name and the
  store's name are read as the caller (the caller's store scope decides what is seen);
- when the worker sends, the numbers are read for the store as the message service itself: a
  principal it signs for that store's manager role, the one that sees numbers whole, scoped to
  the one store; nothing but the worker's own reads carries it.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from crm_libs.principal import Principal, Role, sign_principal
from engagement_service import peer_audit, peer_client

# The subject the customer service sees (and its logs name) for the worker's reads.
SENDER_SUBJECT = "engagement:messages"


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str | None
    gender: str | None


@dataclass(frozen=True, slots=True)
class Person:
    name: str | None
    gender: str | None
    has_phone: bool


class CustomerDirectory:
    """Reads from the customer service with one principal header.

    ``audit``: where the reads' disclosures go outside a request (the gateway's intake, under the
    principal it is bound to); within a request they go with the request's response."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        principal_header: str,
        *,
        audit: peer_audit.Recorder | None = None,
    ) -> None:
        self._client = client
        self._principal_header = principal_header
        self._audit = audit

    async def _get(self, path: str, params: Any = None) -> httpx.Response:
        return await peer_client.send(
            self._client, "GET", path, token=self._principal_header, params=params
        )

    async def _files(
        self, customer_ids: list[str], *, fields: str | None = None
    ) -> list[dict[str, Any]]:
        unique = sorted(set(customer_ids))
        params: dict[str, Any] = {"ids": unique, "limit": len(unique), "status": "active"}
        if fields is not None:
            params["fields"] = fields  # a sparse read: nothing encrypted read or disclosed
        response = await self._get("/customers", params=params)
        if response.status_code != 200:
            raise peer_client.unexpected("/customers", response)
        items: list[dict[str, Any]] = response.json()["items"]
        await peer_client.note(response, audit=self._audit, items=items)
        return items

    async def recipient(self, customer_id: str) -> Recipient | None:
        """The customer's name and gender, or None when the caller may not see the file."""
        for item in await self._files([customer_id]):
            if item["id"] == customer_id:
                return Recipient(name=item.get("name"), gender=item.get("gender"))
        return None

    async def staff_name(self, staff_id: str) -> str | None:
        response = await self._get(f"/staff/{quote(staff_id, safe='')}")
        await peer_client.note(response, audit=self._audit)
        if response.status_code != 200:
            return None
        name: str | None = response.json().get("name")
        return name

    async def store_name(self, store_id: str) -> str | None:
        response = await self._get(f"/stores/{quote(store_id, safe='')}")
        await peer_client.note(response, audit=self._audit)
        if response.status_code != 200:
            return None
        name: str | None = response.json().get("name")
        return name

    async def people(self, customer_ids: list[str]) -> dict[str, "Person"]:
        """Each active file the caller may see: name, gender and whether it has a number, in
        requests of 500 (a campaign's chunk is one or a few requests, never one per customer).
        A sparse read: the numbers are neither decrypted nor disclosed to know there is one."""
        found: dict[str, Person] = {}
        for start in range(0, len(customer_ids), 500):
            chunk = customer_ids[start : start + 500]
            for item in await self._files(chunk, fields="name,gender,has_phone"):
                found[item["id"]] = Person(
                    name=item.get("name"),
                    gender=item.get("gender"),
                    has_phone=bool(item.get("has_phone")),
                )
        return found

    async def numbers(self, customer_ids: list[str]) -> dict[str, str | None]:
        """Each active file's primary number (None when it has none); absent files left out."""
        found: dict[str, str | None] = {}
        for start in range(0, len(customer_ids), 500):
            for item in await self._files(customer_ids[start : start + 500]):
                found[item["id"]] = item.get("phone")
        return found


def sender_directory(
    client: httpx.AsyncClient,
    *,
    store_id: str,
    secret: str,
    ttl_seconds: int = 60,
    audit: peer_audit.GatewayAudit | None = None,
) -> CustomerDirectory:
    """The worker's reads of one store's numbers (on the trail through ``audit``)."""
    principal = Principal(subject=SENDER_SUBJECT, role=Role.STORE_MANAGER, store_id=store_id)
    header = sign_principal(principal, secret=secret, ttl_seconds=ttl_seconds)
    # Its reads are its own: handed to the intake under the same principal.
    recorder = peer_audit.Recorder(audit, header) if audit is not None else None
    return CustomerDirectory(client, header, audit=recorder)
