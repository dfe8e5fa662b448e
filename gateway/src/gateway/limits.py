"""Back-pressure instead of unbounded queues: a bounded number of ai-server calls at once, a bounded
number of requests waiting for one (503 + Retry-After beyond that), a byte budget for request bodies in
memory, a token bucket per API key (429 + Retry-After) and one per client address for refused keys.

The body budget is taken *before* a body is read: a request waits (without reading) until its declared
size fits, so a burst of large uploads is read a few at a time instead of all at once into memory; the
bytes not yet read stay in the kernel's socket buffers, and aiohttp stops reading a socket whose
unread data passes its buffer limit.
"""

import asyncio
import contextlib
import time

from . import telemetry
from .errors import ApiError
from .settings import Settings
from .store import Store


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


class BodyBudget:
    """At most `total` bytes of request bodies held at once; a request larger than the whole budget
    counts as the whole budget (it still runs, alone)."""

    def __init__(self, total: int, queue: int, timeout_s: float):
        self.total, self.free = total, total
        self.queue, self.timeout_s = queue, timeout_s
        self.waiting = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int):
        size = max(1, min(size, self.total))
        if size > self.free and self.waiting >= self.queue:
            raise ApiError(503, "overloaded", "too many uploads are waiting; try again shortly", 1.0)
        async with self._changed:
            self.waiting += 1
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: size <= self.free), self.timeout_s)
            except TimeoutError:
                raise ApiError(503, "overloaded", "the service is busy; try again shortly", 2.0) from None
            finally:
                self.waiting -= 1
            self.free -= size
        telemetry.BODY_BYTES.set(self.total - self.free)
        try:
            yield
        finally:
            async with self._changed:
                self.free += size
                self._changed.notify_all()
            telemetry.BODY_BYTES.set(self.total - self.free)


async def check_quotas(store: Store, settings: Settings, key_id: str) -> None:
    """Per key, before its upload is read: matches per UTC day, and bytes of photos and heatmaps its
    stored searches keep (the disk one key can take). 429 `quota_exceeded`; other keys go on."""
    now = time.time()
    day = int(now // 86400)
    searches, stored = await store.key_usage(key_id, day)
    if searches >= settings.quota_searches_per_day:
        until = (day + 1) * 86400 - now
        message = f"this API key has made its {settings.quota_searches_per_day} searches for today"
        raise ApiError(429, "quota_exceeded", message, until)
    if stored >= settings.quota_stored_bytes:
        message = (
            "this API key's stored searches hold all the photo storage it may use; delete searches it "
            "no longer needs, or wait until their photos expire"
        )
        raise ApiError(429, "quota_exceeded", message, 3600.0)


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

    def allows(self, key: str) -> bool:
        """Takes a token if there is one (no refusal raised): for counting, not for answering."""
        try:
            self.check(key)
            return True
        except ApiError:
            return False

    def exhausted(self, key: str) -> bool:
        """Whether `key` has no token left, without taking one."""
        now = time.monotonic()
        tokens, last = self.buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate) < 1
