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


def _publish_operation(summary: str, method_body: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["ntfy"],
        "parameters": [_TOPIC, *_PUBLISH_OPTIONS],
        "responses": {"200": _answer("The published message", "Message"), **_errors(400, 413, 503)},
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
                    "summary": "The web page: how to publish and read, and the topics",
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
                        **_errors(400, 413, 503),
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
                        **_errors(400, 503),
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
                        **_errors(400, 501),
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
                    "responses": {"200": _answer("One page", "MessagePage"), **_errors(400, 503)},
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
                        **_errors(400, 413, 503),
                    },
                },
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "tags": ["api"],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "responses": {"Error": _answer("An error", "Error")},
        },
    }


@cache
def document_json() -> bytes:
    """The document as JSON bytes, built once per process."""
    return orjson.dumps(build_document())
