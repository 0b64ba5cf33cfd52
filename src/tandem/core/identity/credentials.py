"""Secrets: argon2 password hashes, access tokens and their digests.

Passwords are hashed with argon2id (argon2-cffi's defaults) on worker threads,
a few at a time, so that a burst of logins neither blocks the event loop nor
takes all the memory (each hash uses 64 MiB). Tokens are random, so they are
stored as a SHA-256 digest: a slow hash would add nothing but latency.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "tk_"  # noqa: S105  (a format, not a secret)
# 24 random bytes are 32 URL-safe characters: tk_ plus 32.
TOKEN_BYTES = 24
# What is shown when tokens are listed: tk_ and the first 6 characters.
SHOWN_PREFIX = len(TOKEN_PREFIX) + 6
_TOKEN = re.compile(r"tk_[A-Za-z0-9_-]{29,128}")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(value: str) -> bool:
    """Tell whether ``value`` has the shape of a token (``tk_`` and 29 or more characters)."""
    return _TOKEN.fullmatch(value) is not None


def token_digest(token: str) -> str:
    """The stored form of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    return token[:SHOWN_PREFIX]


def new_session_version() -> str:
    return secrets.token_urlsafe(16)


def same(a: str, b: str) -> bool:
    """Compare two strings in constant time (any characters)."""
    return hmac.compare_digest(a.encode(), b.encode())


class Passwords:
    """argon2id hashing and verification off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None, *, concurrency: int = 0) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency or max(1, min(4, os.cpu_count() or 1)))
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Check ``password`` against ``stored``.

        With no stored hash (an unknown user) it checks against a dummy hash
        and fails, so that unknown names take as long as known ones.
        """
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            stored = self._dummy
        async with self._slots:
            return await asyncio.to_thread(self._check, stored, password)

    def _check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            return False
