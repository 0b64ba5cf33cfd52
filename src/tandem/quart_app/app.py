"""The Quart application factory."""

from __future__ import annotations

from pathlib import Path

from quart import Quart, Response, g, request

from tandem.core.logs import configure_logging, request_id
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings
from tandem.protocol.caller import session_config
from tandem.protocol.requests import request_id as make_request_id
from tandem.quart_app import adapter, errors
from tandem.quart_app.bench import bp as bench_bp
from tandem.quart_app.compression import use_websocket_compression
from tandem.quart_app.direct import keep_send
from tandem.quart_app.streams import close_streams_on_signal

WEB = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings | None = None) -> Quart:
    """Build the Quart app. ``settings`` defaults to the environment, read now.

    The core runtime starts and stops with the serving lifespan, on the
    server's own event loop.
    """
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = Quart(
        "tandem.quart_app",
        template_folder=str(WEB / "templates"),
        static_folder=str(WEB / "static"),
    )
    app.config.update(session_config(settings))
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body,
        TANDEM_SETTINGS=settings,
    )
    use_websocket_compression(settings.ws_compression)
    runtime = Runtime(settings)
    app.extensions["tandem"] = runtime
    app.before_serving(runtime.start)

    @app.before_serving
    async def _watch_signals() -> None:
        app.extensions["tandem_signals"] = await close_streams_on_signal(runtime)

    @app.after_serving
    async def _unwatch_signals() -> None:
        app.extensions.pop("tandem_signals", lambda: None)()

    app.after_serving(runtime.stop)
    app.before_request(_set_request_id)
    app.after_request(_add_request_id)
    app.teardown_request(_clear_request_id)
    errors.register(app, max_body=settings.max_body)
    adapter.register(app, adapter.QuartDoor(settings, runtime))
    if settings.bench_routes:
        app.register_blueprint(bench_bp)
    # Streams write live messages to their sockets directly (see direct.py).
    app.asgi_app = keep_send(app.asgi_app)  # type: ignore[method-assign,assignment]
    return app


async def _set_request_id() -> None:
    g.request_id = make_request_id(request.headers.get("X-Request-ID"))
    g.request_id_token = request_id.set(g.request_id)


async def _add_request_id(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id") or make_request_id(None)
    return response


async def _clear_request_id(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)
