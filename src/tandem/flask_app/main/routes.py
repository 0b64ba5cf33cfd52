"""Web page views."""

from __future__ import annotations

from flask import render_template

from tandem.flask_app.core import core
from tandem.flask_app.main import bp


@bp.get("/")
def index() -> str:
    return render_template("index.html", topics=core().call(lambda rt: rt.topics()), door="WSGI")
