"""REST admin API views: users, tokens and access rules (``tandem.core.administer``)."""

from __future__ import annotations

from quart import Response, request

from tandem.core import administer
from tandem.protocol import admin
from tandem.quart_app.api import bp
from tandem.quart_app.core import body, caller, json_response, runtime


@bp.get("/users")
async def users() -> Response:
    return json_response(admin.users_body(await administer.list_users(runtime(), caller())))


@bp.post("/users")
async def add_user() -> Response:
    data = admin.parse_object(await body(), required=("name", "password"), optional=("role",))
    name, password, role = data["name"], data["password"], data.get("role") or "user"
    user = await administer.add_user(runtime(), caller(), name, password, role)
    return json_response(admin.user_body(user), 201)


@bp.patch("/users/<name>")
async def update_user(name: str) -> Response:
    data = admin.parse_object(await body(), optional=("password", "role"))
    password, role = data.get("password"), data.get("role")
    user = await administer.update_user(runtime(), caller(), name, password=password, role=role)
    return json_response(admin.user_body(user))


@bp.delete("/users/<name>")
async def remove_user(name: str) -> Response:
    await administer.remove_user(runtime(), caller(), name)
    return json_response(admin.removed_body(1))


@bp.get("/tokens")
async def tokens() -> Response:
    listed = await administer.list_tokens(runtime(), caller(), request.args.get("user"))
    return json_response(admin.tokens_body(listed))


@bp.post("/tokens")
async def add_token() -> Response:
    data = admin.parse_object(await body(), optional=("user", "label", "expires"))
    user, label, expires = data.get("user"), data.get("label"), data.get("expires")
    issued = await administer.add_token(runtime(), caller(), user, label=label, expires=expires)
    return json_response(admin.issued_token_body(issued), 201)


@bp.delete("/tokens/<token>")
async def remove_token(token: str) -> Response:
    user = request.args.get("user")
    removed = await administer.remove_token(runtime(), caller(), user, token)
    return json_response(admin.token_body(removed))


@bp.get("/access")
async def rules() -> Response:
    listed = await administer.list_rules(runtime(), caller(), request.args.get("user"))
    return json_response(admin.rules_body(listed))


@bp.post("/access")
async def grant() -> Response:
    data = admin.parse_object(await body(), required=("user", "pattern", "permission"))
    user, pattern, permission = data["user"], data["pattern"], data["permission"]
    rule = await administer.grant(runtime(), caller(), user, pattern, permission)
    return json_response(admin.rule_body(rule), 201)


@bp.delete("/access")
async def revoke() -> Response:
    user, pattern = admin.revoke_args(request.args)
    removed = await administer.revoke(runtime(), caller(), user, pattern)
    return json_response(admin.removed_body(removed))
