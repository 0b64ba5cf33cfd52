"""What every page view shares: the template context and the HTML error page."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from tandem.core.errors import TandemError, Unauthorized
from tandem.flask_app.main import bp
from tandem.protocol import web

# The login views answer a bad login themselves (a redirect to them would loop).
_LOGIN_VIEWS = frozenset({"main.login", "main.sign_in"})

for _name, _filter in web.TEMPLATE_FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


@bp.context_processor
def _context() -> dict[str, object]:
    return {"door": "WSGI", "csrf_token": generate_csrf, **web.TEMPLATE_GLOBALS}


@bp.after_request
def _page_headers(response: Response) -> Response:
    response.headers.update(web.PAGE_HEADERS)
    return response


@bp.errorhandler(TandemError)
def _error_page(exc: TandemError) -> ResponseReturnValue:
    """An error as a page; an anonymous visitor who must sign in goes to the login form."""
    if isinstance(exc, Unauthorized) and request.endpoint not in _LOGIN_VIEWS:
        # A GET comes back here after signing in; a form's POST cannot be replayed.
        back = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("main.login", next=back), 303)
    error = web.page_error(exc)
    return render_template("error.html", error=error), error.status, error.headers
