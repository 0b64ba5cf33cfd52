"""Loopback addresses: free ports and one-shot HTTP requests (the standard library's,
so that the harness needs no HTTP client of its own and never goes through a proxy)."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    host: str = LOOPBACK,
) -> tuple[int, bytes]:
    """One request on a fresh connection to ``host:port``; returns status and body."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
