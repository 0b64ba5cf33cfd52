"""The ntfy wire protocol: publish and subscribe on ``/<topic>/...``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("wire", __name__)

from tandem.flask_app.wire import routes  # noqa: E402, F401  (registers the views)
