"""Sans-IO wire protocol: parse requests and encode answers, with no I/O.

Bytes, strings and mappings in; schemas, bytes and dicts out. Both front doors
call these functions, so the wire format is defined exactly once.
"""

from __future__ import annotations
