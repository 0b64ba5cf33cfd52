"""The WSGI door: a Flask app that calls the async core through the loop portal."""

from __future__ import annotations

from tandem.flask_app.app import create_app

__all__ = ["create_app"]
