"""The applications the benchmarks serve next to Tandem's own ``wsgi:app`` and ``asgi:app``.

Serve them from the repository root with the shipped config files, for example
``gunicorn -c gunicorn.conf.py benchmarks.apps:flask_hello`` or
``hypercorn -c hypercorn.toml benchmarks.apps:quart_hello``: both servers put the
working directory on ``sys.path``.

- :data:`flask_hello`, :data:`quart_hello`: bare apps that answer ``{"hello": "world"}``
  to ``GET``/``POST``/``PUT`` on ``/`` and ``/<topic>``. They ignore the request body, so
  the benchmark can send them exactly the request it sends to the publish endpoint.
- :data:`flask_asgiref`: Tandem's Flask app with the publish view (``POST /<topic>``)
  replaced by the same view written ``async def``, which Flask runs through asgiref.
  See :func:`asgiref_publish` for what that costs per request.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from flask import Response as FlaskResponse
from flask import request as flask_request
from quart import Quart

from tandem.core.runtime import Runtime
from tandem.core.settings import Settings
from tandem.flask_app import create_app as create_flask_app
from tandem.flask_app.adapter import body
from tandem.protocol.encode import message_json
from tandem.protocol.publish import parse_publish

HELLO = {"hello": "world"}
HELLO_METHODS = ["GET", "POST", "PUT"]

# -- bare hello-JSON apps -------------------------------------------------------------------

flask_hello = Flask("benchmarks.flask_hello")


@flask_hello.route("/", methods=HELLO_METHODS)
@flask_hello.route("/<topic>", methods=HELLO_METHODS)
def _flask_hello(topic: str | None = None) -> dict[str, Any]:
    return HELLO


quart_hello = Quart("benchmarks.quart_hello")


@quart_hello.route("/", methods=HELLO_METHODS)
@quart_hello.route("/<topic>", methods=HELLO_METHODS)
async def _quart_hello(topic: str | None = None) -> dict[str, Any]:
    return HELLO


# -- Flask's own async path -----------------------------------------------------------------


async def asgiref_publish(topic: str) -> FlaskResponse:
    """Tandem's Flask publish view, written ``async def`` instead of calling the portal.

    Flask runs it with ``asgiref.sync.async_to_sync``: for every request that makes a
    one-thread ``ThreadPoolExecutor`` and runs ``asyncio.run(...)`` in it, i.e. a new
    thread and a new (stdlib) event loop, torn down at the end of the call. Whatever is
    bound to a loop cannot outlive the call, so the view builds the core per request
    exactly as a one-shot caller must (the ``tandem publish`` CLI does the same): a fresh
    :class:`Runtime` started with ``follow=False`` (a new SQLAlchemy ``AsyncEngine`` and
    pool, no relay or watcher), a new aiosqlite connection with its own thread and the
    connect-time PRAGMAs, one publish in its own ``BEGIN IMMEDIATE`` transaction, then
    ``Runtime.stop()``, which disposes of the engine and closes the connection. Nothing
    is shared between requests, so concurrent publishes are not batched into one
    transaction as they are behind the portal.
    """
    settings: Settings = current_app.config["TANDEM_SETTINGS"]
    new = parse_publish(
        topic, flask_request.headers, flask_request.args, body(), max_body=settings.max_body
    )
    runtime = Runtime(settings)
    await runtime.start(follow=False)  # a one-shot caller's runtime, as the CLI's: no relay
    try:
        msg = await runtime.publish(new)
    finally:
        await runtime.stop()
    return FlaskResponse(message_json(msg), mimetype="application/json")


def create_asgiref_app() -> Flask:
    """Tandem's Flask app (same hooks, error handlers and settings) with the async view."""
    app = create_flask_app()
    app.view_functions["wire.publish"] = asgiref_publish
    return app


flask_asgiref = create_asgiref_app()
