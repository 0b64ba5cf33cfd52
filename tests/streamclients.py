"""The stream clients moved to :mod:`harness.streams`, which the benchmarks share.

Re-exported here for the test modules that still import them from ``tests.streamclients``.
"""

from __future__ import annotations

from harness.streams import *  # noqa: F403
from harness.streams import __all__ as __all__
