"""Retries with exponential backoff, decided by error type in one place.

A request is retried only when its translated error says retrying can help (`transient`: 409
Conflict, 429, 5xx, a dropped connection); a 404, 422 or 403 fails at once. A server's
`retryAfterSeconds` (429 throttling) is honoured. The request is a zero-argument callable called
afresh on every attempt, so a read-modify-write callable re-reads and a 409 on a stale
resourceVersion heals itself. `sleep` is a parameter so tests run without waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from meshcanary.kube import errors

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently to retry: delays initial, initial*factor, ... up to maximum."""

    attempts: int = 5
    """Total tries, the first included."""
    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 5.0
    jitter: float = 0.2
    """Each delay is stretched by a random fraction up to this, so clients do not retry in step."""
    max_retry_after: float = 30.0
    """A server's Retry-After is honoured up to this many seconds."""

    def delay(self, attempt: int, failure: errors.KubeError | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        retry_after = getattr(failure, "retry_after", None)
        if retry_after:
            return float(min(retry_after, self.max_retry_after))
        base = min(self.initial * self.factor ** (attempt - 1), self.maximum)
        return base * (1 + self.jitter * random.random())


DEFAULT = Backoff()
NEVER = Backoff(attempts=1)


async def call(
    request: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff = DEFAULT,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Await `request()`, retrying transient failures; raise a KubeError when it gives up."""
    attempt = 1
    while True:
        try:
            return await request()
        except Exception as error:
            failure = errors.translate(error)
            if failure is None:
                raise
            if not failure.transient or attempt >= backoff.attempts:
                if failure is error:
                    raise
                raise failure from error
        await sleep(backoff.delay(attempt, failure))
        attempt += 1
