#!/usr/bin/env bash
# Run the hub on the embedded default (one SQLite file, no broker):
# create .venv, install, apply migrations, serve.
#   scripts/run.sh            the ASGI door, hypercorn on 127.0.0.1:8000 (every feature)
#   scripts/run.sh --wsgi     the WSGI door, gunicorn on 127.0.0.1:8000
# Further arguments go to the server, for example: scripts/run.sh -b 0.0.0.0:8080
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
.venv/bin/tandem db upgrade

if [[ "${1:-}" == "--wsgi" ]]; then
  shift
  exec .venv/bin/gunicorn -c gunicorn.conf.py "$@" wsgi:app
fi
exec .venv/bin/hypercorn -c hypercorn.toml "$@" asgi:app
