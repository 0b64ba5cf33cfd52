"""Every HTTP endpoint once, with no web framework in it: the table, its handlers, the document.

Each door's adapter (``tandem.flask_app.adapter``, ``tandem.quart_app.adapter``)
registers the rows of :data:`ENDPOINTS` and runs their handlers.
"""

from __future__ import annotations

from tandem.endpoints import forms, pages
from tandem.endpoints.exchange import (
    Answer,
    Call,
    Door,
    Handler,
    Outcome,
    Page,
    Redirect,
    Reply,
    Request,
    StreamUsage,
    Subscribe,
)
from tandem.endpoints.table import ENDPOINTS, Endpoint, document_json

__all__ = [
    "ENDPOINTS",
    "Answer",
    "Call",
    "Door",
    "Endpoint",
    "Handler",
    "Outcome",
    "Page",
    "Redirect",
    "Reply",
    "Request",
    "StreamUsage",
    "Subscribe",
    "document_json",
    "forms",
    "pages",
]
