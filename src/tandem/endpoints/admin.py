"""The REST admin API: users, tokens and access rules (``tandem.core.administer``)."""

from __future__ import annotations

from tandem.core import administer
from tandem.endpoints.exchange import Call, Outcome, Request, json_reply
from tandem.protocol import admin
from tandem.protocol.models import NewRule, NewToken, NewUser, UserChange, parse_body


def users(req: Request) -> Outcome:
    who = req.caller
    return Call(
        lambda rt: administer.list_users(rt, who), lambda found: json_reply(admin.users_body(found))
    )


def add_user(req: Request) -> Outcome:
    new, who = parse_body(NewUser, req.body), req.caller
    return Call(
        lambda rt: administer.add_user(rt, who, new.name, new.password, new.role or "user"),
        lambda user: json_reply(admin.user_body(user), 201),
    )


def update_user(req: Request) -> Outcome:
    change, name, who = parse_body(UserChange, req.body), req.args["name"], req.caller
    return Call(
        lambda rt: administer.update_user(
            rt, who, name, password=change.password, role=change.role
        ),
        lambda user: json_reply(admin.user_body(user)),
    )


def remove_user(req: Request) -> Outcome:
    name, who = req.args["name"], req.caller
    return Call(
        lambda rt: administer.remove_user(rt, who, name),
        lambda _: json_reply(admin.removed_body(1)),
    )


def tokens(req: Request) -> Outcome:
    who, user = req.caller, req.query.get("user")
    return Call(
        lambda rt: administer.list_tokens(rt, who, user),
        lambda found: json_reply(admin.tokens_body(found)),
    )


def add_token(req: Request) -> Outcome:
    new, who = parse_body(NewToken, req.body), req.caller
    return Call(
        lambda rt: administer.add_token(rt, who, new.user, label=new.label, expires=new.expires),
        lambda issued: json_reply(admin.issued_token_body(issued), 201),
    )


def remove_token(req: Request) -> Outcome:
    who, user, token = req.caller, req.query.get("user"), req.args["token"]
    return Call(
        lambda rt: administer.remove_token(rt, who, user, token),
        lambda removed: json_reply(admin.token_body(removed)),
    )


def rules(req: Request) -> Outcome:
    who, user = req.caller, req.query.get("user")
    return Call(
        lambda rt: administer.list_rules(rt, who, user),
        lambda found: json_reply(admin.rules_body(found)),
    )


def grant(req: Request) -> Outcome:
    new, who = parse_body(NewRule, req.body), req.caller
    return Call(
        lambda rt: administer.grant(rt, who, new.user, new.pattern, new.permission),
        lambda rule: json_reply(admin.rule_body(rule), 201),
    )


def revoke(req: Request) -> Outcome:
    (user, pattern), who = admin.revoke_args(req.query), req.caller
    return Call(
        lambda rt: administer.revoke(rt, who, user, pattern),
        lambda removed: json_reply(admin.removed_body(removed)),
    )
