"""In-memory token-bucket rate limits (sign-up, log-in, submissions).

Counters live only in this process's memory and are never written to the database or a log.
Anonymous limits (sign-up, log-in) are keyed by a salted hash of the client address, made with
a random salt drawn when the process starts, so not even the memory holds an address.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Limit", "RateLimiter", "client_key"]

_SALT = secrets.token_bytes(32)
_MAX_KEYS = 50_000


def client_key(host: str | None) -> str:
    """Return an opaque per-client key for in-memory limits (a salted hash, never the address)."""
    raw = (host or "unknown").encode("utf-8", "replace")
    return hmac.new(_SALT, raw, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Limit:
    """A token bucket: ``burst`` requests at once, refilled at ``per_minute`` a minute."""

    burst: int
    per_minute: float

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.per_minute / 60.0


class RateLimiter:
    """Token buckets keyed by (rule, key), thread-safe, held in memory only.

    Parameters
    ----------
    limits
        The rules by name (e.g. ``"login"``), each a :class:`Limit`.
    enabled
        When false every request passes (simulated load, benchmarks).
    clock
        A monotonic clock in seconds (tests pass a fake one).
    max_keys
        Buckets kept before full ones are forgotten. A prune scans every bucket, so after one
        the next waits until the buckets have grown by half again (at least ``max_keys``): the
        scans cost O(1) per request, amortised, whatever the number of clients.

    Attributes
    ----------
    prunes
        How many times the buckets were scanned (for tests and monitoring).
    """

    def __init__(
        self,
        limits: dict[str, Limit],
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = _MAX_KEYS,
    ) -> None:
        self._limits = dict(limits)
        self._enabled = enabled
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._max_keys = int(max_keys)
        self._prune_at = self._max_keys
        self.prunes = 0

    def hit(self, rule: str, key: str) -> float | None:
        """Take one token for ``key`` under ``rule``; return None, or seconds to wait.

        A refused request takes no token.
        """
        if not self._enabled:
            return None
        limit = self._limits[rule]
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get((rule, key), (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - last) * limit.rate)
            if tokens >= 1.0:
                self._buckets[(rule, key)] = (tokens - 1.0, now)
                if len(self._buckets) > self._prune_at:
                    self._prune(now)
                return None
            self._buckets[(rule, key)] = (tokens, now)
            if limit.rate <= 0:
                return 3600.0
            return max(1.0, math.ceil((1.0 - tokens) / limit.rate))

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they hold no information)."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self._limits[k[0]].rate >= self._limits[k[0]].burst
        ]
        for k in full:
            del self._buckets[k]
        self.prunes += 1
        # The buckets left are clients still limited; scan again only after as many new
        # buckets as half of them (and at least max_keys in all).
        self._prune_at = max(self._max_keys, len(self._buckets) * 3 // 2)
