"""Signing in and out: one session cookie, which the other door reads too."""

from __future__ import annotations

from flask import redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from tandem.core import pages
from tandem.core.errors import TooManyRequests, Unauthorized
from tandem.flask_app.core import caller, core
from tandem.flask_app.main import bp
from tandem.flask_app.main.forms import CsrfForm, LoginForm, check
from tandem.protocol import web


@bp.get("/login")
def login() -> str:
    who = caller()
    viewer = core().call(lambda rt: pages.viewer(rt, who))
    target = web.safe_next(request.args.get("next"))
    return render_template("login.html", viewer=viewer, next=target)


@bp.post("/login")
def sign_in() -> ResponseReturnValue:
    form = LoginForm()
    check(form)
    target = web.safe_next(form.next.data)
    username, password = form.username.data or "", form.password.data or ""
    ip = caller().client_ip
    try:
        identity = core().call(lambda rt: pages.sign_in(rt, ip, username, password))
    except (Unauthorized, TooManyRequests) as exc:
        error = web.login_error(exc)
        page = render_template("login.html", error=error.message, username=username, next=target)
        return page, error.status, error.headers
    session.clear()
    session.update(web.signed_in(identity))
    return redirect(target, 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    check(CsrfForm())
    session.clear()
    return redirect(url_for("main.index"), 303)
