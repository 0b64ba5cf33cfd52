"""The OpenAPI document, written once and served by both doors."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from tandem import __version__

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str | None = None, media: str = _JSON) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = {media: {"schema": _ref(schema)}}
    return answer


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": "#/components/responses/Error"} for status in statuses}


def _query(name: str, description: str, schema: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": schema},
    }


_TOPIC = {
    "name": "topic",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[-_A-Za-z0-9]{1,64}$"},
}
_TOPICS = {
    "name": "topics",
    "in": "path",
    "required": True,
    "description": "One topic or a comma-separated list",
    "schema": {"type": "string"},
}
_PUBLISH_OPTIONS = [
    _query("title", "Title (also the X-Title, Title, t headers)"),
    _query("priority", "1-5 or min, low, default, high, max, urgent (also X-Priority, p)"),
    _query("tags", "Comma-separated tags (also X-Tags, ta)"),
    _query("click", "URL to open on click (also X-Click)"),
    _query("cache", "'no' delivers live only and stores nothing (also X-Cache)"),
]
_SUBSCRIBE_OPTIONS = [
    _query("poll", "1 returns the stored messages and closes"),
    _query("since", "all, latest, none, a duration (10m), a unix time or a message id"),
    _query("last_event_id", "Resume after this message id (also the Last-Event-ID header)"),
    _query("priority", "Only these priorities (comma list)"),
    _query("tags", "Only messages with all these tags (comma list)"),
    _query("title", "Only messages with exactly this title"),
    _query("message", "Only messages with exactly this text"),
]

_SCHEMAS: dict[str, Any] = {
    "Message": {
        "type": "object",
        "required": ["id", "time", "expires", "event", "topic", "message"],
        "properties": {
            "id": {"type": "string", "description": "Opaque id; also a resume cursor"},
            "time": {"type": "integer", "description": "Unix seconds"},
            "expires": {"type": "integer", "description": "Unix seconds"},
            "event": {"type": "string", "enum": ["message"]},
            "topic": {"type": "string"},
            "message": {"type": "string"},
            "title": {"type": "string"},
            "priority": {"type": "integer", "minimum": 1, "maximum": 5},
            "tags": {"type": "array", "items": {"type": "string"}},
            "click": {"type": "string"},
        },
    },
    "NewMessage": {
        "type": "object",
        "properties": {
            "message": {"type": "string"},
            "title": {"type": "string"},
            "priority": {
                "oneOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string"}]
            },
            "tags": {"type": "array", "items": {"type": "string"}},
            "click": {"type": "string"},
            "cache": {"type": "boolean"},
        },
    },
    "MessagePage": {
        "type": "object",
        "required": ["messages", "next_cursor"],
        "properties": {
            "messages": {"type": "array", "items": _ref("Message")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as cursor= for the next page; null at the end",
            },
        },
    },
    "Topics": {
        "type": "object",
        "properties": {
            "topics": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "messages": {"type": "integer"},
                        "last_time": {"type": ["integer", "null"]},
                    },
                },
            }
        },
    },
    "Health": {
        "type": "object",
        "properties": {"healthy": {"type": "boolean"}, "database": {"type": "string"}},
    },
    "Error": {
        "type": "object",
        "required": ["error", "message", "code"],
        "properties": {
            "error": {"type": "string", "description": "The HTTP reason phrase"},
            "message": {"type": "string", "description": "What went wrong, for a person"},
            "code": {"type": "integer", "description": "The HTTP status"},
        },
    },
}


# --- identity and access ---------------------------------------------------------------

_SECURITY_SCHEMES = {
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "user:password, or an empty user and a token as the password",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "A token, tk_..."},
    "auth_param": {
        "type": "apiKey",
        "in": "query",
        "name": "auth",
        "description": "base64 of a whole Authorization value (for EventSource and WebSocket)",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "tandem_session",
        "description": "The web UI's signed session; cross-site requests are refused",
    },
}

_USER = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["admin", "user"]},
        "created": {"type": "integer"},
    },
}
_TOKEN = {
    "type": "object",
    "properties": {
        "user": {"type": "string"},
        "prefix": {"type": "string", "description": "tk_ and the first characters"},
        "label": {"type": ["string", "null"]},
        "expires": {"type": ["integer", "null"]},
        "last_used": {"type": ["integer", "null"]},
        "created": {"type": "integer"},
    },
}
_PERMISSION = {"type": "string", "enum": ["read-write", "read-only", "write-only", "deny"]}
_RULE = {
    "type": "object",
    "required": ["user", "pattern", "permission"],
    "properties": {
        "user": {"type": "string", "description": "A user name, or everyone"},
        "pattern": {"type": "string", "description": "A topic name; * matches any run"},
        "permission": _PERMISSION,
    },
}
_ADMIN_SCHEMAS: dict[str, Any] = {
    "User": _USER,
    "Users": {"type": "object", "properties": {"users": {"type": "array", "items": _ref("User")}}},
    "NewUser": {
        "type": "object",
        "required": ["name", "password"],
        "properties": {
            "name": {"type": "string"},
            "password": {"type": "string"},
            "role": {"type": "string", "enum": ["admin", "user"]},
        },
    },
    "UserChange": {
        "type": "object",
        "properties": {
            "password": {"type": "string"},
            "role": {"type": "string", "enum": ["admin", "user"]},
        },
    },
    "Token": _TOKEN,
    "Tokens": {
        "type": "object",
        "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
    },
    "IssuedToken": {
        "allOf": [
            _ref("Token"),
            {
                "type": "object",
                "properties": {"token": {"type": "string", "description": "Shown this once"}},
            },
        ]
    },
    "NewToken": {
        "type": "object",
        "properties": {
            "user": {"type": "string", "description": "Admins only: another user's token"},
            "label": {"type": "string"},
            "expires": {"type": "string", "description": "A lifetime such as 30d"},
        },
    },
    "Rule": _RULE,
    "Rules": {"type": "object", "properties": {"rules": {"type": "array", "items": _ref("Rule")}}},
    "Removed": {"type": "object", "properties": {"removed": {"type": "integer"}}},
}


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": _ref(schema)}}}


def _admin(summary: str, answer: str, schema: str, *statuses: int, **more: Any) -> dict[str, Any]:
    status = "201" if summary.startswith(("Create", "Issue", "Grant")) else "200"
    return {
        "summary": summary,
        "tags": ["admin"],
        "responses": {status: _answer(answer, schema), **_errors(401, 403, *statuses)},
        **more,
    }


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_USER_QUERY = _query("user", "Another user's (admins only)")
_ADMIN_PATHS: dict[str, Any] = {
    "/api/v1/users": {
        "get": _admin("List users (admin)", "The users", "Users"),
        "post": _admin(
            "Create a user (admin)", "The user", "User", 400, 409, requestBody=_json_body("NewUser")
        ),
    },
    "/api/v1/users/{name}": {
        "patch": _admin(
            "Change a user's password or role (admin); their web sessions end",
            "The user",
            "User",
            400,
            404,
            parameters=[_NAME],
            requestBody=_json_body("UserChange"),
        ),
        "delete": _admin(
            "Remove a user with their tokens and rules (admin)",
            "Removed",
            "Removed",
            404,
            parameters=[_NAME],
        ),
    },
    "/api/v1/tokens": {
        "get": _admin(
            "List your tokens (an admin without user=: everyone's)",
            "The tokens",
            "Tokens",
            404,
            parameters=[_USER_QUERY],
        ),
        "post": _admin(
            "Issue a token for yourself (admins: for user)",
            "The token, shown this once",
            "IssuedToken",
            400,
            404,
            requestBody=_json_body("NewToken"),
        ),
    },
    "/api/v1/tokens/{token}": {
        "delete": _admin(
            "Remove one of your tokens, by its prefix",
            "The removed token",
            "Token",
            404,
            parameters=[
                {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
                _USER_QUERY,
            ],
        ),
    },
    "/api/v1/access": {
        "get": _admin(
            "List access rules (admin)",
            "The rules",
            "Rules",
            parameters=[_query("user", "Only this user's (or everyone's) rules")],
        ),
        "post": _admin(
            "Grant a permission on a topic pattern (admin); replaces the same pattern's rule",
            "The rule",
            "Rule",
            400,
            404,
            requestBody=_json_body("Rule"),
        ),
        "delete": _admin(
            "Revoke a user's rule on pattern=, or all of the user's rules (admin)",
            "How many",
            "Removed",
            400,
            404,
            parameters=[
                {"name": "user", "in": "query", "required": True, "schema": {"type": "string"}},
                _query("pattern", "The pattern; all of the user's rules when absent"),
            ],
        ),
    },
}


# --- the web pages (HTML; forms post with a CSRF token and answer 303 to a page) ----------

_HTML = {"description": "HTML", "content": {"text/html": {}}}
_SEE_OTHER = {"description": "Done: on to the page (post/redirect/get)"}


def _page(summary: str, *statuses: int, parameters: list[Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["web"],
        "responses": {"200": _HTML, **{str(s): _HTML for s in statuses}},
    }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _form(
    summary: str,
    fields: dict[str, str],
    *statuses: int,
    parameters: list[Any] | None = None,
    answer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A page's form: ``fields`` (name: description) and its CSRF token."""
    properties = {name: {"type": "string", "description": text} for name, text in fields.items()}
    properties["csrf_token"] = {"type": "string", "description": "The page's CSRF token"}
    operation = _page(summary, 400, *statuses, parameters=parameters)
    operation["responses"] = {
        **({"200": answer} if answer else {"303": _SEE_OTHER}),
        **{k: v for k, v in operation["responses"].items() if k != "200"},
    }
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "required": ["csrf_token"], "properties": properties}
            }
        },
    }
    return operation


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_ADMIN_STATUSES = (403, 404, 409)
_WEB_PATHS: dict[str, Any] = {
    "/app": {
        "get": {
            "summary": "Open a topic's page (the topic list's form): 303 to /app/{topic}",
            "tags": ["web"],
            "parameters": [_query("topic", "The topic")],
            "responses": {"303": _SEE_OTHER, "400": _HTML},
        }
    },
    "/app/{topic}": {
        "get": _page(
            "A topic's page: its newest messages, live through /{topic}/sse "
            "(polling /{topic}/json where the stream is refused)",
            400,
            403,
            parameters=[_TOPIC],
        ),
        "post": _form(
            "Publish from the topic page",
            {
                "message": "The message",
                "title": "Title",
                "priority": "1-5 or a name",
                "tags": "Comma-separated tags",
            },
            403,
            413,
            429,
            parameters=[_TOPIC],
        ),
    },
    "/login": {
        "get": _page("The login form", parameters=[_query("next", "Where to go after")]),
        "post": _form(
            "Sign in: sets the session cookie that both doors read; 401 for a wrong "
            "password, 429 after too many failures",
            {"username": "User name", "password": "Password", "next": "Where to go after"},
            401,
            429,
        ),
    },
    "/logout": {"post": _form("Sign out: ends the session", {})},
    "/admin/users": {
        "get": _page("Users (admin)", 403),
        "post": _form(
            "Add a user (admin)",
            {"name": "User name", "password": "Password", "role": "user or admin"},
            *_ADMIN_STATUSES,
        ),
    },
    "/admin/users/{name}": {
        "post": _form(
            "Change a user's role or password (admin); their web sessions end",
            {"role": "user or admin", "password": "A new password"},
            *_ADMIN_STATUSES,
            parameters=[_path("name")],
        )
    },
    "/admin/users/{name}/remove": {
        "post": _form(
            "Remove a user with their tokens and rules (admin)",
            {},
            *_ADMIN_STATUSES,
            parameters=[_path("name")],
        )
    },
    "/admin/tokens": {
        "get": _page("Every user's tokens (admin)", 403),
        "post": _form(
            "Issue a token (admin): the answer shows it, this once",
            {"user": "Whose", "label": "A label", "expires": "A lifetime such as 30d"},
            *_ADMIN_STATUSES,
            answer=_HTML,
        ),
    },
    "/admin/tokens/{prefix}/remove": {
        "post": _form(
            "Remove a token, by its prefix (admin)",
            {"user": "Whose"},
            *_ADMIN_STATUSES,
            parameters=[_path("prefix")],
        )
    },
    "/admin/access": {
        "get": _page("Access rules (admin)", 403),
        "post": _form(
            "Grant a permission on a topic pattern (admin)",
            {"user": "A user, or everyone", "pattern": "Topic pattern", "permission": "See Rule"},
            *_ADMIN_STATUSES,
        ),
    },
    "/admin/access/revoke": {
        "post": _form(
            "Revoke a rule (admin)",
            {"user": "A user, or everyone", "pattern": "Topic pattern"},
            *_ADMIN_STATUSES,
        )
    },
}


def _publish_operation(summary: str, method_body: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["ntfy"],
        "parameters": [_TOPIC, *_PUBLISH_OPTIONS],
        "responses": {
            "200": _answer("The published message", "Message"),
            **_errors(400, 401, 403, 413, 429, 503),
        },
    }
    if method_body:
        operation["requestBody"] = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    else:
        operation["parameters"] = [*operation["parameters"], _query("message", "The message")]
    return operation


def build_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of Tandem's HTTP interface."""
    publish = _publish_operation("Publish a message (the body is the text)", True)
    publish_get = _publish_operation("Publish with a GET (for webhooks)", False)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tandem",
            "version": __version__,
            "description": "Real-time topic hub, ntfy-compatible.",
        },
        "paths": {
            "/": {
                "get": {
                    "summary": "The web UI: the topics the caller may read, and how to publish",
                    "tags": ["web"],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                },
                "post": {
                    "summary": "Publish a message given as JSON",
                    "tags": ["ntfy"],
                    "requestBody": {
                        "required": True,
                        "content": {
                            _JSON: {
                                "schema": {
                                    "allOf": [
                                        _ref("NewMessage"),
                                        {
                                            "type": "object",
                                            "required": ["topic"],
                                            "properties": {"topic": {"type": "string"}},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _answer("The published message", "Message"),
                        **_errors(400, 401, 403, 413, 429, 503),
                    },
                },
            },
            "/{topic}": {"put": publish, "post": publish},
            "/{topic}/publish": {"get": publish_get},
            "/{topic}/send": {"get": publish_get},
            "/{topic}/trigger": {"get": publish_get},
            "/{topics}/{kind}": {
                "get": {
                    "summary": "Subscribe (json, sse or raw stream), or poll with poll=1",
                    "tags": ["ntfy"],
                    "parameters": [
                        _TOPICS,
                        {
                            "name": "kind",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": ["json", "sse", "raw"]},
                        },
                        *_SUBSCRIBE_OPTIONS,
                    ],
                    "responses": {
                        "200": {
                            "description": "json: one event per line; sse: event frames; "
                            "raw: message text per line",
                            "content": {
                                "application/x-ndjson": {},
                                "text/event-stream": {},
                                "text/plain": {},
                            },
                        },
                        **_errors(400, 401, 403, 429, 503),
                    },
                }
            },
            "/{topics}/ws": {
                "get": {
                    "summary": "Subscribe over WebSocket (the ASGI door; 501 on the WSGI door)",
                    "tags": ["ntfy"],
                    "parameters": [_TOPICS, *_SUBSCRIBE_OPTIONS],
                    "responses": {
                        "101": {"description": "One JSON text frame per event"},
                        **_errors(400, 401, 403, 429, 501),
                    },
                }
            },
            "/api/v1/health": {
                "get": {
                    "summary": "Health, including a database round trip",
                    "tags": ["api"],
                    "responses": {"200": _answer("Healthy", "Health"), **_errors(503)},
                }
            },
            "/api/v1/streams": {
                "get": {
                    "summary": "Stream-slot usage of the serving process",
                    "tags": ["api"],
                    "responses": {
                        "200": {
                            "description": "slots is null where streams are unbounded",
                            "content": {
                                _JSON: {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "door": {"type": "string", "enum": ["wsgi", "asgi"]},
                                            "pid": {"type": "integer"},
                                            "in_use": {"type": "integer"},
                                            "slots": {"type": ["integer", "null"]},
                                            "direct": {
                                                "type": "integer",
                                                "description": "streams written to "
                                                "their sockets directly",
                                            },
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/api/v1/topics": {
                "get": {
                    "summary": "Topics with stored messages, and their counts",
                    "tags": ["api"],
                    "responses": {"200": _answer("The topics", "Topics"), **_errors(503)},
                }
            },
            "/api/v1/topics/{topic}/messages": {
                "get": {
                    "summary": "A page of a topic's history, oldest first",
                    "tags": ["api"],
                    "parameters": [
                        _TOPIC,
                        _query("cursor", "Start after this message id"),
                        _query("limit", "1 to 1000, default 100", "integer"),
                    ],
                    "responses": {
                        "200": _answer("One page", "MessagePage"),
                        **_errors(400, 401, 403, 503),
                    },
                },
                "post": {
                    "summary": "Publish a message",
                    "tags": ["api"],
                    "parameters": [_TOPIC],
                    "requestBody": {
                        "required": True,
                        "content": {_JSON: {"schema": _ref("NewMessage")}},
                    },
                    "responses": {
                        "201": _answer("The published message", "Message"),
                        **_errors(400, 401, 403, 413, 429, 503),
                    },
                },
            },
            **_ADMIN_PATHS,
            **_WEB_PATHS,
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "tags": ["api"],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {
            "schemas": {**_SCHEMAS, **_ADMIN_SCHEMAS},
            "responses": {"Error": _answer("An error", "Error")},
            "securitySchemes": _SECURITY_SCHEMES,
        },
        # Every operation accepts these; anonymous access depends on the access rules.
        "security": [{"basic": []}, {"bearer": []}, {"auth_param": []}, {"session": []}, {}],
    }


@cache
def document_json() -> bytes:
    """The document as JSON bytes, built once per process."""
    return orjson.dumps(build_document())
