"""The pages' forms on this door: Flask-WTF checks their CSRF tokens.

The fields of every form but the login are read by ``tandem.protocol.web``,
as on the Quart door, so both doors accept and refuse the same input.
"""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField

from tandem.core.errors import InvalidInput
from tandem.protocol import csrf
from tandem.typing import QueryMap


class LoginForm(FlaskForm):  # type: ignore[misc]
    username = StringField("User name")
    password = PasswordField("Password")
    next = HiddenField()


class CsrfForm(FlaskForm):  # type: ignore[misc]
    """Any other form of the pages, for its CSRF token."""


def check(form: FlaskForm) -> None:
    """Raise :class:`InvalidInput` (400) unless ``form`` came with a good CSRF token."""
    # The token is the only thing these forms validate.
    if not form.validate():
        raise InvalidInput(csrf.FAILED)


def checked_form() -> QueryMap:
    """The posted form, once its CSRF token passed."""
    check(CsrfForm())
    return request.form
