"""Signing in and out: one session cookie, which the other door reads too."""

from __future__ import annotations

from quart import redirect, render_template, request, session, url_for
from quart.typing import ResponseReturnValue

from tandem.core import pages
from tandem.core.errors import TooManyRequests, Unauthorized
from tandem.protocol import web
from tandem.quart_app.core import caller, runtime
from tandem.quart_app.main import bp
from tandem.quart_app.main.forms import checked_form


@bp.get("/login")
async def login() -> str:
    viewer = await pages.viewer(runtime(), caller())
    target = web.safe_next(request.args.get("next"))
    return await render_template("login.html", viewer=viewer, next=target)


@bp.post("/login")
async def sign_in() -> ResponseReturnValue:
    form = await checked_form()
    target = web.safe_next(form.get("next"))
    username, password = form.get("username") or "", form.get("password") or ""
    try:
        identity = await pages.sign_in(runtime(), caller().client_ip, username, password)
    except (Unauthorized, TooManyRequests) as exc:
        error = web.login_error(exc)
        page = await render_template(
            "login.html", error=error.message, username=username, next=target
        )
        return page, error.status, error.headers
    session.clear()
    session.update(web.signed_in(identity))
    return redirect(target, 303)


@bp.post("/logout")
async def logout() -> ResponseReturnValue:
    await checked_form()
    session.clear()
    return redirect(url_for("main.index"), 303)
