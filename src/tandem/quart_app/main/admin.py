"""The admin pages: users, tokens and access rules, through ``tandem.core.administer``.

Each form posts, then redirects back to its page (post/redirect/get), except
issuing a token: that answer shows the new token, this once.
"""

from __future__ import annotations

from quart import flash, redirect, render_template, url_for
from quart.typing import ResponseReturnValue

from tandem.core import administer, pages
from tandem.core.schemas import IssuedToken
from tandem.protocol import web
from tandem.quart_app.core import caller, runtime
from tandem.quart_app.main import bp
from tandem.quart_app.main.forms import checked_form


async def _page(section: pages.AdminSection, issued: IssuedToken | None = None) -> str:
    page = await pages.admin(runtime(), caller(), section)
    return await render_template(
        f"admin/{section}.html", page=page, viewer=page.viewer, issued=issued
    )


async def _back(section: pages.AdminSection, note: str) -> ResponseReturnValue:
    await flash(note)
    return redirect(url_for(f"main.admin_{section}"), 303)


@bp.get("/admin/users")
async def admin_users() -> str:
    return await _page("users")


@bp.post("/admin/users")
async def admin_add_user() -> ResponseReturnValue:
    name, password, role = web.new_user(await checked_form())
    await administer.add_user(runtime(), caller(), name, password, role)
    return await _back("users", f"Added {role} {name}.")


@bp.post("/admin/users/<name>")
async def admin_update_user(name: str) -> ResponseReturnValue:
    password, role = web.user_change(await checked_form())
    await administer.update_user(runtime(), caller(), name, password=password, role=role)
    return await _back("users", f"Changed {name}: their web sessions have ended.")


@bp.post("/admin/users/<name>/remove")
async def admin_remove_user(name: str) -> ResponseReturnValue:
    await checked_form()
    await administer.remove_user(runtime(), caller(), name)
    return await _back("users", f"Removed {name}, with their tokens and rules.")


@bp.get("/admin/tokens")
async def admin_tokens() -> str:
    return await _page("tokens")


@bp.post("/admin/tokens")
async def admin_issue_token() -> str:
    user, label, expires = web.new_token(await checked_form())
    issued = await pages.issue_token(runtime(), caller(), user, label=label, expires=expires)
    return await _page("tokens", issued)


@bp.post("/admin/tokens/<prefix>/remove")
async def admin_remove_token(prefix: str) -> ResponseReturnValue:
    user = web.required(await checked_form(), "user")
    await pages.remove_token(runtime(), caller(), user, prefix)
    return await _back("tokens", f"Removed {user}'s token {prefix}.")


@bp.get("/admin/access")
async def admin_access() -> str:
    return await _page("access")


@bp.post("/admin/access")
async def admin_grant() -> ResponseReturnValue:
    user, pattern, permission = web.rule(await checked_form())
    await administer.grant(runtime(), caller(), user, pattern, permission)
    return await _back("access", f"Granted {permission} on {pattern} to {user}.")


@bp.post("/admin/access/revoke")
async def admin_revoke() -> ResponseReturnValue:
    user, pattern = web.revoked(await checked_form())
    await administer.revoke(runtime(), caller(), user, pattern)
    return await _back("access", f"Revoked {user}'s rule on {pattern}.")
