"""The pages' forms: WTForms' session CSRF as both doors use it, and the fields' checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from tandem.core.errors import InvalidInput
from tandem.core.settings import Settings
from tandem.endpoints import forms
from tandem.endpoints.exchange import Request, StreamUsage

SECRET = "forms-test-secret-key"


class _Door:
    name = "wsgi"

    def now(self) -> int:
        return 0

    def stream_usage(self) -> StreamUsage:
        return StreamUsage(0, None)


def posted(session: dict[str, Any], fields: dict[str, str], secret: str = SECRET) -> Request:
    return Request(
        endpoint="main.test",
        method="POST",
        full_path="/test?",
        args={},
        headers={},
        query=MultiDict(),
        session=session,
        remote_addr="127.0.0.1",
        settings=Settings(_env_file=None, env="testing", secret_key=secret),
        door=_Door(),
        url_for=lambda endpoint, **values: "/",
        form=MultiDict(fields),
    )


def test_a_token_passes_in_its_own_session() -> None:
    session: dict[str, Any] = {}
    token = forms.csrf_token(session, SECRET)
    assert isinstance(session[forms.SESSION_KEY], str)
    form = forms.checked(
        forms.RevokeForm, posted(session, {"csrf_token": token, "user": " a ", "pattern": "p"})
    )
    assert (form.user.data, form.pattern.data) == ("a", "p")


def test_a_session_keeps_its_raw_token() -> None:
    session: dict[str, Any] = {}
    forms.csrf_token(session, SECRET)
    raw = session[forms.SESSION_KEY]
    forms.csrf_token(session, SECRET)
    assert session[forms.SESSION_KEY] == raw


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "tampered",
        "no separator",
        "other secret",
        "other session",
        "session without a token",
        "expired",
    ],
)
def test_bad_tokens_are_invalid_input(case: str) -> None:
    session: dict[str, Any] = {}
    good = forms.csrf_token(session, SECRET)
    other_session: dict[str, Any] = {}
    tokens: dict[str, str | None] = {
        "missing": None,
        "empty": "",
        "tampered": good[:-2] + ("00" if not good.endswith("00") else "11"),
        "no separator": good.replace("##", ""),
        "other secret": forms.csrf_token(dict(session), "another-secret-key"),
        "other session": forms.csrf_token(other_session, SECRET),
        "session without a token": good,
        "expired": _expired(session),
    }
    token = tokens[case]
    fields = {} if token is None else {"csrf_token": token}
    checked_session = {} if case == "session without a token" else session
    with pytest.raises(InvalidInput, match="CSRF token"):
        forms.checked(forms.CsrfForm, posted(checked_session, fields))
    # The good token of the same session still passes: only the bad one was refused.
    if case != "session without a token":
        forms.checked(forms.CsrfForm, posted(session, {"csrf_token": good}))


def _expired(session: dict[str, Any]) -> str:
    """A token made by the same code, with a lifetime that ended an hour ago."""

    class Expired(forms.CsrfForm):
        class Meta:
            csrf_time_limit = timedelta(hours=-1)

    form = Expired(meta={"csrf_context": session, "csrf_secret": SECRET.encode()})
    token: str = form.csrf_token.current_token
    return token


@pytest.mark.parametrize(
    ("form_class", "fields", "message"),
    [
        (forms.NewUserForm, {"password": "pw"}, "the form's name field is required"),
        (
            forms.NewUserForm,
            {"name": "bob", "password": "   "},
            "the form's password field is required",
        ),
        (forms.RuleForm, {"user": "u", "pattern": " "}, "the form's pattern field is required"),
        (forms.UserChangeForm, {}, "give a new password or a new role"),
        (forms.TokenOwnerForm, {}, "the form's user field is required"),
    ],
)
def test_required_fields(
    form_class: type[forms.CsrfForm], fields: dict[str, str], message: str
) -> None:
    session: dict[str, Any] = {}
    token = forms.csrf_token(session, SECRET)
    with pytest.raises(InvalidInput, match=message):
        forms.checked(form_class, posted(session, {**fields, "csrf_token": token}))


def test_a_password_keeps_its_spaces() -> None:
    session: dict[str, Any] = {}
    token = forms.csrf_token(session, SECRET)
    fields = {"name": " bob ", "password": " pw ", "csrf_token": token}
    form = forms.checked(forms.NewUserForm, posted(session, fields))
    assert (form.name.data, form.password.data) == ("bob", " pw ")
