"""The web pages' forms, each defined once with WTForms, and their CSRF tokens.

Both doors read forms through these classes, so they accept and refuse the
same input. The CSRF token is WTForms' session CSRF in the one signed session
cookie that both doors share: a form rendered by one door posts to the other.
"""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from hashlib import sha1
from typing import Any, ClassVar, TypeVar

from wtforms import Form, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.csrf.session import SessionCSRF
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from tandem.core.errors import InvalidInput
from tandem.core.identity.validation import MAX_LABEL, MAX_PASSWORD
from tandem.endpoints.exchange import FormData, Request
from tandem.protocol import patterns

F = TypeVar("F", bound="CsrfForm")

# The session key of the raw token (WTForms' SessionCSRF keeps it there).
SESSION_KEY = "csrf"
# How long a rendered form stays good: a topic page left open for a working day still publishes.
TIME_LIMIT = timedelta(hours=12)

# One message for every CSRF failure.
FAILED = (
    "the form's CSRF token is missing, expired or not for this session: "
    "reload the page and submit the form again"
)


class _CheckedSessionCSRF(SessionCSRF):  # type: ignore[misc]
    """WTForms' session CSRF, with a constant-time check, UTC, and no crash without a session.

    The token keeps WTForms' format: ``<expiry>##<HMAC of the session's raw token and expiry>``.
    """

    def validate_csrf_token(self, form: Form, field: Any) -> None:
        raw = self.session.get(SESSION_KEY)
        expires, _, mac = (field.data or "").partition("##")
        if not isinstance(raw, str) or not mac:
            raise ValidationError(FAILED)
        expected = hmac.new(self.form_meta.csrf_secret, (raw + expires).encode(), sha1)
        if not hmac.compare_digest(expected.hexdigest(), mac):
            raise ValidationError(FAILED)
        if self.now().strftime(self.TIME_FORMAT) > expires:
            raise ValidationError(FAILED)

    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)


class CsrfForm(Form):  # type: ignore[misc]
    """A form with nothing but its CSRF token (sign out, remove a user); the base of the others."""

    class Meta:
        csrf = True
        csrf_class = _CheckedSessionCSRF
        csrf_time_limit = TIME_LIMIT


def _required(name: str) -> DataRequired:
    return DataRequired(message=f"the form's {name} field is required")


def _matching(pattern: str, what: str) -> Regexp:
    return Regexp(pattern, message=f"invalid {what}")


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _spaced(pattern: str) -> str:
    """``pattern`` (anchored) with white space allowed around it: the fields are stripped."""
    return patterns.whole(patterns.spaced(pattern[1:-1]))


_ROLE = _matching(patterns.whole(patterns.spaced("(|admin|user)")), "role: use admin or user")
_PASSWORD_LENGTH = Length(
    max=MAX_PASSWORD, message=f"a password has at most {MAX_PASSWORD} characters"
)


class LoginForm(CsrfForm):
    username = StringField("User name")
    password = PasswordField("Password")
    next = HiddenField()


class PublishForm(CsrfForm):
    """A topic page's publish form; its fields have the names of ntfy's publish parameters."""

    message = TextAreaField()
    title = StringField()
    priority = StringField(validators=[_matching(patterns.PRIORITY, "priority")])
    tags = StringField()


class NewUserForm(CsrfForm):
    name = StringField(
        validators=[_required("name"), _matching(_spaced(patterns.USER_NAME), "user name")],
        filters=[_strip],
    )
    # A password's spaces count: never stripped.
    password = PasswordField(validators=[_required("password"), _PASSWORD_LENGTH])
    role = StringField(validators=[_ROLE], filters=[_strip])


class UserChangeForm(CsrfForm):
    """A new password, a new role, or both."""

    # For the document: what validate() below asks.
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"required": ["password"], "properties": {"password": {"minLength": 1}}},
            {"required": ["role"], "properties": {"role": {"pattern": patterns.NOT_BLANK}}},
        ]
    }

    password = PasswordField(validators=[_PASSWORD_LENGTH])
    role = StringField(validators=[_ROLE], filters=[_strip])

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        if not self.password.data and not self.role.data:
            self.role.errors = ["give a new password or a new role"]
            return False
        return True


class NewTokenForm(CsrfForm):
    user = StringField(validators=[_required("user")], filters=[_strip])
    label = StringField(
        validators=[
            Length(max=MAX_LABEL, message=f"a label has at most {MAX_LABEL} characters"),
            _matching(patterns.LABEL, "label"),
        ],
        filters=[_strip],
    )
    expires = StringField(
        validators=[_matching(patterns.whole(f"({patterns.LIFETIME[1:-1]}|\\s*)"), "expiry")],
        filters=[_strip],
    )


class TokenOwnerForm(CsrfForm):
    """Removing a token: whose it is."""

    user = StringField(validators=[_required("user")], filters=[_strip])


_OWNER = _matching(_spaced(patterns.RULE_OWNER), "user: use a user name or everyone")
_PATTERN = _matching(_spaced(patterns.RULE_PATTERN), "topic pattern")


class RuleForm(CsrfForm):
    user = StringField(validators=[_required("user"), _OWNER], filters=[_strip])
    pattern = StringField(validators=[_required("pattern"), _PATTERN], filters=[_strip])
    permission = StringField(
        validators=[_required("permission"), _matching(patterns.PERMISSION, "permission")],
        filters=[_strip],
    )


class RevokeForm(CsrfForm):
    user = StringField(validators=[_required("user"), _OWNER], filters=[_strip])
    pattern = StringField(validators=[_required("pattern"), _PATTERN], filters=[_strip])


def _meta(session: MutableMapping[str, Any], secret_key: str) -> dict[str, Any]:
    return {"csrf_context": session, "csrf_secret": secret_key.encode()}


def checked(form_class: type[F], req: Request) -> F:
    """The posted form, validated: a bad CSRF token or field is :class:`InvalidInput` (400)."""
    formdata: FormData | None = req.form
    form = form_class(formdata=formdata, meta=_meta(req.session, req.settings.secret_key))
    if not form.validate():
        if form.csrf_token.errors:
            raise InvalidInput(FAILED)
        raise InvalidInput(next(iter(form.errors.values()))[0])
    return form


def csrf_token(session: MutableMapping[str, Any], secret_key: str) -> str:
    """A token for the forms of a page; starts the session's raw token when there is none."""
    token: str = CsrfForm(meta=_meta(session, secret_key)).csrf_token.current_token
    return token


def optional(value: str | None) -> str | None:
    """An optional field's value: ``None`` when left empty."""
    return value or None
