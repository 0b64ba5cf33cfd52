"""The Flask application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, g, request

from tandem.bridge import CorePortal
from tandem.core.logs import configure_logging, request_id
from tandem.core.settings import Settings
from tandem.flask_app import adapter, errors
from tandem.flask_app.bench import bp as bench_bp
from tandem.flask_app.streams import StreamSlots
from tandem.protocol.caller import session_config
from tandem.protocol.requests import request_id as make_request_id

WEB = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app. ``settings`` defaults to the environment, read now."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = Flask(
        "tandem.flask_app",
        template_folder=WEB / "templates",
        static_folder=WEB / "static",
    )
    app.config.update(session_config(settings))
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body,
        TANDEM_SETTINGS=settings,
        JSON_SORT_KEYS=False,
    )
    core = CorePortal(settings)
    slots = StreamSlots(settings.stream_slots)
    app.extensions["tandem"] = core
    app.extensions["tandem_slots"] = slots
    app.before_request(_set_request_id)
    app.after_request(_add_request_id)
    app.teardown_request(_clear_request_id)
    errors.register(app, max_body=settings.max_body)
    adapter.register(app, adapter.FlaskDoor(settings, core, slots))
    if settings.bench_routes:
        app.register_blueprint(bench_bp)
    return app


def _set_request_id() -> None:
    g.request_id = make_request_id(request.headers.get("X-Request-ID"))
    g.request_id_token = request_id.set(g.request_id)


def _add_request_id(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id") or make_request_id(None)
    return response


def _clear_request_id(_exc: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)
