"""The OpenAPI document, generated from the endpoint table: valid, complete and resolvable.

That both doors serve it, and route exactly what it lists, is checked in
``test_parity_api.py``; that the doors answer as it says, by the fuzzer in
``test_openapi_fuzz.py``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from openapi_spec_validator import validate

from tandem.endpoints import ENDPOINTS, document_json
from tandem.endpoints.openapi import build_document

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> object:
    assert ref.startswith("#/components/"), ref
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        assert isinstance(node, dict), f"unresolved $ref {ref}"
        assert part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def test_openapi_is_3_1_with_info() -> None:
    document = build_document(ENDPOINTS)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"]
    assert document["info"]["version"]
    assert document["paths"]


def test_openapi_every_ref_resolves() -> None:
    document = build_document(ENDPOINTS)
    refs = _refs(document)
    assert refs, "the document uses components"
    for ref in refs:
        assert isinstance(_resolve(document, ref), dict)


def test_openapi_every_operation_has_responses() -> None:
    document = build_document(ENDPOINTS)
    operations = 0
    for path, item in document["paths"].items():
        assert path.startswith("/")
        assert set(item) <= HTTP_METHODS | {"parameters", "summary", "description"}
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            operations += 1
            responses = operation["responses"]
            assert responses, f"{method.upper()} {path} has no responses"
            for code, response in responses.items():
                assert re.fullmatch(r"[1-5][0-9]{2}|default", code), (path, code)
                assert "$ref" in response or "description" in response
    assert operations >= 10


def test_openapi_path_parameters_are_declared() -> None:
    document = build_document(ENDPOINTS)
    for path, item in document["paths"].items():
        templated = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = {
                p["name"]
                for p in operation.get("parameters", [])
                if p.get("in") == "path" and p.get("required") is True
            }
            assert declared == templated, f"{method.upper()} {path}"


def test_openapi_documents_the_core_endpoints() -> None:
    paths = build_document(ENDPOINTS)["paths"]
    assert "post" in paths["/"]
    assert {"put", "post"} <= set(paths["/{topic}"])
    assert "get" in paths["/api/v1/health"]
    assert "get" in paths["/api/v1/topics/{topic}/messages"]


def test_openapi_json_is_the_document() -> None:
    assert orjson.loads(document_json()) == orjson.loads(orjson.dumps(build_document(ENDPOINTS)))


def test_openapi_validates() -> None:
    validate(build_document(ENDPOINTS))


def test_every_row_is_documented_once_per_rule_and_method() -> None:
    document = build_document(ENDPOINTS)
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert len(ids) == len(set(ids))
    expected = sum(len(row.rules) * len(row.methods) for row in ENDPOINTS)
    assert len([i for i in ids if not i.startswith("options")]) == expected


def test_topic_parameters_carry_the_topic_pattern() -> None:
    document = build_document(ENDPOINTS)
    for path, item in document["paths"].items():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param["in"] == "path" and param["name"] == "topic":
                    assert param["schema"]["pattern"] == "^[-_A-Za-z0-9]{1,64}$", path


def test_streams_name_their_media_types() -> None:
    answer = build_document(ENDPOINTS)["paths"]["/{topics}/{kind}"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {"application/x-ndjson", "text/event-stream", "text/plain"}


def test_options_lists_the_allowed_methods() -> None:
    item = build_document(ENDPOINTS)["paths"]["/{topic}"]
    assert "(GET, HEAD, OPTIONS, POST, PUT)" in item["options"]["summary"]
    assert "Allow" in item["options"]["responses"]["200"]["headers"]


@pytest.mark.parametrize("name", ["NewUser", "UserChange", "NewToken", "NewRule"])
def test_admin_bodies_refuse_unknown_fields(name: str) -> None:
    schema = build_document(ENDPOINTS)["components"]["schemas"][name]
    assert schema["additionalProperties"] is False
