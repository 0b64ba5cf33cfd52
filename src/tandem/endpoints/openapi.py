"""The OpenAPI 3.1 document, generated from the endpoint table.

Bodies and answers take their schemas from the pydantic models that validate
and describe them; forms from their WTForms classes. Each door serves the
same bytes.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from wtforms.fields.core import UnboundField
from wtforms.validators import DataRequired, Length, Regexp

from tandem import __version__
from tandem.endpoints.exchange import HTML, JSON
from tandem.endpoints.forms import CsrfForm
from tandem.endpoints.table import Endpoint, Param
from tandem.protocol import models, patterns

# A werkzeug rule's variable: <name> or <converter(args):name>.
_VARIABLE = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")

_PATH_PARAMS: dict[str, dict[str, Any]] = {
    "topic": {
        "type": "string",
        "pattern": patterns.TOPIC,
        "not": {"pattern": patterns.RESERVED_TOPIC},
    },
    "topics": {
        "type": "string",
        "description": "One topic or a comma-separated list of at most 64 different ones",
        "pattern": patterns.TOPICS,
        "not": {"pattern": patterns.RESERVED_IN_LIST},
    },
    "name": {"type": "string", "description": "A user name"},
    "token": {"type": "string", "description": "A token (tk_...) or its listed prefix"},
    "prefix": {"type": "string", "description": "A token's listed prefix"},
}

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
_ERROR = {"$ref": "#/components/responses/Error"}
_HTML_ERROR = {"description": "The error as a page", "content": {HTML: {}}}
_REF = "#/components/schemas/{model}"


def build_document(rows: Sequence[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``rows``."""
    paths: dict[str, dict[str, Any]] = {}
    path_params: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for index, rule in enumerate(row.rules):
            path, params = _path(rule)
            item = paths.setdefault(path, {})
            path_params[path] = params
            for method in row.methods:
                op_id = f"{row.endpoint}.{method.lower()}" + (f".{index}" if index else "")
                item[method.lower()] = _operation(row, method, params, op_id)
    for path, item in paths.items():
        item["options"] = _options(path, item, path_params[path])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tandem",
            "version": __version__,
            "description": (
                "Real-time topic hub, ntfy-compatible. Every error is the JSON of the Error "
                "schema (the web pages': an HTML page); a path that matches no route is a 404."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(rows),
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {JSON: {"schema": {"$ref": _REF.format(model="Error")}}},
                }
            },
            "securitySchemes": _SECURITY_SCHEMES,
        },
        # Every operation accepts these; anonymous access depends on the access rules.
        "security": [{"basic": []}, {"bearer": []}, {"auth_param": []}, {"session": []}, {}],
    }


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of a werkzeug rule, and its path parameters."""
    params = []
    for match in _VARIABLE.finditer(rule):
        name, converter = match["name"], match["converter"]
        if converter == "any":
            schema = {"type": "string", "enum": [a.strip() for a in match["args"].split(",")]}
        else:
            schema = _PATH_PARAMS[name]
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _VARIABLE.sub(lambda m: "{" + m["name"] + "}", rule), params


def _operation(
    row: Endpoint, method: str, path_params: list[dict[str, Any]], op_id: str
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": row.summary, "operationId": op_id}
    if row.tag:
        operation["tags"] = [row.tag]
    parameters = path_params + [_query(param) for param in row.query]
    if parameters:
        operation["parameters"] = parameters
    if method != "GET" and (body := _request_body(row)) is not None:
        operation["requestBody"] = body
    responses: dict[str, Any] = {}
    for answer in row.returns:
        responses[str(answer.status)] = _response(answer.description, answer.model, answer.media)
    # A path parameter that the router cannot match (a slash in it) ends in a 404.
    errors = sorted({*row.errors, *((404,) if path_params else ())})
    for status in errors:
        pages_error = row.blueprint == "main" and status != 413  # 413 comes from the framework
        responses[str(status)] = _HTML_ERROR if pages_error else _ERROR
    operation["responses"] = responses
    return operation


def _options(path: str, item: dict[str, Any], path_params: list[dict[str, Any]]) -> dict[str, Any]:
    allowed = sorted({method.upper() for method in item} | {"OPTIONS"})
    if "GET" in allowed:
        allowed = sorted({*allowed, "HEAD"})
    operation: dict[str, Any] = {
        "summary": f"The methods this path allows ({', '.join(allowed)})",
        "operationId": f"options{path}",
        "responses": {
            "200": {
                "description": "No body; the Allow header lists the methods",
                "headers": {"Allow": {"schema": {"type": "string"}}},
            }
        },
    }
    if path_params:
        operation["parameters"] = path_params
    return operation


def _query(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "description": param.description,
        "schema": param.schema,
    }


def _request_body(row: Endpoint) -> dict[str, Any] | None:
    if row.form is not None:
        return {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _form_schema(row.form)}},
        }
    if row.body is not None:
        schema = {"$ref": _REF.format(model=row.body.__name__)}
        return {"required": True, "content": {JSON: {"schema": schema}}}
    if row.body_media:
        return {"required": False, "content": {media: {} for media in row.body_media}}
    return None


def _response(description: str, model: type[BaseModel] | None, media: Iterable[str]) -> Any:
    response: dict[str, Any] = {"description": description}
    if model is not None:
        response["content"] = {JSON: {"schema": {"$ref": _REF.format(model=model.__name__)}}}
    elif media:
        response["content"] = {kind: {} for kind in media}
    return response


def _form_schema(form: type[CsrfForm]) -> dict[str, Any]:
    """A form's fields as an object schema, from their WTForms validators.

    The CSRF token is always required; its value must come from a page of this
    session (the schema cannot say that).
    """
    properties: dict[str, Any] = {
        "csrf_token": {"type": "string", "description": "The page's CSRF token"}
    }
    required = ["csrf_token"]
    for name, field in inspect.getmembers(form, lambda v: isinstance(v, UnboundField)):
        schema: dict[str, Any] = {"type": "string"}
        wanted = []
        for validator in field.kwargs.get("validators") or ():
            if isinstance(validator, DataRequired):
                required.append(name)
                wanted.append(patterns.NOT_BLANK)
            elif isinstance(validator, Regexp):
                wanted.append(validator.regex.pattern)
            elif isinstance(validator, Length) and validator.max >= 0:
                schema["maxLength"] = validator.max
        if len(wanted) == 1:
            schema["pattern"] = wanted[0]
        elif wanted:
            schema["allOf"] = [{"pattern": pattern} for pattern in wanted]
        properties[name] = schema
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        **getattr(form, "json_schema_extra", {}),
    }


def _schemas(rows: Sequence[Endpoint]) -> dict[str, Any]:
    bodies = {row.body for row in rows if row.body is not None}
    answers = {answer.model for row in rows for answer in row.returns if answer.model is not None}
    chosen: list[tuple[type[BaseModel], JsonSchemaMode]]
    chosen = [(model, "validation") for model in sorted(bodies, key=lambda m: m.__name__)]
    chosen += [
        (model, "serialization")
        for model in sorted(answers | {models.Error}, key=lambda m: m.__name__)
    ]
    _, schema = models_json_schema(chosen, ref_template=_REF)
    defs: dict[str, Any] = schema.get("$defs", {})
    return dict(sorted(defs.items()))
