"""Framework-free heart of Tandem: settings, storage, services and fan-out.

Nothing in this package imports flask, quart, werkzeug, hypercorn or gunicorn.
"""

from __future__ import annotations
