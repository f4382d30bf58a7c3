"""The client's address for per-address limits: X-Forwarded-For only as far as it is trusted.

Anyone can send X-Forwarded-For. Only a peer in ``trusted_proxies`` has its header read, and
then from the right: the right-most address that is not itself a trusted proxy is the one the
outermost trusted proxy saw connecting. Uvicorn's own proxy-header handling is switched off for
the gateway (``--no-proxy-headers``) so ``request.client`` is the real peer.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from fastapi import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    peer = request.client.host if request.client else "unknown"
    return address_behind(peer, request.headers.getlist("x-forwarded-for"), trusted_proxies)


def address_behind(peer: str, forwarded_for: list[str], trusted_proxies: list[str]) -> str:
    networks = _networks(tuple(trusted_proxies))
    if not _is_trusted(peer, networks):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
    # Every hop is a trusted proxy: the first of them is the closest thing to a client.
    return hops[0] if hops else peer
