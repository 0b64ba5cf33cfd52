"""The ntfy wire protocol: publish and subscribe on ``/<topic>/...``."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("wire", __name__)

from tandem.quart_app.wire import routes  # noqa: E402, F401  (registers the views)
