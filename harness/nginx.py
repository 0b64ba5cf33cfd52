"""The split plane: nginx with the shipped ``deploy/nginx.conf`` in front of both doors.

``nginx(wsgi, asgi)`` runs that config in front of two started doors, with only its
listen port and upstream addresses rewritten, and :func:`start_split_plane` starts all
three. ``scripts/system-packages.sh`` installs nginx.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ServerError
from harness.net import LOOPBACK
from harness.processes import REPO_ROOT
from harness.serverprocess import ServerProcess, complete_lines, read_text
from harness.servers import Doors, ServerPool, start_doors
from harness.waiting import WaitTimeout, eventually

NGINX_CONF = REPO_ROOT / "deploy" / "nginx.conf"
# The only lines of deploy/nginx.conf that the harness rewrites: the listen port and the
# two upstream addresses. Everything else, the routing above all, runs as shipped.
NGINX_LISTEN = "listen 80;"
NGINX_WSGI_SERVER = "server 127.0.0.1:8000;"
NGINX_ASGI_SERVER = "server 127.0.0.1:8001;"

# The main config around it: in the foreground, every file under one directory, and an
# access log that says which upstream answered. Workers run as the user running the
# tests, so that they can write the temporary files of a test's private directory.
_NGINX_MAIN = """\
# Written by harness/nginx.py around deploy/nginx.conf (rendered as tandem.conf).
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
{user}
events {{
    worker_connections 1024;
}}
http {{
    log_format tandem_test escape=json '{{"method": "$request_method", "uri": "$uri", '
        '"status": $status, "upstream": "$upstream_addr", '
        '"request_id": "$upstream_http_x_request_id"}}';
    access_log {root}/access.log tandem_test;
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    include {root}/tandem.conf;
}}
"""


def nginx_executable() -> str:
    """The nginx binary (Debian's package puts it in /usr/sbin)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise ServerError("nginx is not installed: run scripts/system-packages.sh as root")
    return found


def render_nginx_conf(conf: Path, *, port: int, wsgi: str, asgi: str) -> str:
    """``conf`` listening on 127.0.0.1:``port`` in front of ``wsgi`` and ``asgi`` (HOST:PORT)."""
    text = conf.read_text()
    for old, new in (
        (NGINX_LISTEN, f"listen {LOOPBACK}:{port};"),
        (NGINX_WSGI_SERVER, f"server {wsgi};"),
        (NGINX_ASGI_SERVER, f"server {asgi};"),
    ):
        if text.count(old) != 1:
            raise ServerError(f"{conf} must hold {old!r} exactly once: the harness rewrites it")
        text = text.replace(old, new)
    return text


class NginxProcess(ServerProcess):
    """A foreground nginx on loopback with ``conf`` (default: the shipped deploy/nginx.conf)
    in front of a started gunicorn and hypercorn.

    Its files sit in :attr:`root`, ``<log_dir>/<name>-<port>/``: the rendered config,
    the pid file, ``error.log``, ``access.log`` (JSON lines with the ``upstream`` that
    answered) and the temporary files. It is ready once ``/api/v1/health`` answers 200
    through it, that is from gunicorn.
    """

    def __init__(
        self,
        wsgi: ServerProcess,
        asgi: ServerProcess,
        *,
        conf: Path = NGINX_CONF,
        port: int | None = None,
        log_dir: Path | str | None = None,
        name: str = "nginx",
    ) -> None:
        self.wsgi, self.asgi, self.conf = wsgi, asgi, conf
        self._binary = nginx_executable()
        super().__init__(self._command_for, name=name, port=port, log_dir=log_dir)

    @property
    def root(self) -> Path:
        if self.log_dir is None:
            raise ServerError(f"{self.name} was not started: it has no directory")
        return self.log_dir / f"{self.name}-{self.port}"

    def _command_for(self, port: int) -> list[str]:
        # Called by start() for each port tried: the config names the port.
        if self.log_dir is None:
            raise ServerError(f"{self.name} was not started: it has no directory")
        root = self.log_dir / f"{self.name}-{port}"
        (root / "temp").mkdir(parents=True, exist_ok=True)
        (root / "tandem.conf").write_text(
            render_nginx_conf(
                self.conf,
                port=port,
                wsgi=f"{LOOPBACK}:{self.wsgi.port}",
                asgi=f"{LOOPBACK}:{self.asgi.port}",
            )
        )
        user = "user root;" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(_NGINX_MAIN.format(root=root, user=user))
        main, errors = str(root / "nginx.conf"), str(root / "error.log")
        return [self._binary, "-p", str(root), "-c", main, "-e", errors]

    def error_log_text(self) -> str:
        return "" if self.log_dir is None else read_text(self.root / "error.log")

    def access_entries(self) -> list[dict[str, Any]]:
        """nginx's access lines so far, one dict per complete line."""
        text = "" if self.log_dir is None else read_text(self.root / "access.log")
        return [json.loads(line) for line in complete_lines(text)]

    def wait_for_access(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait for nginx's access line that satisfies ``predicate`` (written once the
        response, or the whole stream, is done) and return it."""

        def matching() -> dict[str, Any] | None:
            return next((entry for entry in self.access_entries() if predicate(entry)), None)

        try:
            return eventually(matching, timeout, what="a matching nginx access line")
        except WaitTimeout as exc:
            raise ServerError(str(exc)) from None

    def log_tail(self, lines: int = 40) -> str:
        tail = self.error_log_text().splitlines()[-lines:]
        return "\n".join(
            [super().log_tail(lines), f"--- {self.name} error.log (last {len(tail)} lines)", *tail]
        )


def nginx(
    wsgi: ServerProcess,
    asgi: ServerProcess,
    *,
    conf: Path = NGINX_CONF,
    port: int | None = None,
    log_dir: Path | str | None = None,
    name: str = "nginx",
) -> NginxProcess:
    """nginx with the shipped config in front of ``wsgi`` and ``asgi``, not started.
    Start it after both are ready: it reads their ports when it starts."""
    return NginxProcess(wsgi, asgi, conf=conf, port=port, log_dir=log_dir, name=name)


@dataclass(frozen=True)
class SplitPlane(Doors):
    """nginx, and the gunicorn and hypercorn behind it, on one database."""

    nginx: NginxProcess

    @property
    def url(self) -> str:
        """The one origin: nginx."""
        return self.nginx.url


def start_split_plane(
    pool: ServerPool,
    db_url: str,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    threads: int = 8,
) -> SplitPlane:
    """Start gunicorn and hypercorn on ``db_url`` (migrated) with ``env``, then nginx in
    front of them, all in ``pool``."""
    doors = start_doors(pool, db_url, env=env, workers=workers, threads=threads)
    proxy = nginx(doors.wsgi, doors.asgi)
    pool.start(proxy)
    return SplitPlane(doors.wsgi, doors.asgi, proxy)
