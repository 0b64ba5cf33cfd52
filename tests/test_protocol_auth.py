"""Credential parsing: Authorization headers and ``auth=``, examples and round-trip properties."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tandem.core.errors import Unauthorized
from tandem.core.identity.credentials import new_token
from tandem.core.schemas import BasicCredentials, TokenCredentials
from tandem.protocol.auth import (
    MALFORMED,
    auth_param,
    basic_authorization,
    parse_authorization,
    parse_credentials,
)

TOKEN = "tk_AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _encodings(value: str) -> list[str]:
    """``value`` in base64: standard and URL-safe alphabets, padded and not."""
    std = base64.b64encode(value.encode()).decode()
    url = base64.urlsafe_b64encode(value.encode()).decode()
    return [std, std.rstrip("="), url, url.rstrip("=")]


# --- examples --------------------------------------------------------------------------------


def test_no_credentials() -> None:
    assert parse_credentials(None, None) is None
    assert parse_credentials("", "") is None
    assert parse_credentials("   ", None) is None


def test_basic() -> None:
    creds = parse_credentials("Basic " + _b64("alice:s3cret:with:colons"), None)
    assert creds == BasicCredentials("alice", "s3cret:with:colons")
    # The scheme is case-insensitive, and extra spaces do not matter.
    assert parse_credentials("basic   " + _b64("alice:pw") + " ", None) == BasicCredentials(
        "alice", "pw"
    )


def test_basic_with_an_empty_user_and_a_token() -> None:
    assert parse_credentials("Basic " + _b64(":" + TOKEN), None) == TokenCredentials(TOKEN)
    # With a user name, tk_... is just a password.
    assert parse_credentials("Basic " + _b64("bob:" + TOKEN), None) == BasicCredentials(
        "bob", TOKEN
    )


def test_bearer() -> None:
    assert parse_credentials("Bearer " + TOKEN, None) == TokenCredentials(TOKEN)
    assert parse_credentials("bearer " + TOKEN, None) == TokenCredentials(TOKEN)


def test_auth_param_in_every_base64_form() -> None:
    for header in ("Bearer " + TOKEN, "Basic " + _b64("alice:pw?>>"), "Basic " + _b64(":" + TOKEN)):
        expected = parse_credentials(header, None)
        for encoded in _encodings(header):
            assert parse_credentials(None, encoded) == expected, encoded


def test_the_header_wins_over_auth_param() -> None:
    header = "Basic " + _b64("alice:pw")
    param = auth_param("Bearer " + TOKEN)
    assert parse_credentials(header, param) == BasicCredentials("alice", "pw")
    assert parse_credentials(None, param) == TokenCredentials(TOKEN)


@pytest.mark.parametrize(
    ("authorization", "param"),
    [
        ("Basic", None),
        ("Basic ", None),
        ("Basic !!!notbase64", None),
        ("Basic " + _b64("no-colon-here"), None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
        ("Basic a", None),  # one base64 character cannot encode anything
        ("Bearer", None),
        ("Bearer tk_has space", None),
        ("Digest username=alice", None),
        ("tk_justatoken", None),
        (None, "%%%"),
        (None, _b64("Basic")),
        (None, _b64("Negotiate abc")),
    ],
)
def test_malformed_credentials_are_unauthorized(
    authorization: str | None, param: str | None
) -> None:
    with pytest.raises(Unauthorized) as caught:
        parse_credentials(authorization, param)
    assert caught.value.message == MALFORMED


# --- properties ------------------------------------------------------------------------------

# Text as it reaches a server: no lone surrogates (they cannot be UTF-8).
_text = st.text(st.characters(blacklist_categories=["Cs"]))
_users = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters=":"))
_tokens = st.builds(new_token) | st.from_regex(r"tk_[A-Za-z0-9_-]{29,64}", fullmatch=True)


@given(user=_users, password=_text)
def test_basic_round_trip(user: str, password: str) -> None:
    assume(not (user == "" and password.startswith("tk_")))
    header = basic_authorization(user, password)
    assert parse_credentials(header, None) == BasicCredentials(user, password)
    for encoded in _encodings(header):
        assert parse_credentials(None, encoded) == BasicCredentials(user, password)


@given(token=_tokens)
def test_token_round_trip_in_every_form(token: str) -> None:
    forms = ["Bearer " + token, basic_authorization("", token)]
    for header in forms:
        assert parse_credentials(header, None) == TokenCredentials(token)
        assert parse_credentials(None, auth_param(header)) == TokenCredentials(token)
        for encoded in _encodings(header):
            assert parse_credentials(None, encoded) == TokenCredentials(token)


@given(authorization=_text, param=_text)
def test_anything_parses_or_is_unauthorized_without_echo(authorization: str, param: str) -> None:
    for args in ((authorization, None), (None, param)):
        message = None
        try:
            parse_credentials(*args)
        except Unauthorized as exc:
            message = str(exc)
        assert message in (None, MALFORMED)


@given(password=_text, token=_tokens)
def test_credentials_never_show_their_secret(password: str, token: str) -> None:
    assert repr(BasicCredentials("alice", password)) == "BasicCredentials(username='alice')"
    assert repr(parse_authorization("Bearer " + token)) == "TokenCredentials()"
