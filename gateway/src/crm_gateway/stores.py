"""Whether a store, or a member of its roster, exists: asked of the customer service that owns them.

A synchronous call, and a deliberate exception: an account or key for a store that does not
exist, or an account tied to somebody not on its store's roster, would be useless, and the
gateway keeps no copy of either list. Stores are never deleted, so known stores are cached.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from crm_gateway.principal_forwarding import PrincipalSigner
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role
from crm_libs.problems import InvalidField, ProblemError

_GATEWAY = Principal(subject="gateway", role=Role.HQ_ADMIN)


class StoreDirectory:
    def __init__(
        self, *, client: httpx.AsyncClient, customer_url: str, signer: PrincipalSigner
    ) -> None:
        self._client = client
        self._customer_url = customer_url
        self._signer = signer
        self._known: set[str] = set()

    async def require(self, store_id: str | None, *, field: str = "store_id") -> None:
        """422 on ``field`` unless the store exists (stores are never deleted: hits are cached)."""
        if store_id is None or store_id in self._known:
            return
        if not store_id.strip():
            raise InvalidField(field, "unknown store")
        try:
            response = await self._client.get(
                f"{self._customer_url}/stores/{quote(store_id, safe='')}",
                headers={PRINCIPAL_HEADER: self._signer.token_for(_GATEWAY)},
            )
        except httpx.HTTPError as exc:
            raise _unavailable("store list") from exc
        if response.status_code == 200:
            self._known.add(store_id)
            return
        if response.status_code < 500:  # 404 and any other refusal: not a store we know
            raise InvalidField(field, "unknown store")
        raise _unavailable("store list")

    async def require_staff(self, staff_id: str | None, *, store_id: str | None) -> None:
        """422 on ``staff_id`` unless it names a member of ``store_id``'s roster (not cached:
        staff move between stores)."""
        if staff_id is None:
            return
        if not staff_id.strip() or store_id is None:
            raise InvalidField("staff_id", "not on the roster of the account's store")
        try:
            response = await self._client.get(
                f"{self._customer_url}/staff/{quote(staff_id, safe='')}",
                headers={PRINCIPAL_HEADER: self._signer.token_for(_GATEWAY)},
            )
        except httpx.HTTPError as exc:
            raise _unavailable("roster") from exc
        if response.status_code >= 500:
            raise _unavailable("roster")
        if response.status_code != 200 or response.json().get("store_id") != store_id:
            raise InvalidField("staff_id", "not on the roster of the account's store")


def _unavailable(what: str) -> ProblemError:
    return ProblemError(
        f"The {what} is unavailable; retry shortly", status=503, title="Service unavailable"
    )
