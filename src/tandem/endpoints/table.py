"""Every HTTP endpoint of Tandem, once: its rule, methods, handler and what it answers.

Each door registers every row with its framework (``add_url_rule`` in the
blueprints ``main``, ``api`` and ``wire``), and the OpenAPI document is built
from the same rows. Adding an endpoint means writing one handler and one row.
Rows without a handler are the ones whose behaviour differs by door (the
WebSocket upgrade): each door registers its own view for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import orjson
from pydantic import BaseModel

from tandem.endpoints import admin, api, forms, pages, wire
from tandem.endpoints.exchange import HTML, JSON, Handler, Outcome, Request, json_reply
from tandem.protocol import models, patterns

Blueprint = Literal["main", "api", "wire"]


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter (or a header with the same meaning), for the document."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True, slots=True)
class Returns:
    """One documented answer: a JSON model, or media types with no fixed schema."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One row of the table.

    ``reads`` says what the adapter reads before the handler runs: the raw
    ``body`` (validated by ``body``, a pydantic model, where it is JSON) or a
    posted ``form`` (a :mod:`tandem.endpoints.forms` class).
    """

    blueprint: Blueprint
    name: str
    rules: tuple[str, ...]
    methods: tuple[str, ...]
    handler: Handler | None
    summary: str
    returns: tuple[Returns, ...]
    errors: tuple[int, ...] = ()
    reads: Literal["body", "form"] | None = None
    body: type[BaseModel] | None = None
    body_media: tuple[str, ...] = ()
    form: type[forms.CsrfForm] | None = None
    query: tuple[Param, ...] = ()
    tag: str = ""

    @property
    def endpoint(self) -> str:
        """The name Flask's and Quart's ``url_for`` know it by: ``main.topic``."""
        return f"{self.blueprint}.{self.name}"


# --- what several rows share ----------------------------------------------------------------


def _text(pattern: str) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern}


_PUBLISH_OPTIONS = (
    Param("title", "Title (also the X-Title, Title, t headers)"),
    Param(
        "priority",
        "1-5 or min, low, default, high, max, urgent (also X-Priority, p)",
        _text(patterns.PRIORITY),
    ),
    Param("tags", "Comma-separated tags (also X-Tags, ta)"),
    Param("click", "URL to open on click (also X-Click)"),
    Param(
        "icon", "The notification's icon, an http(s) URL (also X-Icon)", _text(patterns.ICON_URL)
    ),
    Param(
        "markdown",
        "yes: the message is markdown (also X-Markdown, md, or a text/markdown body)",
        _text(patterns.BOOLEAN),
    ),
    Param(
        "cache",
        "'no' delivers live only and stores nothing (also X-Cache)",
        _text(patterns.BOOLEAN),
    ),
)
_SINCE = _text(patterns.SINCE)
_SUBSCRIBE_OPTIONS = (
    Param("poll", "1 returns the stored messages and closes", _text(patterns.BOOLEAN)),
    Param("since", "all, latest, none, a duration (10m), a unix time or a message id", _SINCE),
    Param(
        "last_event_id",
        "Resume after this message id (also the Last-Event-ID header); wins over since",
        _SINCE,
    ),
    Param("priority", "Only these priorities (comma list)", _text(patterns.PRIORITIES)),
    Param("tags", "Only messages with all these tags (comma list)"),
    Param("title", "Only messages with exactly this title"),
    Param("message", "Only messages with exactly this text"),
)
_USER_QUERY = Param("user", "Another user's (admins only)", _text(patterns.USER_NAME))
# The topic list's "open a topic" form: white space around the name is dropped.
_TOPIC_QUERY = {
    "type": "string",
    "pattern": f"^\\s*{patterns.TOPIC[1:-1]}\\s*$",
    "not": {"pattern": f"^\\s*{patterns.RESERVED_TOPIC[1:-1]}\\s*$"},
}
_PUBLISHED = Returns(200, "The published message", models.Message)
_PAGE = Returns(200, "HTML", media=(HTML,))
_SEE_OTHER = Returns(303, "Done: on to the page (post/redirect/get)")
_STREAM_MEDIA = ("application/x-ndjson", "text/event-stream", "text/plain")
_PUBLISH_ERRORS = (400, 401, 403, 413, 429, 503)
_ADMIN_ERRORS = (401, 403)
# Forms can fail their CSRF check (400) and the caller's access (403).
_FORM_ERRORS = (400, 403)


def _page(name: str, rule: str, handler: Handler, summary: str, *errors: int) -> Endpoint:
    return Endpoint("main", name, (rule,), ("GET",), handler, summary, (_PAGE,), errors, tag="web")


def _form(
    name: str,
    rule: str,
    handler: Handler,
    form: type[forms.CsrfForm],
    summary: str,
    *errors: int,
    returns: Returns = _SEE_OTHER,
) -> Endpoint:
    return Endpoint(
        "main",
        name,
        (rule,),
        ("POST",),
        handler,
        summary,
        (returns,),
        _FORM_ERRORS + errors,
        reads="form",
        form=form,
        tag="web",
    )


def _admin(
    name: str,
    rule: str,
    method: str,
    handler: Handler,
    summary: str,
    answer: Returns,
    *errors: int,
    body: type[BaseModel] | None = None,
    query: tuple[Param, ...] = (),
) -> Endpoint:
    return Endpoint(
        "api",
        name,
        (rule,),
        (method,),
        handler,
        summary,
        (answer,),
        _ADMIN_ERRORS + errors,
        reads="body" if body else None,
        body=body,
        body_media=(JSON,) if body else (),
        query=query,
        tag="admin",
    )


@cache
def document_json() -> bytes:
    """The OpenAPI document of :data:`ENDPOINTS`, as JSON, built once per process."""
    from tandem.endpoints.openapi import build_document  # it reads this table

    return orjson.dumps(build_document(ENDPOINTS))


def openapi(req: Request) -> Outcome:
    return json_reply(document_json())


ENDPOINTS: tuple[Endpoint, ...] = (
    # --- ntfy's wire protocol ---
    Endpoint(
        "wire",
        "publish_json",
        ("/",),
        ("POST",),
        wire.publish_json,
        "Publish a message given as JSON, its topic in the body",
        (_PUBLISHED,),
        _PUBLISH_ERRORS,
        reads="body",
        body=models.TopicMessageIn,
        body_media=(JSON,),
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "publish",
        ("/<topic>",),
        ("PUT", "POST"),
        wire.publish,
        "Publish a message (the body is the text)",
        (_PUBLISHED,),
        _PUBLISH_ERRORS,
        reads="body",
        body_media=("text/plain",),
        query=_PUBLISH_OPTIONS,
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "publish_get",
        ("/<topic>/publish", "/<topic>/send", "/<topic>/trigger"),
        ("GET",),
        wire.publish,
        "Publish with a GET (for webhooks)",
        (_PUBLISHED,),
        _PUBLISH_ERRORS,
        reads="body",
        query=(Param("message", "The message text (also X-Message, m)"), *_PUBLISH_OPTIONS),
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "topic",
        ("/<topic>",),
        ("GET",),
        wire.topic,
        "UnifiedPush's discovery with up=1; otherwise on to the topic's page",
        (
            Returns(200, "With up=1: the UnifiedPush version", models.UnifiedPush),
            Returns(303, "On to /app/{topic}"),
        ),
        (400,),
        query=(
            Param(
                "up",
                "1: answer as a UnifiedPush server (also x-unifiedpush, unifiedpush)",
                _text(patterns.BOOLEAN),
            ),
        ),
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "auth",
        ("/<topics>/auth",),
        ("GET",),
        wire.auth,
        "Whether the caller may read every one of the topics (ntfy's apps ask first)",
        (Returns(200, "It may", models.Success),),
        (400, 401, 403),
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "health",
        ("/v1/health",),
        ("GET",),
        wire.health,
        "ntfy's health check: the server answers (/api/v1/health also asks the database)",
        (Returns(200, "Healthy", models.NtfyHealth),),
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "stats",
        ("/v1/stats",),
        ("GET",),
        wire.stats,
        "ntfy's public figures: messages published, and per second over the last minute",
        (Returns(200, "The figures", models.Stats),),
        (503,),
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "subscribe",
        ("/<topics>/<any(json, sse, raw):kind>",),
        ("GET",),
        wire.subscribe,
        "Subscribe (json, sse or raw stream), or poll with poll=1",
        (
            Returns(
                200,
                "json: one event per line; sse: event frames; raw: message text per line",
                media=_STREAM_MEDIA,
            ),
        ),
        (400, 401, 403, 429, 503),
        query=_SUBSCRIBE_OPTIONS,
        tag="ntfy",
    ),
    Endpoint(
        "wire",
        "subscribe_ws",
        ("/<topics>/ws",),
        ("GET",),
        None,
        "Subscribe over WebSocket (the ASGI door; 501 on the WSGI door); "
        "a GET without the upgrade is a 400",
        (Returns(101, "One JSON text frame per event"),),
        (400, 401, 403, 429, 501),
        query=_SUBSCRIBE_OPTIONS,
        tag="ntfy",
    ),
    # --- the REST API ---
    Endpoint(
        "api",
        "health",
        ("/api/v1/health",),
        ("GET",),
        api.health,
        "Health, including a database round trip",
        (Returns(200, "Healthy", models.Health),),
        (503,),
        tag="api",
    ),
    Endpoint(
        "api",
        "streams",
        ("/api/v1/streams",),
        ("GET",),
        api.streams,
        "Stream-slot usage of the serving process",
        (Returns(200, "slots is null where streams are unbounded", models.Streams),),
        tag="api",
    ),
    Endpoint(
        "api",
        "topics",
        ("/api/v1/topics",),
        ("GET",),
        api.topics,
        "Topics with stored messages that the caller may read, and their counts",
        (Returns(200, "The topics", models.Topics),),
        (401, 503),
        tag="api",
    ),
    Endpoint(
        "api",
        "messages",
        ("/api/v1/topics/<topic>/messages",),
        ("GET",),
        api.messages,
        "A page of a topic's history, oldest first",
        (Returns(200, "One page", models.MessagePage),),
        (400, 401, 403, 503),
        query=(
            Param("cursor", "Start after this message id", _text(patterns.CURSOR)),
            Param("limit", "1 to 1000, default 100", _text(patterns.LIMIT)),
        ),
        tag="api",
    ),
    Endpoint(
        "api",
        "publish",
        ("/api/v1/topics/<topic>/messages",),
        ("POST",),
        api.publish,
        "Publish a message",
        (Returns(201, "The published message", models.Message),),
        _PUBLISH_ERRORS,
        reads="body",
        body=models.MessageIn,
        body_media=(JSON,),
        tag="api",
    ),
    Endpoint(
        "api",
        "openapi",
        ("/api/v1/openapi.json",),
        ("GET",),
        openapi,
        "This document",
        (Returns(200, "OpenAPI 3.1", media=(JSON,)),),
        tag="api",
    ),
    _admin(
        "users",
        "/api/v1/users",
        "GET",
        admin.users,
        "List users (admin)",
        Returns(200, "The users", models.Users),
    ),
    _admin(
        "add_user",
        "/api/v1/users",
        "POST",
        admin.add_user,
        "Create a user (admin)",
        Returns(201, "The user", models.User),
        400,
        409,
        body=models.NewUser,
    ),
    _admin(
        "update_user",
        "/api/v1/users/<name>",
        "PATCH",
        admin.update_user,
        "Change a user's password or role (admin); their web sessions end",
        Returns(200, "The user", models.User),
        400,
        404,
        body=models.UserChange,
    ),
    _admin(
        "remove_user",
        "/api/v1/users/<name>",
        "DELETE",
        admin.remove_user,
        "Remove a user with their tokens and rules (admin)",
        Returns(200, "Removed", models.Removed),
        404,
    ),
    _admin(
        "tokens",
        "/api/v1/tokens",
        "GET",
        admin.tokens,
        "List your tokens (an admin with user=: that user's)",
        Returns(200, "The tokens", models.Tokens),
        404,
        query=(_USER_QUERY,),
    ),
    _admin(
        "add_token",
        "/api/v1/tokens",
        "POST",
        admin.add_token,
        "Issue a token for yourself (admins: for user)",
        Returns(201, "The token, shown this once", models.IssuedToken),
        400,
        404,
        body=models.NewToken,
    ),
    _admin(
        "remove_token",
        "/api/v1/tokens/<token>",
        "DELETE",
        admin.remove_token,
        "Remove one of your tokens, by its prefix",
        Returns(200, "The removed token", models.Token),
        404,
        query=(_USER_QUERY,),
    ),
    _admin(
        "rules",
        "/api/v1/access",
        "GET",
        admin.rules,
        "List access rules (admin)",
        Returns(200, "The rules", models.Rules),
        query=(Param("user", "Only this user's (or everyone's) rules"),),
    ),
    _admin(
        "grant",
        "/api/v1/access",
        "POST",
        admin.grant,
        "Grant a permission on a topic pattern (admin); replaces the same pattern's rule",
        Returns(201, "The rule", models.Rule),
        400,
        404,
        body=models.NewRule,
    ),
    _admin(
        "revoke",
        "/api/v1/access",
        "DELETE",
        admin.revoke,
        "Revoke a user's rule on pattern=, or all of the user's rules (admin)",
        Returns(200, "How many", models.Removed),
        400,
        404,
        query=(
            Param("user", "A user name, or everyone", _text(patterns.RULE_OWNER), required=True),
            Param(
                "pattern",
                "The pattern; all of the user's rules when absent",
                _text(f"^(|{patterns.RULE_PATTERN[1:-1]})$"),
            ),
        ),
    ),
    # --- the web pages ---
    _page("index", "/", pages.index, "The web UI: the topics the caller may read"),
    Endpoint(
        "main",
        "open_topic",
        ("/app",),
        ("GET",),
        pages.open_topic,
        "Open a topic's page (the topic list's form): 303 to /app/{topic}",
        (_SEE_OTHER,),
        (400,),
        query=(Param("topic", "The topic", _TOPIC_QUERY, required=True),),
        tag="web",
    ),
    _page(
        "topic",
        "/app/<topic>",
        pages.topic,
        "A topic's page: its newest messages, live through /{topic}/sse "
        "(polling /{topic}/json where the stream is refused)",
        400,
        401,
        403,
    ),
    _form(
        "publish",
        "/app/<topic>",
        pages.publish,
        forms.PublishForm,
        "Publish from the topic page",
        413,
        429,
    ),
    _page("login", "/login", pages.login, "The sign-in form"),
    _form(
        "sign_in",
        "/login",
        pages.sign_in,
        forms.LoginForm,
        "Sign in: starts the session, then on to next (a path on this site)",
        401,
        429,
    ),
    _form("logout", "/logout", pages.logout, forms.CsrfForm, "Sign out: ends the session"),
    _page("admin_users", "/admin/users", pages.admin_users, "Users (admin)", 401, 403),
    _form(
        "admin_add_user",
        "/admin/users",
        pages.admin_add_user,
        forms.NewUserForm,
        "Add a user (admin)",
        401,
        409,
    ),
    _form(
        "admin_update_user",
        "/admin/users/<name>",
        pages.admin_update_user,
        forms.UserChangeForm,
        "Set a user's password or role (admin)",
        401,
        404,
    ),
    _form(
        "admin_remove_user",
        "/admin/users/<name>/remove",
        pages.admin_remove_user,
        forms.CsrfForm,
        "Remove a user (admin)",
        401,
        404,
    ),
    _page("admin_tokens", "/admin/tokens", pages.admin_tokens, "Tokens (admin)", 401, 403),
    _form(
        "admin_issue_token",
        "/admin/tokens",
        pages.admin_issue_token,
        forms.NewTokenForm,
        "Issue a token (admin); the answer shows it this once",
        401,
        404,
        returns=_PAGE,
    ),
    _form(
        "admin_remove_token",
        "/admin/tokens/<prefix>/remove",
        pages.admin_remove_token,
        forms.TokenOwnerForm,
        "Remove a token by its prefix (admin)",
        401,
        404,
    ),
    _page("admin_access", "/admin/access", pages.admin_access, "Access rules (admin)", 401, 403),
    _form(
        "admin_grant",
        "/admin/access",
        pages.admin_grant,
        forms.RuleForm,
        "Grant a permission on a topic pattern (admin)",
        401,
        404,
    ),
    _form(
        "admin_revoke",
        "/admin/access/revoke",
        pages.admin_revoke,
        forms.RevokeForm,
        "Revoke a rule (admin)",
        401,
        404,
    ),
)
