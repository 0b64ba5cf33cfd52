"""REST API v1: ``/api/v1/...``."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from tandem.quart_app.api import admin, routes  # noqa: E402, F401  (registers the views)
