"""The web UI in real headless Chromium, through the shipped nginx config.

nginx sends the pages to gunicorn and the topic's SSE stream to hypercorn: the
person signs in on one door and streams from the other with the same cookie,
and cannot tell. Access is ``deny-all``, so every live message the page shows
proves that the cookie was accepted by the door that streamed it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from harness.environment import server_env
from harness.nginx import SplitPlane, start_split_plane
from harness.servers import ServerPool, gunicorn
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

# The README's screenshot: refreshed only when asked (TANDEM_REFRESH_SCREENSHOTS=1), so a test
# run never rewrites a tracked file; otherwise the screenshot goes to the test's tmp_path.
README_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "web-ui-topic.png"
TIMEOUT_MS = 20_000
PASSWORD = "a long enough password 1"


def _tandem(db_url: str, *args: str) -> None:
    """Run the real CLI, as an operator would."""
    env = server_env({"TANDEM_DATABASE_URL": db_url, "TANDEM_PASSWORD": PASSWORD})
    tandem = Path(sys.executable).with_name("tandem")
    done = subprocess.run(
        [str(tandem), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def plane(server_pool: ServerPool, migrated_sqlite_url: str) -> SplitPlane:
    _tandem(migrated_sqlite_url, "user", "add", "--role", "admin", "root")
    _tandem(migrated_sqlite_url, "user", "add", "alice")
    _tandem(migrated_sqlite_url, "access", "grant", "alice", "news-*", "read-write")
    env = {
        "TANDEM_DEFAULT_ACCESS": "deny-all",
        "TANDEM_TRUSTED_PROXIES": "127.0.0.1,::1",
        "TANDEM_KEEPALIVE_INTERVAL": "2s",
    }
    return start_split_plane(server_pool, migrated_sqlite_url, env=env)


def _curl(*args: str) -> dict[str, object]:
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--noproxy", "*", "--max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _sign_in(page: Page, base: str, user: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#signed-in-user")).to_have_text(user, timeout=TIMEOUT_MS)


def test_sign_in_watch_live_and_publish_through_nginx(
    plane: SplitPlane, chromium: Browser, tmp_path: Path
) -> None:
    topic = f"news-{uuid.uuid4().hex[:8]}"
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        _sign_in(page, plane.url, "alice")

        page.goto(f"{plane.url}/app/{topic}")
        status = page.locator("#status")
        expect(status).to_have_attribute("data-state", "connected", timeout=TIMEOUT_MS)

        # From outside: curl publishes through nginx (to gunicorn) with alice's password.
        sent = _curl(
            "-u",
            f"alice:{PASSWORD}",
            "-H",
            "Title: From curl",
            "-d",
            "deploy finished",
            f"{plane.url}/{topic}",
        )
        from_curl = page.locator(f'#messages li.message[data-id="{sent["id"]}"]')
        expect(from_curl).to_contain_text("deploy finished", timeout=TIMEOUT_MS)
        expect(from_curl.locator(".title")).to_have_text("From curl")

        # Through the page's own form.
        page.fill("#message", "written in the browser")
        page.fill("#title", "From the form")
        page.select_option("#priority", "4")
        page.fill("#tags", "ui,e2e")
        page.click("#publish")
        from_form = page.locator("#messages li.message", has_text="written in the browser")
        expect(from_form).to_have_count(1, timeout=TIMEOUT_MS)
        expect(from_form.locator(".tag")).to_have_text(["ui", "e2e"])
        expect(status).to_have_attribute("data-state", "connected", timeout=TIMEOUT_MS)

        # Both are stored, newest first on the page, each shown once.
        stored = subprocess.run(
            [
                "curl",
                "-sS",
                "--noproxy",
                "*",
                "-u",
                f"alice:{PASSWORD}",
                f"{plane.url}/{topic}/json?poll=1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.splitlines()
        texts = [json.loads(line)["message"] for line in stored]
        assert texts == ["deploy finished", "written in the browser"]
        shown = page.locator("#messages li.message .text").all_text_contents()
        assert shown == ["written in the browser", "deploy finished"]

        refresh = os.environ.get("TANDEM_REFRESH_SCREENSHOTS") == "1"
        screenshot = README_SCREENSHOT if refresh else tmp_path / README_SCREENSHOT.name
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
    finally:
        context.close()


def test_a_topic_outside_the_users_rules_is_refused(plane: SplitPlane, chromium: Browser) -> None:
    context = chromium.new_context()
    page = context.new_page()
    try:
        _sign_in(page, plane.url, "alice")
        response = page.goto(f"{plane.url}/app/secret-{uuid.uuid4().hex[:6]}")
        assert response is not None
        assert response.status == 403
        # An admin page is not for alice either.
        admin = page.goto(f"{plane.url}/admin/users")
        assert admin is not None
        assert admin.status == 403
    finally:
        context.close()


def test_signed_out_visitors_are_sent_to_sign_in(plane: SplitPlane, chromium: Browser) -> None:
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{plane.url}/app/news-x")
        expect(page.locator("#login-form")).to_be_visible(timeout=TIMEOUT_MS)
        assert "/login" in page.url
        page.fill("#username", "alice")
        page.fill("#password", "wrong password, clearly")
        page.click("#login-submit")
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#signed-in-user")).to_have_count(0)
        # Still signed out: the topic page sends the browser back to sign in.
        page.goto(f"{plane.url}/app/news-x")
        assert "/login" in page.url
    finally:
        context.close()


def test_wsgi_door_alone_falls_back_to_polling_and_says_so(
    server_pool: ServerPool, migrated_sqlite_url: str, chromium: Browser
) -> None:
    """gunicorn alone with no stream slots: the SSE request gets 503, and the page polls."""
    env = {"TANDEM_WSGI_STREAM_SLOTS": "0"}
    (wsgi,) = server_pool.start(gunicorn(migrated_sqlite_url, workers=1, env=env))
    topic = f"fallback-{uuid.uuid4().hex[:6]}"
    page = chromium.new_page()
    try:
        page.goto(f"{wsgi.url}/app/{topic}")
        status = page.locator("#status")
        expect(status).to_have_attribute("data-state", "polling", timeout=TIMEOUT_MS)
        expect(status).to_contain_text("stream slots are all busy")

        sent = _curl("-d", "seen by polling", f"{wsgi.url}/{topic}")
        polled = page.locator(f'#messages li.message[data-id="{sent["id"]}"]')
        expect(polled).to_contain_text("seen by polling", timeout=TIMEOUT_MS)
        expect(page.locator("#messages li.message")).to_have_count(1)
    finally:
        page.close()
