"""The endpoint table on Quart: every row becomes an async view that awaits the core.

The same handlers as on the Flask door (``tandem.flask_app.adapter``); where
that adapter crosses the portal for a :class:`~tandem.endpoints.Call`, this
one awaits it on the server's own event loop.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, Response, flash, redirect, render_template, request, session
from quart import url_for as quart_url_for
from quart import websocket as quart_websocket
from quart.typing import ResponseReturnValue

from tandem.core.errors import TandemError
from tandem.core.runtime import Runtime
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
    wire,
)
from tandem.protocol import web
from tandem.protocol.caller import caller as read_caller
from tandem.protocol.subscribe import parse_subscribe
from tandem.protocol.topics import parse_topics
from tandem.quart_app.streams import stream_response, websocket_session

DOOR_LABEL = "ASGI"


class QuartDoor:
    """What handlers may ask of this door: its name, the core's clock, its hub's streams."""

    name = "asgi"

    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings, self.runtime = settings, runtime

    def now(self) -> int:
        return self.runtime.now()

    def stream_usage(self) -> StreamUsage:
        hub = self.runtime.hub
        return StreamUsage(in_use=hub.count, slots=None, direct=hub.written_through)


def register(app: Quart, door: QuartDoor) -> None:
    """Register every row of the table, in the blueprints ``main``, ``api`` and ``wire``."""
    blueprints = {name: Blueprint(name, __name__) for name in ("main", "api", "wire")}
    for row in ENDPOINTS:
        # A row without a handler is the WebSocket upgrade; a plain GET there is a 400.
        view = _view(row, row.handler or wire.websocket_only, door)
        for rule in row.rules:
            blueprints[row.blueprint].add_url_rule(rule, row.name, view, methods=row.methods)
            if row.handler is None:
                blueprints[row.blueprint].add_websocket(
                    rule, row.name + "_upgrade", _websocket_view(door)
                )
    _dress_pages(blueprints["main"], door.settings)
    for blueprint in blueprints.values():
        app.register_blueprint(blueprint)


def _view(row: Endpoint, handler: Handler, door: QuartDoor) -> Any:
    async def view(**args: str) -> ResponseReturnValue:
        req = await _request(row, args, door)
        try:
            outcome = handler(req)
            while isinstance(outcome, Call):
                outcome = outcome.then(await outcome.run(door.runtime))
        except TandemError as exc:
            if row.blueprint != "main":
                raise
            outcome = pages.failed(exc, req)
        return await _respond(outcome, door)

    return view


async def _request(row: Endpoint, args: dict[str, str], door: QuartDoor) -> Request:
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
        url_for=quart_url_for,
        body=await body() if row.reads == "body" else b"",
        form=await request.form if row.reads == "form" else None,
    )


async def body() -> bytes:
    """The request body; over ``MAX_CONTENT_LENGTH`` it raises a 413."""
    return await request.get_data(cache=True, as_text=False, parse_form_data=False)


async def _respond(outcome: Outcome, door: QuartDoor) -> ResponseReturnValue:
    if isinstance(outcome, Reply):
        # Most replies (every publish) have no headers of their own: no Headers to fill.
        headers = dict(outcome.headers) if outcome.headers else None
        return Response(outcome.body, outcome.status, headers, mimetype=outcome.mimetype)
    if isinstance(outcome, Page):
        html = await render_template(outcome.template, **outcome.context)
        return Response(html, outcome.status, dict(outcome.headers))
    if isinstance(outcome, Redirect):
        if outcome.flash:
            await flash(outcome.flash)
        return redirect(outcome.location, outcome.status)
    if isinstance(outcome, Subscribe):
        return await stream_response(door.runtime, outcome, request.scope)
    raise TypeError(f"a handler answered {outcome!r}")


def _websocket_view(door: QuartDoor) -> Any:
    async def subscribe_ws(topics: str) -> None:
        names, ws = parse_topics(topics), quart_websocket
        sub = parse_subscribe(ws.headers, ws.args, now=door.runtime.now())
        who = read_caller(ws.headers, ws.args, session, ws.remote_addr, door.settings)
        await websocket_session(door.runtime, ws, who, names, sub)

    return subscribe_ws


def _dress_pages(main: Blueprint, settings: Settings) -> None:
    """The pages' template filters and context, and the headers every page gets."""
    for name, template_filter in web.TEMPLATE_FILTERS.items():
        main.add_app_template_filter(template_filter, name)

    @main.context_processor
    async def _context() -> dict[str, object]:
        return pages.template_context(session, settings, DOOR_LABEL)

    @main.after_request
    async def _page_headers(response: Response) -> Response:
        response.headers.update(web.PAGE_HEADERS)
        return response
