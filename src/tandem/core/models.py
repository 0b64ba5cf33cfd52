"""The tables. Only the core's storage functions see these; they return schemas."""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so that Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# SQLite only makes INTEGER PRIMARY KEY a rowid alias; PostgreSQL wants BIGINT.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class MessageRow(Base):
    """A stored message. ``seq`` is assigned from :class:`CounterRow` in commit order."""

    __tablename__ = "messages"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(12), unique=True)
    topic: Mapped[str] = mapped_column(String(64))
    time: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)
    message: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int | None] = mapped_column(SmallInteger)
    tags: Mapped[str | None] = mapped_column(Text)
    click: Mapped[str | None] = mapped_column(Text)
    # X-Cache: no. The row exists only so that relays in other processes can
    # deliver it live; history never shows it and prune removes it within a minute.
    live_only: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (Index("ix_messages_topic_seq", "topic", "seq"),)


class CounterRow(Base):
    """Named counters. Incrementing ``messages`` inside the publishing transaction
    takes a row lock until commit, so sequence numbers become visible in order:
    a reader that has seen ``seq = n`` can never later find a new row below ``n``.
    """

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class PruneMarkRow(Base):
    """The newest sequence number and time that retention has pruned, per topic.

    A cursor older than these asks for messages that are gone: the stream
    answers with a ``gap`` event first.
    """

    __tablename__ = "prune_marks"

    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    pruned_seq: Mapped[int] = mapped_column(BigInteger)
    pruned_time: Mapped[int] = mapped_column(BigInteger)


prune_marks = cast(Table, PruneMarkRow.__table__)
messages = cast(Table, MessageRow.__table__)
counters = cast(Table, CounterRow.__table__)
