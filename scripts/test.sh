#!/usr/bin/env bash
# The whole check, as CI runs it: install (Python and Debian packages), start the services,
# lint, type-check, test with branch coverage.
# Extra arguments go to pytest (for example: scripts/test.sh -k parity -x).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh --dev
scripts/system-packages.sh   # nginx and chromium for the split-plane and browser tests
scripts/services.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Branch coverage of the tandem package ([tool.coverage] in pyproject.toml). A full run
# must reach the floor there (fail_under); a run narrowed by arguments cannot, so it only
# reports. The data file stays in the repository root, git-ignored.
coverage=(--cov --cov-report=term)
if [[ $# -gt 0 ]]; then
  coverage+=(--cov-fail-under=0)
fi
# pytest exits 5 when it collects nothing; set -e turns that into a failure too.
.venv/bin/pytest "${coverage[@]}" "$@"
