"""The web pages: topics, a topic's live view, sign-in and the admin pages."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("main", __name__)

from tandem.flask_app.main import admin, auth, helpers, routes  # noqa: E402, F401  (registers the views)
