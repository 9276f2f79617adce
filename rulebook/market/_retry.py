"""Retry transient exchange errors with backoff, inside a deadline."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import ccxt

__all__ = ["RetryPolicy", "TRANSIENT_ERRORS", "call_with_retry"]

T = TypeVar("T")

# ccxt's hierarchy: RequestTimeout, ExchangeNotAvailable and RateLimitExceeded
# (via DDoSProtection) all derive from NetworkError; they are named here so the
# list reads like the issue and survives a change of hierarchy.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ccxt.NetworkError,
    ccxt.RequestTimeout,
    ccxt.RateLimitExceeded,
    ccxt.ExchangeNotAvailable,
)


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_s: float = 0.25
    max_delay_s: float = 2.0
    max_attempts: int = 4


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    deadline: float,
    policy: RetryPolicy = RetryPolicy(),
) -> T:
    """Await ``fn()``; on a transient error sleep and retry while the deadline allows.

    ``deadline`` is on the event loop's clock. The last error is re-raised
    when attempts run out or the next sleep would cross the deadline.
    """
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except TRANSIENT_ERRORS:
            delay = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
            delay *= 0.5 + random.random() / 2  # jitter: six clients must not retry in step
            if attempt >= policy.max_attempts or loop.time() + delay >= deadline:
                raise
            await asyncio.sleep(delay)
