"""The endpoint table on Flask: every row becomes a sync view that runs core calls on the portal.

A handler parses and encodes on the request's own thread; only its
:class:`~tandem.endpoints.Call` steps cross to the portal's event loop. The
Quart door's adapter (``tandem.quart_app.adapter``) is the same with an
``await`` where this one calls the portal.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, flash, redirect, render_template, request, session
from flask import url_for as flask_url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from tandem.bridge import CorePortal
from tandem.core.errors import TandemError, Unsupported
from tandem.core.settings import Settings
from tandem.endpoints import (
    ENDPOINTS,
    Call,
    Endpoint,
    Handler,
    Outcome,
    Page,
    Redirect,
    Reply,
    Request,
    StreamUsage,
    Subscribe,
    pages,
)
from tandem.flask_app.streams import StreamSlots, stream_response
from tandem.protocol import web

DOOR_LABEL = "WSGI"


class FlaskDoor:
    """What handlers may ask of this door: its name, the core's clock, its stream slots."""

    name = "wsgi"

    def __init__(self, settings: Settings, core: CorePortal, slots: StreamSlots) -> None:
        self.settings, self.core, self.slots = settings, core, slots

    def now(self) -> int:
        return self.core.now()

    def stream_usage(self) -> StreamUsage:
        return StreamUsage(in_use=self.slots.in_use, slots=self.slots.total)


def register(app: Flask, door: FlaskDoor) -> None:
    """Register every row of the table, in the blueprints ``main``, ``api`` and ``wire``."""
    blueprints = {name: Blueprint(name, __name__) for name in ("main", "api", "wire")}
    for row in ENDPOINTS:
        view = _no_websocket if row.handler is None else _view(row, row.handler, door)
        for rule in row.rules:
            blueprints[row.blueprint].add_url_rule(rule, row.name, view, methods=row.methods)
            if row.handler is None:
                # A real handshake (Upgrade: websocket) matches only a WebSocket rule;
                # without one Werkzeug answers it 400 "bad request syntax", not this 501.
                blueprints[row.blueprint].add_url_rule(
                    rule, row.name, view, methods=row.methods, websocket=True
                )
    _dress_pages(blueprints["main"], door.settings)
    for blueprint in blueprints.values():
        app.register_blueprint(blueprint)


def _view(row: Endpoint, handler: Handler, door: FlaskDoor) -> Any:
    def view(**args: str) -> ResponseReturnValue:
        req = _request(row, args, door)
        try:
            outcome = handler(req)
            while isinstance(outcome, Call):
                outcome = outcome.then(door.core.call(outcome.run))
        except TandemError as exc:
            if row.blueprint != "main":
                raise
            outcome = pages.failed(exc, req)
        return _respond(outcome, door)

    return view


def _no_websocket(**_args: str) -> Response:
    raise Unsupported(
        "WebSocket needs the ASGI door (hypercorn asgi:app); "
        "on this door subscribe with /sse, /json or /raw"
    )


def _request(row: Endpoint, args: dict[str, str], door: FlaskDoor) -> Request:
    return Request(
        endpoint=row.endpoint,
        method=request.method,
        # Only the pages use it (back to this page after signing in); building it costs.
        full_path=request.full_path if row.blueprint == "main" else "",
        args=args,
        headers=request.headers,
        query=request.args,
        session=session,
        remote_addr=request.remote_addr,
        settings=door.settings,
        door=door,
        url_for=flask_url_for,
        body=body() if row.reads == "body" else b"",
        form=request.form if row.reads == "form" else None,
    )


def body() -> bytes:
    """The request body; over ``MAX_CONTENT_LENGTH`` it raises a 413."""
    data = request.get_data()
    limit = request.max_content_length
    # Without Content-Length (chunked), Werkzeug stops reading at the limit and returns
    # the body cut short, no error. A byte left in the server's own stream means the
    # body was over the limit; it must not be stored truncated.
    cut_short = request.content_length is None and limit is not None and len(data) >= limit
    if cut_short and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return data


def _respond(outcome: Outcome, door: FlaskDoor) -> ResponseReturnValue:
    if isinstance(outcome, Reply):
        # Most replies (every publish) have no headers of their own: no Headers to fill.
        headers = dict(outcome.headers) if outcome.headers else None
        return Response(outcome.body, outcome.status, headers, mimetype=outcome.mimetype)
    if isinstance(outcome, Page):
        html = render_template(outcome.template, **outcome.context)
        return Response(html, outcome.status, dict(outcome.headers))
    if isinstance(outcome, Redirect):
        if outcome.flash:
            flash(outcome.flash)
        return redirect(outcome.location, outcome.status)
    if isinstance(outcome, Subscribe):
        return stream_response(door.core, door.slots, outcome)
    raise TypeError(f"a handler answered {outcome!r}")


def _dress_pages(main: Blueprint, settings: Settings) -> None:
    """The pages' template filters and context, and the headers every page gets."""
    for name, template_filter in web.TEMPLATE_FILTERS.items():
        main.add_app_template_filter(template_filter, name)

    @main.context_processor
    def _context() -> dict[str, object]:
        return pages.template_context(session, settings, DOOR_LABEL)

    @main.after_request
    def _page_headers(response: Response) -> Response:
        response.headers.update(web.PAGE_HEADERS)
        return response
