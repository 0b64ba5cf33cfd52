"""The tables. Only the core's storage functions see these; they return schemas."""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    icon: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(32))
    # The action buttons as a JSON array (core.store writes and reads it).
    actions: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(String(16))
    # X-Cache: no. The row exists only so that relays in other processes can
    # deliver it live; history never shows it and prune removes it within a minute.
    live_only: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (Index("ix_messages_topic_seq", "topic", "seq"),)


class CounterRow(Base):
    """Named counters. Incrementing ``messages`` inside the publishing transaction
    takes a row lock until commit, so sequence numbers become visible in order:
    a reader that has seen ``seq = n`` can never later find a new row below ``n``.

    ``identity`` goes up with every change to users, tokens or access rules, so
    that every process can tell cheaply when to reload them.
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


class UserRow(Base):
    """A user account. ``session_version`` is new on every password or role change,
    which ends the web sessions that carry the old one."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(8))
    session_version: Mapped[str] = mapped_column(String(32))
    created: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("role IN ('admin', 'user')", name="role"),)


class TokenRow(Base):
    """An access token, stored as the SHA-256 of the token: tokens are random, so a
    fast hash is enough, and a database leak does not leak them."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(128))
    expires: Mapped[int | None] = mapped_column(BigInteger)
    last_used: Mapped[int | None] = mapped_column(BigInteger)
    created: Mapped[int] = mapped_column(BigInteger)


class AccessRuleRow(Base):
    """A permission for ``owner`` (a user name, or ``everyone``) on topics matching ``pattern``."""

    __tablename__ = "access_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    pattern: Mapped[str] = mapped_column(String(64))
    permission: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("owner", "pattern", name="uq_access_rules_owner_pattern"),
        CheckConstraint(
            "permission IN ('read-write', 'read-only', 'write-only', 'deny')", name="permission"
        ),
    )


prune_marks = cast(Table, PruneMarkRow.__table__)
users = cast(Table, UserRow.__table__)
tokens = cast(Table, TokenRow.__table__)
access_rules = cast(Table, AccessRuleRow.__table__)
messages = cast(Table, MessageRow.__table__)
counters = cast(Table, CounterRow.__table__)
