"""Web page views."""

from __future__ import annotations

from quart import render_template

from tandem.quart_app.core import runtime
from tandem.quart_app.main import bp


@bp.get("/")
async def index() -> str:
    return await render_template("index.html", topics=await runtime().topics(), door="ASGI")
