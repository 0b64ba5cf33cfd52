#!/usr/bin/env bash
# The whole check, as CI runs it: install (Python and Debian packages), start the services,
# lint, type-check, test.
# Extra arguments go to pytest (for example: scripts/test.sh -k parity -x).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh --dev
scripts/system-packages.sh   # nginx and chromium for the split-plane and browser tests
scripts/services.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# pytest exits 5 when it collects nothing; set -e turns that into a failure too.
.venv/bin/pytest "$@"
