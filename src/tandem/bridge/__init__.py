"""The loop portal: how synchronous code (Flask views, the CLI) calls the async core."""

from __future__ import annotations

from tandem.bridge.portal import CorePortal, Portal

__all__ = ["CorePortal", "Portal"]
