"""REST admin API views: users, tokens and access rules (``tandem.core.administer``)."""

from __future__ import annotations

from flask import Response, request

from tandem.core import administer
from tandem.flask_app.api import bp
from tandem.flask_app.core import body, caller, core, json_response
from tandem.protocol import admin


@bp.get("/users")
def users() -> Response:
    who = caller()
    return json_response(admin.users_body(core().call(lambda rt: administer.list_users(rt, who))))


@bp.post("/users")
def add_user() -> Response:
    data = admin.parse_object(body(), required=("name", "password"), optional=("role",))
    name, password, role = data["name"], data["password"], data.get("role") or "user"
    who = caller()
    user = core().call(lambda rt: administer.add_user(rt, who, name, password, role))
    return json_response(admin.user_body(user), 201)


@bp.patch("/users/<name>")
def update_user(name: str) -> Response:
    data = admin.parse_object(body(), optional=("password", "role"))
    password, role = data.get("password"), data.get("role")
    who = caller()
    user = core().call(
        lambda rt: administer.update_user(rt, who, name, password=password, role=role)
    )
    return json_response(admin.user_body(user))


@bp.delete("/users/<name>")
def remove_user(name: str) -> Response:
    who = caller()
    core().call(lambda rt: administer.remove_user(rt, who, name))
    return json_response(admin.removed_body(1))


@bp.get("/tokens")
def tokens() -> Response:
    who, user = caller(), request.args.get("user")
    listed = core().call(lambda rt: administer.list_tokens(rt, who, user))
    return json_response(admin.tokens_body(listed))


@bp.post("/tokens")
def add_token() -> Response:
    data = admin.parse_object(body(), optional=("user", "label", "expires"))
    user, label, expires = data.get("user"), data.get("label"), data.get("expires")
    who = caller()
    issued = core().call(
        lambda rt: administer.add_token(rt, who, user, label=label, expires=expires)
    )
    return json_response(admin.issued_token_body(issued), 201)


@bp.delete("/tokens/<token>")
def remove_token(token: str) -> Response:
    who, user = caller(), request.args.get("user")
    removed = core().call(lambda rt: administer.remove_token(rt, who, user, token))
    return json_response(admin.token_body(removed))


@bp.get("/access")
def rules() -> Response:
    who, user = caller(), request.args.get("user")
    listed = core().call(lambda rt: administer.list_rules(rt, who, user))
    return json_response(admin.rules_body(listed))


@bp.post("/access")
def grant() -> Response:
    data = admin.parse_object(body(), required=("user", "pattern", "permission"))
    user, pattern, permission = data["user"], data["pattern"], data["permission"]
    who = caller()
    rule = core().call(lambda rt: administer.grant(rt, who, user, pattern, permission))
    return json_response(admin.rule_body(rule), 201)


@bp.delete("/access")
def revoke() -> Response:
    user, pattern = admin.revoke_args(request.args)
    who = caller()
    removed = core().call(lambda rt: administer.revoke(rt, who, user, pattern))
    return json_response(admin.removed_body(removed))
