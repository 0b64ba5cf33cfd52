"""The topic pages: the topic list, a topic's history and live view, and its publish form."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from tandem.core import gate, pages
from tandem.flask_app.core import caller, core, settings
from tandem.flask_app.main import bp
from tandem.flask_app.main.forms import checked_form
from tandem.protocol import web
from tandem.protocol.topics import validate_topic


@bp.get("/")
def index() -> str:
    who = caller()
    home = core().call(lambda rt: pages.home(rt, who))
    return render_template("index.html", topics=home.topics, viewer=home.viewer)


@bp.get("/app")
def open_topic() -> ResponseReturnValue:
    """The topic list's "open a topic" form: on to that topic's page."""
    name = validate_topic(request.args.get("topic", "").strip())
    return redirect(url_for("main.topic", topic=name), 303)


@bp.get("/app/<topic>")
def topic(topic: str) -> str:
    name, who = validate_topic(topic), caller()
    page = core().call(lambda rt: pages.topic(rt, who, name))
    return render_template("topic.html", page=page, viewer=page.viewer, history=pages.HISTORY)


@bp.post("/app/<topic>")
def publish(topic: str) -> ResponseReturnValue:
    new = web.publish_form(topic, checked_form(), max_body=settings().max_body)
    who = caller()
    core().call(lambda rt: gate.publish(rt, who, new))
    flash("Published.")
    return redirect(url_for("main.topic", topic=new.topic), 303)
