"""JSON bodies of the REST API v1 (``/api/v1/...``)."""

from __future__ import annotations

import orjson

from tandem.core.schemas import Message, MessagePage, Stats, TopicStat
from tandem.protocol.encode import message_dict


def message_body(msg: Message) -> bytes:
    return orjson.dumps(message_dict(msg))


def page_body(page: MessagePage) -> bytes:
    return orjson.dumps(
        {
            "messages": [message_dict(msg) for msg in page.messages],
            "next_cursor": page.next_cursor,
        }
    )


def topics_body(stats: list[TopicStat]) -> bytes:
    return orjson.dumps(
        {
            "topics": [
                {"name": stat.name, "messages": stat.messages, "last_time": stat.last_time}
                for stat in stats
            ]
        }
    )


def streams_body(*, door: str, pid: int, in_use: int, slots: int | None, direct: int = 0) -> bytes:
    """Stream usage of the serving process; ``slots`` is ``None`` where unbounded.

    ``direct`` counts the streams whose messages the hub writes straight to the socket.
    """
    body = {"door": door, "pid": pid, "in_use": in_use, "slots": slots, "direct": direct}
    return orjson.dumps(body)


def health_body(*, database: str) -> bytes:
    return orjson.dumps({"healthy": True, "database": database})


# --- ntfy's own small answers ------------------------------------------------------------

NTFY_HEALTHY = orjson.dumps({"healthy": True})
SUCCESS = orjson.dumps({"success": True})
UNIFIEDPUSH = orjson.dumps({"unifiedpush": {"version": 1}})


def stats_body(stats: Stats) -> bytes:
    return orjson.dumps({"messages": stats.messages, "messages_rate": stats.messages_rate})
