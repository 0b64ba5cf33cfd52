"""The environment a Tandem server or ``tandem`` command runs with."""

from __future__ import annotations

import os
from collections.abc import Mapping


def server_env(
    overrides: Mapping[str, str] | None = None, *, clean: bool = False
) -> dict[str, str]:
    """``os.environ`` with ``TANDEM_ENV=testing``, unbuffered output and ``overrides``.

    Abuse limits are off unless ``overrides`` turn them on (``TANDEM_RATE_LIMITS=on``).
    ``clean`` leaves out the caller's own ``TANDEM_*`` variables: a benchmark sets
    every one it relies on. Servers run from the repository root, so a ``.env`` file
    there still applies, as it would in production.
    """
    env = {k: v for k, v in os.environ.items() if not (clean and k.startswith("TANDEM_"))}
    env.update({"TANDEM_ENV": "testing", "PYTHONUNBUFFERED": "1", "TANDEM_RATE_LIMITS": "off"})
    env.update(overrides or {})
    return env
