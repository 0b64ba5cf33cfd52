"""The pages' forms on this door: the CSRF check of ``tandem.protocol.csrf``.

It makes and checks tokens the way Flask-WTF does on the Flask door, in the
one session cookie that both doors share, so either door takes the other's forms.
"""

from __future__ import annotations

from quart import g, request, session

from tandem.protocol import csrf
from tandem.quart_app.core import settings
from tandem.typing import QueryMap


def csrf_token() -> str:
    """The CSRF token for this request's forms (one per request, as Flask-WTF's)."""
    token: str | None = g.get(csrf.FIELD)
    if token is None:
        token = csrf.token(session, settings().secret_key)
        setattr(g, csrf.FIELD, token)
    return token


async def checked_form() -> QueryMap:
    """The posted form, once its CSRF token passed (else :class:`InvalidInput`, 400)."""
    form = await request.form
    csrf.check(session, settings().secret_key, form.get(csrf.FIELD))
    return form
