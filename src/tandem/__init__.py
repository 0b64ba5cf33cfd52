"""Tandem: a real-time topic hub with two front doors, Flask (WSGI) and Quart (ASGI)."""

from __future__ import annotations

__version__ = "0.1.0"
