"""The admin pages: users, tokens and access rules, through ``tandem.core.administer``.

Each form posts, then redirects back to its page (post/redirect/get), except
issuing a token: that answer shows the new token, this once.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from tandem.core import administer, pages
from tandem.core.schemas import IssuedToken
from tandem.flask_app.core import caller, core
from tandem.flask_app.main import bp
from tandem.flask_app.main.forms import checked_form
from tandem.protocol import web


def _page(section: pages.AdminSection, issued: IssuedToken | None = None) -> str:
    who = caller()
    page = core().call(lambda rt: pages.admin(rt, who, section))
    return render_template(f"admin/{section}.html", page=page, viewer=page.viewer, issued=issued)


def _back(section: pages.AdminSection, note: str) -> ResponseReturnValue:
    flash(note)
    return redirect(url_for(f"main.admin_{section}"), 303)


@bp.get("/admin/users")
def admin_users() -> str:
    return _page("users")


@bp.post("/admin/users")
def admin_add_user() -> ResponseReturnValue:
    name, password, role = web.new_user(checked_form())
    who = caller()
    core().call(lambda rt: administer.add_user(rt, who, name, password, role))
    return _back("users", f"Added {role} {name}.")


@bp.post("/admin/users/<name>")
def admin_update_user(name: str) -> ResponseReturnValue:
    password, role = web.user_change(checked_form())
    who = caller()
    core().call(lambda rt: administer.update_user(rt, who, name, password=password, role=role))
    return _back("users", f"Changed {name}: their web sessions have ended.")


@bp.post("/admin/users/<name>/remove")
def admin_remove_user(name: str) -> ResponseReturnValue:
    checked_form()
    who = caller()
    core().call(lambda rt: administer.remove_user(rt, who, name))
    return _back("users", f"Removed {name}, with their tokens and rules.")


@bp.get("/admin/tokens")
def admin_tokens() -> str:
    return _page("tokens")


@bp.post("/admin/tokens")
def admin_issue_token() -> str:
    user, label, expires = web.new_token(checked_form())
    who = caller()
    issued = core().call(lambda rt: pages.issue_token(rt, who, user, label=label, expires=expires))
    return _page("tokens", issued)


@bp.post("/admin/tokens/<prefix>/remove")
def admin_remove_token(prefix: str) -> ResponseReturnValue:
    user = web.required(checked_form(), "user")
    who = caller()
    core().call(lambda rt: pages.remove_token(rt, who, user, prefix))
    return _back("tokens", f"Removed {user}'s token {prefix}.")


@bp.get("/admin/access")
def admin_access() -> str:
    return _page("access")


@bp.post("/admin/access")
def admin_grant() -> ResponseReturnValue:
    user, pattern, permission = web.rule(checked_form())
    who = caller()
    core().call(lambda rt: administer.grant(rt, who, user, pattern, permission))
    return _back("access", f"Granted {permission} on {pattern} to {user}.")


@bp.post("/admin/access/revoke")
def admin_revoke() -> ResponseReturnValue:
    user, pattern = web.revoked(checked_form())
    who = caller()
    core().call(lambda rt: administer.revoke(rt, who, user, pattern))
    return _back("access", f"Revoked {user}'s rule on {pattern}.")
