"""WebSocket per-message deflate under hypercorn: off unless TANDEM_WS_COMPRESSION is set.

hypercorn accepts permessage-deflate whenever a client offers it (browsers and
the ``websockets`` library always do) and has no setting to refuse it. wsproto
then keeps one zlib compressor per connection. Measured on one hypercorn worker
with 500 idle subscribers, that compressor was 256 KiB of the ~300 KiB each
WebSocket cost, for frames that are small JSON objects which barely compress.
Declining the offer is allowed by RFC 7692: the connection simply goes on
uncompressed. This swaps hypercorn's extension class for one that declines;
it touches nothing else, and does nothing when hypercorn is not the server.
"""

from __future__ import annotations

from wsproto.extensions import PerMessageDeflate


class _DeclinedDeflate(PerMessageDeflate):
    """permessage-deflate that always declines the client's offer."""

    def accept(self, offer: str) -> bool | str | None:
        return None


def use_websocket_compression(enabled: bool) -> None:
    """Let hypercorn accept permessage-deflate, or make it decline every offer."""
    try:
        from hypercorn.protocol import ws_stream
    except ImportError:  # another ASGI server: its own settings apply
        return
    chosen = PerMessageDeflate if enabled else _DeclinedDeflate
    setattr(ws_stream, "PerMessageDeflate", chosen)  # noqa: B010  (a module global, on purpose)
