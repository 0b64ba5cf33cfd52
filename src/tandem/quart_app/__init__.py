"""The ASGI door: a Quart app that awaits the core on its own event loop."""

from __future__ import annotations

from tandem.quart_app.app import create_app

__all__ = ["create_app"]
