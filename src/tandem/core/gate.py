"""Who is calling, and may they: the one check that every door and transport runs.

A view hands over what the request says about its caller (a :class:`Caller`,
built by ``tandem.protocol.requests.caller``) together with what it wants to
do. This module turns the caller into an identity (credentials first, then the
web session cookie, else anonymous), checks access for the topics involved,
applies the abuse limits, and only then calls the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tandem.core.errors import Forbidden, Unauthorized
from tandem.core.limits import Lease, visitor_key
from tandem.core.schemas import (
    ANONYMOUS,
    Credentials,
    HistoryQuery,
    Identity,
    Message,
    MessageFilter,
    MessagePage,
    NewMessage,
    Since,
    TopicStat,
)

if TYPE_CHECKING:
    from tandem.core.runtime import Runtime
    from tandem.core.stream import Stream

CROSS_SITE = (
    "a request authenticated by the session cookie must come from this site: "
    "the Origin is foreign (cross-site request forgery or WebSocket hijacking)"
)


@dataclass(frozen=True, slots=True)
class Caller:
    """What a request says about its caller. Nothing in it is checked yet."""

    credentials: Credentials | None
    # (user name, session version) from the signed session cookie, when it names a user.
    session: tuple[str, str] | None
    client_ip: str
    # The request came from another site (its Origin or Sec-Fetch-Site says so).
    cross_site: bool = False


@dataclass(frozen=True, slots=True)
class Visitor:
    """A caller once identified: who it is, and the key its limits count under."""

    identity: Identity
    key: str


async def identify(rt: Runtime, caller: Caller) -> Visitor:
    """Prove who ``caller`` is: :class:`Unauthorized` for bad credentials.

    Credentials count as a login attempt: an IP with too many failures gets
    429 before its credentials are even checked. A session cookie on a
    cross-site request is refused (403), so that a foreign page cannot act
    with the user's cookie.
    """
    identity = ANONYMOUS
    if caller.credentials is not None:
        credentials = caller.credentials
        identity = await login_attempt(rt, caller.client_ip, lambda: rt.authenticate(credentials))
    elif caller.session is not None:
        identity = await rt.identity_for_session(*caller.session)
        if not identity.is_anonymous and caller.cross_site:
            raise Forbidden(CROSS_SITE)
    return Visitor(identity, visitor_key(identity.user, caller.client_ip))


async def login_attempt(
    rt: Runtime, client_ip: str, attempt: Callable[[], Awaitable[Identity]]
) -> Identity:
    """Run ``attempt`` (a credential check) as a login attempt of ``client_ip``.

    An address with too many failures gets :class:`TooManyRequests` before its
    credentials are even checked; a failure (:class:`Unauthorized`) counts.
    """
    await rt.limits.check_login(client_ip)
    try:
        return await attempt()
    except Unauthorized:
        await rt.limits.login_failed(client_ip)
        raise


async def publish(rt: Runtime, caller: Caller, new: NewMessage) -> Message:
    """Publish ``new`` if the caller may write its topic and is within its rate."""
    visitor = await identify(rt, caller)
    return await publish_as(rt, visitor, new)


async def publish_as(rt: Runtime, visitor: Visitor, new: NewMessage) -> Message:
    """Publish for an identified visitor (a WebSocket publishes many times as one)."""
    await rt.authorize(visitor.identity, new.topic, "write")
    await rt.limits.publish(visitor.key)
    return await rt.publish(new)


async def page(
    rt: Runtime, caller: Caller, topic: str, *, after_seq: int, limit: int
) -> MessagePage:
    """One page of ``topic``'s history, if the caller may read it."""
    visitor = await identify(rt, caller)
    await rt.authorize(visitor.identity, topic, "read")
    return await rt.page(topic, after_seq=after_seq, limit=limit)


async def topics(rt: Runtime, caller: Caller) -> list[TopicStat]:
    """The topics that the caller may read, with their counts."""
    return await readable_topics(rt, await identify(rt, caller))


async def readable_topics(rt: Runtime, visitor: Visitor) -> list[TopicStat]:
    """The topics that an identified visitor may read, with their counts."""
    stats = await rt.topics()
    if not stats:
        return stats
    try:
        allowed, _ = await rt.readable(visitor.identity, [stat.name for stat in stats])
    except (Unauthorized, Forbidden):  # none readable: an empty list, not an error
        return []
    readable = set(allowed)
    return [stat for stat in stats if stat.name in readable]


@dataclass(frozen=True, slots=True)
class Grant:
    """The topics of a subscription that the caller may read, and those skipped."""

    visitor: Visitor
    topics: tuple[str, ...]
    forbidden: tuple[str, ...]

    @property
    def notice(self) -> str | None:
        """What the ``open`` event says about skipped topics."""
        if not self.forbidden:
            return None
        return "not allowed to read, skipped: " + ",".join(self.forbidden)


async def grant(rt: Runtime, caller: Caller, topics: Sequence[str]) -> Grant:
    """Identify the caller and split ``topics`` into readable and forbidden.

    Fails (401 or 403) only when none of them is readable.
    """
    visitor = await identify(rt, caller)
    allowed, forbidden = await rt.readable(visitor.identity, topics)
    return Grant(visitor, allowed, forbidden)


async def check_read(rt: Runtime, caller: Caller, topics: Sequence[str]) -> None:
    """Raise (401 or 403) unless the caller may read every one of ``topics``.

    ntfy's ``/<topics>/auth``, which its apps ask before they subscribe.
    """
    visitor = await identify(rt, caller)
    for topic in topics:
        await rt.authorize(visitor.identity, topic, "read")


async def poll(rt: Runtime, grant: Grant, since: Since, filter: MessageFilter) -> list[Message]:
    """The stored messages of a ``poll=1`` request, on the granted topics only."""
    return await rt.history(HistoryQuery(grant.topics, since, filter))


class Subscription:
    """A live stream held against the visitor's concurrent-subscription limit."""

    # Lease releases under way (the loop keeps only weak references to tasks).
    _releasing: set[asyncio.Task[None]] = set()

    def __init__(self, rt: Runtime, stream: Stream, lease: Lease) -> None:
        self.stream = stream
        self._rt = rt
        self._lease: Lease | None = lease
        self._on_close: list[Callable[[], object]] = []

    def on_close(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` (on the loop) when the subscription closes."""
        self._on_close.append(callback)

    def close(self) -> None:
        """Leave the hub and give the lease back; safe to call twice.

        Plain, not a coroutine, so that it runs from a ``finally`` being
        cancelled and from the WSGI door's ``call_soon``; with Redis the
        release finishes in a task of its own.
        """
        self.stream.close()
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()
        lease, self._lease = self._lease, None
        if lease is not None:
            task = asyncio.get_running_loop().create_task(self._rt.limits.release(lease))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)


async def subscribe(rt: Runtime, grant: Grant, since: Since, filter: MessageFilter) -> Subscription:
    """Open a live stream on the granted topics, within the visitor's limit."""
    lease = await rt.limits.acquire(grant.visitor.key)
    stream = rt.open_stream(grant.topics, since, filter, notice=grant.notice)
    return Subscription(rt, stream, lease)
