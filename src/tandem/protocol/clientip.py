"""The client's IP address, from the direct peer and ``X-Forwarded-For``.

``X-Forwarded-For`` is believed only when the direct peer is a trusted proxy
(``TANDEM_TRUSTED_PROXIES``, parsed once into ``Settings.trusted_proxies``).
Each proxy appends the address it got the request from, so the list is read
right to left, past the trusted hops: the first address that is not trusted is
the client. Anything to its left was written by the client and proves nothing.
A malformed entry ends the walk at the last good address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TrustedProxies = Sequence[Network]


def client_ip(remote_addr: str | None, x_forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The address of the client, normalised (IPv4-mapped IPv6 becomes IPv4).

    A peer that is not an IP address (a Unix socket) is returned as it is, or
    ``"unknown"`` when there is none.
    """
    if not (x_forwarded_for and trusted):  # the common case: the peer is the client
        return _normalized(remote_addr)
    peer = _parse(remote_addr)
    if peer is None:
        return remote_addr or "unknown"
    client = peer
    if x_forwarded_for and _is_trusted(peer, trusted):
        for entry in reversed(x_forwarded_for.split(",")):
            hop = _parse(entry)
            if hop is None:
                break
            client = hop
            if not _is_trusted(hop, trusted):
                break
    return str(client)


@lru_cache(maxsize=4096)
def _normalized(remote_addr: str | None) -> str:
    # Peers repeat (keep-alive, the same clients): parse each once.
    peer = _parse(remote_addr)
    return (remote_addr or "unknown") if peer is None else str(peer)


def _parse(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: TrustedProxies) -> bool:
    # An address and a network of different versions never match (no error).
    return any(address in network for network in trusted)
