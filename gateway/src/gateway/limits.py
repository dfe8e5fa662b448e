"""Back-pressure instead of unbounded queues: a bounded number of ai-server calls at once, a bounded
number of requests waiting for one (503 + Retry-After beyond that), and a token bucket per API key
(429 + Retry-After)."""

import asyncio
import contextlib
import time

from . import telemetry
from .errors import ApiError


class Slots:
    def __init__(self, inflight: int, queue: int, timeout_s: float):
        self.semaphore = asyncio.Semaphore(inflight)
        self.queue, self.timeout_s = queue, timeout_s
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self):
        if self.semaphore.locked() and self.waiting >= self.queue:
            raise ApiError(503, "overloaded", "too many requests are waiting; try again shortly", 1.0)
        self.waiting += 1
        telemetry.WAITING.set(self.waiting)
        try:
            await asyncio.wait_for(self.semaphore.acquire(), self.timeout_s)
        except TimeoutError:
            raise ApiError(503, "overloaded", "the service is busy; try again shortly", 2.0) from None
        finally:
            self.waiting -= 1
            telemetry.WAITING.set(self.waiting)
        try:
            yield
        finally:
            self.semaphore.release()


class RateLimiter:
    """Token bucket per key: `burst` requests at once, refilled at `per_minute` / 60 per second."""

    def __init__(self, per_minute: float, burst: int):
        self.rate, self.burst = per_minute / 60.0, max(1, burst)
        self.buckets: dict[str, tuple[float, float]] = {}

    def check(self, key_id: str) -> None:
        now = time.monotonic()
        tokens, last = self.buckets.get(key_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[key_id] = (tokens, now)
            raise ApiError(
                429, "rate_limited", "too many requests for this API key", (1 - tokens) / self.rate
            )
        self.buckets[key_id] = (tokens - 1, now)
