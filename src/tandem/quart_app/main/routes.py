"""The topic pages: the topic list, a topic's history and live view, and its publish form."""

from __future__ import annotations

from quart import flash, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue

from tandem.core import gate, pages
from tandem.protocol import web
from tandem.protocol.topics import validate_topic
from tandem.quart_app.core import caller, runtime, settings
from tandem.quart_app.main import bp
from tandem.quart_app.main.forms import checked_form


@bp.get("/")
async def index() -> str:
    home = await pages.home(runtime(), caller())
    return await render_template("index.html", topics=home.topics, viewer=home.viewer)


@bp.get("/app")
async def open_topic() -> ResponseReturnValue:
    """The topic list's "open a topic" form: on to that topic's page."""
    name = validate_topic(request.args.get("topic", "").strip())
    return redirect(url_for("main.topic", topic=name), 303)


@bp.get("/app/<topic>")
async def topic(topic: str) -> str:
    page = await pages.topic(runtime(), caller(), validate_topic(topic))
    return await render_template("topic.html", page=page, viewer=page.viewer, history=pages.HISTORY)


@bp.post("/app/<topic>")
async def publish(topic: str) -> ResponseReturnValue:
    new = web.publish_form(topic, await checked_form(), max_body=settings().max_body)
    await gate.publish(runtime(), caller(), new)
    await flash("Published.")
    return redirect(url_for("main.topic", topic=new.topic), 303)
