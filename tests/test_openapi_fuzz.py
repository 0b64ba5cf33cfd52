"""The OpenAPI document against what the doors really do, found by Schemathesis.

Schemathesis reads the document each door serves and sends every operation
requests made from its schemas, valid and invalid. Every answer must be one
the document lists, with its media type, headers and schema; a schema-valid
request must be accepted and a schema-invalid one refused; nothing may fail
with a 500. Each door runs as a real server (gunicorn, hypercorn) on its own
SQLite file, and the requests come as an admin, so that the admin API really
runs. The examples are derandomized: a run is the same run every time.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from harness.databases import fresh_sqlite, run_coroutine
from harness.servers import gunicorn, hypercorn, serving
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import allow_header_conformance

from tandem.core.runtime import Runtime
from tandem.core.settings import Settings
from tandem.protocol.topics import RESERVED

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN, PASSWORD = "fuzz-admin", "fuzz-admin-password"
AUTH = "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
MAX_BODY = Settings(_env_file=None, env="testing").max_body
MAX_EXAMPLES = 25
STREAMS = "/{topics}/{kind}"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _add_admin(db_url: str) -> None:
    settings = Settings(_env_file=None, env="testing", database_url=db_url)
    runtime = Runtime(settings)
    await runtime.start(follow=False)
    try:
        await runtime.users.add(ADMIN, PASSWORD, "admin")
    finally:
        await runtime.stop()


@pytest.fixture(scope="module", params=["gunicorn", "hypercorn"])
def door(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A door's base URL, on a SQLite file of its own with an admin."""
    root = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    db_url = fresh_sqlite(root / "tandem.db")
    run_coroutine(_add_admin(db_url))
    start = gunicorn if request.param == "gunicorn" else hypercorn
    with serving(start(db_url, log_dir=root)) as (server,):
        yield server.url


def _fresh_form_session(base_url: str) -> tuple[requests.Session, str]:
    """A browser's session on ``base_url`` and a CSRF token of it, from the login page."""
    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{base_url}/login", timeout=20)
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    return session, match.group(1)


def _fuzz(operation: Any, base_url: str) -> str | None:
    """Fuzz one operation; what went wrong, or ``None``."""
    # A path that is also a topic name (/login) routes PUT and POST to publishing too,
    # which refuses the name as reserved: Allow lists them, the document does not.
    shadows_topic = operation.path.strip("/") in RESERVED
    excluded = [allow_header_conformance] if shadows_topic else []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        session = requests.Session()
        session.trust_env = False
        if case.path == STREAMS:
            # A live stream never ends by itself: the fuzzer asks for the poll answer.
            case.query = {**(case.query or {}), "poll": "1"}
        if isinstance(case.body, dict) and "csrf_token" in case.body:
            # A form of the pages: its token must come from a page of the same session.
            session, token = _fresh_form_session(base_url)
            case.body["csrf_token"] = token
        headers = {"Authorization": AUTH}
        response = case.call(session=session, headers=headers, timeout=20)
        if response.status_code == 413:
            # Too large is decided on bytes, which no schema can say.
            assert len(response.request.body or b"") > MAX_BODY, response.request.body
            return
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # keep going: report every operation
        return f"{operation.method.upper()} {operation.path}: {exc}"
    return None


def test_every_answer_is_documented(door: str) -> None:
    schema = schemathesis.openapi.from_url(f"{door}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) > 40
    # WebSocket is not for an HTTP fuzzer: tests/test_e2e_streams.py covers the upgrade.
    fuzzed = [operation for operation in operations if operation.path != "/{topics}/ws"]
    problems = [problem for operation in fuzzed if (problem := _fuzz(operation, door))]
    assert not problems, "\n\n".join(problems)
