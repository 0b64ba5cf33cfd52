"""The web pages: topics, a topic's live view, signing in and out, and the admin pages.

Each form posts, then redirects back to its page (post/redirect/get), except
issuing a token: that answer shows the new token, this once.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from tandem.core import administer, gate, pages
from tandem.core.errors import TandemError, TooManyRequests, Unauthorized
from tandem.core.runtime import Runtime
from tandem.core.schemas import Identity, IssuedToken
from tandem.core.settings import Settings
from tandem.endpoints import forms
from tandem.endpoints.exchange import Call, Outcome, Page, Redirect, Request
from tandem.endpoints.forms import (
    CsrfForm,
    LoginForm,
    NewTokenForm,
    NewUserForm,
    PublishForm,
    RevokeForm,
    RuleForm,
    TokenOwnerForm,
    UserChangeForm,
    checked,
    optional,
)
from tandem.protocol import web
from tandem.protocol.topics import validate_topic

# The login rows answer a bad login themselves (a redirect to them would loop).
_LOGIN_ROWS = frozenset({"main.login", "main.sign_in"})


def template_context(
    session: MutableMapping[str, Any], settings: Settings, door_label: str
) -> dict[str, object]:
    """What every page's template may use besides its own context (both doors add it)."""

    def csrf_token() -> str:
        return forms.csrf_token(session, settings.secret_key)

    return {"door": door_label, "csrf_token": csrf_token, **web.TEMPLATE_GLOBALS}


def failed(exc: TandemError, req: Request) -> Outcome:
    """An error as a page; an anonymous visitor who must sign in goes to the login form."""
    if isinstance(exc, Unauthorized) and req.endpoint not in _LOGIN_ROWS:
        # A GET comes back here after signing in; a form's POST cannot be replayed.
        back = req.full_path.rstrip("?") if req.method == "GET" else None
        return Redirect(req.url_for("main.login", next=back))
    error = web.page_error(exc)
    return Page("error.html", {"error": error}, error.status, error.headers)


# --- topics ----------------------------------------------------------------------------------


def index(req: Request) -> Outcome:
    who = req.caller
    return Call(
        lambda rt: pages.home(rt, who),
        lambda home: Page("index.html", {"topics": home.topics, "viewer": home.viewer}),
    )


def open_topic(req: Request) -> Outcome:
    """The topic list's "open a topic" form: on to that topic's page."""
    name = validate_topic((req.query.get("topic") or "").strip())
    return Redirect(req.url_for("main.topic", topic=name))


def topic(req: Request) -> Outcome:
    name, who = validate_topic(req.args["topic"]), req.caller
    return Call(
        lambda rt: pages.topic(rt, who, name),
        lambda page: Page(
            "topic.html", {"page": page, "viewer": page.viewer, "history": pages.HISTORY}
        ),
    )


def publish(req: Request) -> Outcome:
    form = checked(PublishForm, req)
    new = web.publish_form(req.args["topic"], form.data, max_body=req.settings.max_body)
    who = req.caller
    return Call(
        lambda rt: gate.publish(rt, who, new),
        lambda _: Redirect(req.url_for("main.topic", topic=new.topic), flash="Published."),
    )


# --- signing in and out ---------------------------------------------------------------------


def login(req: Request) -> Outcome:
    who, target = req.caller, web.safe_next(req.query.get("next"))
    return Call(
        lambda rt: pages.viewer(rt, who),
        lambda viewer: Page("login.html", {"viewer": viewer, "next": target}),
    )


def sign_in(req: Request) -> Outcome:
    form = checked(LoginForm, req)
    target = web.safe_next(form.next.data)
    username, password = form.username.data or "", form.password.data or ""
    ip = req.caller.client_ip

    async def attempt(rt: Runtime) -> Identity | Unauthorized | TooManyRequests:
        try:
            return await pages.sign_in(rt, ip, username, password)
        except (Unauthorized, TooManyRequests) as exc:
            return exc

    def answer(result: Identity | Unauthorized | TooManyRequests) -> Outcome:
        if isinstance(result, Identity):
            req.session.clear()
            req.session.update(web.signed_in(result))
            return Redirect(target)
        error = web.login_error(result)
        context = {"error": error.message, "username": username, "next": target}
        return Page("login.html", context, error.status, error.headers)

    return Call(attempt, answer)


def logout(req: Request) -> Outcome:
    checked(CsrfForm, req)
    req.session.clear()
    return Redirect(req.url_for("main.index"))


# --- admin -----------------------------------------------------------------------------------


def _shown(
    section: pages.AdminSection, issued: IssuedToken | None = None
) -> Callable[[pages.AdminPage], Page]:
    def show(page: pages.AdminPage) -> Page:
        context = {"page": page, "viewer": page.viewer, "issued": issued}
        return Page(f"admin/{section}.html", context)

    return show


def _admin_page(req: Request, section: pages.AdminSection) -> Outcome:
    who = req.caller
    return Call(lambda rt: pages.admin(rt, who, section), _shown(section))


def _back(req: Request, section: pages.AdminSection, note: str) -> Callable[[object], Redirect]:
    """After a form: back to its page, which shows ``note``."""
    return lambda _: Redirect(req.url_for(f"main.admin_{section}"), flash=note)


def admin_users(req: Request) -> Outcome:
    return _admin_page(req, "users")


def admin_add_user(req: Request) -> Outcome:
    form, who = checked(NewUserForm, req), req.caller
    name, password = form.name.data, form.password.data
    role = optional(form.role.data) or "user"
    return Call(
        lambda rt: administer.add_user(rt, who, name, password, role),
        _back(req, "users", f"Added {role} {name}."),
    )


def admin_update_user(req: Request) -> Outcome:
    form, who, name = checked(UserChangeForm, req), req.caller, req.args["name"]
    password, role = optional(form.password.data), optional(form.role.data)
    return Call(
        lambda rt: administer.update_user(rt, who, name, password=password, role=role),
        _back(req, "users", f"Changed {name}: their web sessions have ended."),
    )


def admin_remove_user(req: Request) -> Outcome:
    checked(CsrfForm, req)
    who, name = req.caller, req.args["name"]
    return Call(
        lambda rt: administer.remove_user(rt, who, name),
        _back(req, "users", f"Removed {name}, with their tokens and rules."),
    )


def admin_tokens(req: Request) -> Outcome:
    return _admin_page(req, "tokens")


def admin_issue_token(req: Request) -> Outcome:
    form, who = checked(NewTokenForm, req), req.caller
    user, label, expires = form.user.data, optional(form.label.data), optional(form.expires.data)

    async def issue(rt: Runtime) -> tuple[pages.AdminPage, IssuedToken]:
        issued = await pages.issue_token(rt, who, user, label=label, expires=expires)
        return await pages.admin(rt, who, "tokens"), issued

    return Call(issue, lambda done: _shown("tokens", done[1])(done[0]))


def admin_remove_token(req: Request) -> Outcome:
    form, who, prefix = checked(TokenOwnerForm, req), req.caller, req.args["prefix"]
    user = form.user.data
    return Call(
        lambda rt: pages.remove_token(rt, who, user, prefix),
        _back(req, "tokens", f"Removed {user}'s token {prefix}."),
    )


def admin_access(req: Request) -> Outcome:
    return _admin_page(req, "access")


def admin_grant(req: Request) -> Outcome:
    form, who = checked(RuleForm, req), req.caller
    user, pattern, permission = form.user.data, form.pattern.data, form.permission.data
    return Call(
        lambda rt: administer.grant(rt, who, user, pattern, permission),
        _back(req, "access", f"Granted {permission} on {pattern} to {user}."),
    )


def admin_revoke(req: Request) -> Outcome:
    form, who = checked(RevokeForm, req), req.caller
    user, pattern = form.user.data, form.pattern.data
    return Call(
        lambda rt: administer.revoke(rt, who, user, pattern),
        _back(req, "access", f"Revoked {user}'s rule on {pattern}."),
    )
