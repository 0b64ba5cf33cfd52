"""gunicorn settings for the WSGI door: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Threads (gthread), because a Flask view spends its time waiting on the core's
loop thread and the database. Every value can be overridden on the command
line (``-b HOST:PORT``, ``-w N``) or through TANDEM_* variables.
"""

import multiprocessing
import os
import signal

bind = [os.environ.get("TANDEM_BIND", "127.0.0.1:8000")]
worker_class = "gthread"
workers = int(os.environ.get("TANDEM_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("TANDEM_THREADS", "8"))
# gthread keeps idle keep-alive connections in its poller, not in a thread.
keepalive = 5
timeout = 60
graceful_timeout = 30

# gunicorn's control socket defaults to one path per user; several gunicorns
# on one host (split plane, tests) would fight over it.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("TANDEM_LOG_LEVEL", "info").lower()
# One JSON object per line. %(U)s is the path without its query string,
# which may carry ?auth= credentials; those must never reach a log. forwarded_for is
# the X-Forwarded-For that a proxy in front (deploy/nginx.conf) sent, "-" without one.
access_log_format = (
    '{"logger": "gunicorn.access", "remote": "%(h)s", '
    '"forwarded_for": "%({x-forwarded-for}i)s", "method": "%(m)s", "path": "%(U)s", '
    '"status": %(s)s, "bytes": %(B)s, "duration_us": %(D)s, '
    '"request_id": "%({x-request-id}o)s", "user_agent": "%(a)s"}'
)

# Server messages as JSON lines too, through Tandem's formatter.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "tandem.core.logs.JsonFormatter"},
        # Fills access_log_format with JSON-encoded values: a quote or an encoded line
        # break in a path or a User-Agent cannot break the line or forge fields.
        "access": {"()": "tandem.core.logs.AccessJsonFormatter", "quotes_escaped": True},
    },
    "handlers": {
        "server": {
            "class": "tandem.core.logs.LineHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
        "access": {
            "class": "tandem.core.logs.LineHandler",
            "formatter": "access",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["server"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["server"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def post_fork(server, worker):
    # Nothing loop-bound exists before fork: the Flask app builds its loop thread,
    # engine and pool on first use in each worker (tandem.bridge.CorePortal).
    worker.log.debug("worker %s forked; the core portal starts on first request", worker.pid)


def post_worker_init(worker):
    # On SIGTERM gunicorn waits graceful_timeout for requests to finish, and a
    # stream never finishes by itself. Tell every stream to end (clients get a
    # final "close" event and resume elsewhere), then let gunicorn go on.
    previous = signal.getsignal(signal.SIGTERM)
    extensions = getattr(worker.wsgi, "extensions", {})
    portal = extensions.get("tandem")
    slots = extensions.get("tandem_slots")
    if slots is not None and portal is not None and portal.settings.wsgi_stream_slots is None:
        # Size the stream slots from the threads this worker really has
        # (`--threads N` on the command line included), not from the environment.
        from tandem.core.settings import slots_for_threads

        slots.total = slots_for_threads(worker.cfg.threads)

    def on_term(signum, frame):
        if portal is not None:
            portal.begin_shutdown()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_exit(server, worker):
    # Finish pending writes and close the pool before the worker goes.
    portal = getattr(worker.wsgi, "extensions", {}).get("tandem")
    if portal is not None:
        portal.close()
