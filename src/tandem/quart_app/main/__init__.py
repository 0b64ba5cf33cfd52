"""The web pages."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("main", __name__)

from tandem.quart_app.main import routes  # noqa: E402, F401  (registers the views)
