"""Calls to the ai-server: a timeout on every call, bounded retries for idempotent ones, a circuit breaker.

Retries (with exponential backoff) apply only to GET and DELETE, and only to failures where the ai-server
gave no answer or said it is unavailable (connection error, timeout, 502/503/504); a POST is sent once,
so an enrolment is never made twice. After `breaker_failures` consecutive failures the circuit opens and
every call fails at once with 503 `ai_unavailable` until, `breaker_reset_s` later, one trial call is let
through: its success closes the circuit again.

Every call carries the ai-server's shared secret (`Authorization: Bearer`) and how long the gateway will
wait for it (`X-Request-Timeout-Ms`, a little less than the call's timeout), so the ai-server stops work
nobody waits for instead of carrying on for minutes. `probe()` is the public /readyz's look at the
ai-server: no retries, no failure record, and it never counts towards the circuit breaker, so anonymous
traffic on /readyz cannot open the circuit for everyone.
"""

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from . import telemetry
from .errors import ApiError
from .settings import Settings

log = logging.getLogger("gateway")
IDEMPOTENT = {"GET", "HEAD", "DELETE"}
UNAVAILABLE = {502, 503, 504}
DEADLINE_MARGIN_S = 0.5  # the ai-server stops this much before the gateway gives up
PROBE_EVERY_S = 1.0  # the public /readyz asks the ai-server at most this often


class CircuitBreaker:
    def __init__(self, failures: int, reset_s: float):
        self.threshold, self.reset_s = failures, reset_s
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if not self.trial and time.monotonic() - self.opened_at >= self.reset_s:
            self.trial = True  # half-open: exactly one call finds out whether the ai-server is back
            return True
        return False

    def retry_after(self) -> float:
        if self.opened_at is None:
            return 1.0
        return max(1.0, self.reset_s - (time.monotonic() - self.opened_at))

    def success(self) -> None:
        self.failures, self.opened_at, self.trial = 0, None, False
        telemetry.CIRCUIT_OPEN.set(0)

    def abandon(self) -> None:
        """A call given up half-way (cancelled): a trial it held goes to the next caller."""
        self.trial = False

    def failure(self) -> None:
        self.failures += 1
        if self.trial or self.failures >= self.threshold:
            self.opened_at = time.monotonic()
            telemetry.CIRCUIT_OPEN.set(1)
        self.trial = False


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str

    def json(self):
        return json.loads(self.body)

    def refusal(self) -> ApiError:
        """The ai-server's own refusal (bad image, no face, not found), passed on with its status and code."""
        try:
            error = self.json()["error"]
            return ApiError(self.status, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
            return ApiError(502, "upstream_error", f"the recognition service answered {self.status}")


def unavailable(retry_after: float) -> ApiError:
    return ApiError(
        503, "ai_unavailable", "the recognition service is unavailable; try again shortly", retry_after
    )


class Upstream:
    def __init__(
        self, settings: Settings, on_failure: Callable[[dict], Awaitable[None]], secret: str | None = None
    ):
        self.base = settings.ai_server_url.rstrip("/")
        self.settings = settings
        self.auth = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
        self.on_failure = on_failure  # records a failed call (the failure log)
        self.session: aiohttp.ClientSession | None = None
        self._probing: asyncio.Lock | None = None
        self._probed: tuple[float, dict | None] = (float("-inf"), None)

    async def start(self) -> None:
        self._probing = asyncio.Lock()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=4 * self.settings.max_inflight + 16),
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self.session:
            await self.session.close()

    async def call(
        self,
        method: str,
        path: str,
        request_id: str,
        *,
        data=None,
        params: dict | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        """The ai-server's reply (any status it chose), or ApiError 503 ai_unavailable / 502."""
        attempts = 1 + (self.settings.retries if method in IDEMPOTENT else 0)
        timeout = aiohttp.ClientTimeout(
            total=timeout_s or self.settings.timeout_s, sock_connect=self.settings.connect_timeout_s
        )
        for attempt in range(attempts):
            if not self.breaker.allow():
                raise unavailable(self.breaker.retry_after())
            started = time.perf_counter()
            reply, reason = await self._send(method, path, request_id, data, params, timeout)
            if reply is not None and reply.status not in UNAVAILABLE:
                self.breaker.success()
                if reply.status >= 500 and reply.status != 507:  # 507: its storage is full, said cleanly
                    await self._failed(
                        request_id, method, path, started, f"ai-server answered {reply.status}"
                    )
                    raise ApiError(502, "upstream_error", "the recognition service failed on this request")
                return reply
            self.breaker.failure()
            await self._failed(request_id, method, path, started, reason)
            if attempt + 1 < attempts:
                await asyncio.sleep(0.05 * 2**attempt * (1 + random.random() / 2))
        raise unavailable(1.0)

    async def readiness(self, request_id: str) -> dict | None:
        """The ai-server's /readyz body while it is ready, else None: asked at most once a PROBE_EVERY_S
        (concurrent callers share one probe), outside the breaker and the failure log."""
        async with self._probing:
            asked_at, body = self._probed
            if time.monotonic() - asked_at >= PROBE_EVERY_S:
                reply = await self.probe(request_id)
                body = reply.json() if reply is not None and reply.status == 200 else None
                self._probed = (time.monotonic(), body)
            return body

    async def probe(self, request_id: str, timeout_s: float = 3.0) -> Reply | None:
        """GET /readyz once, outside the breaker and the failure log; None when there is no answer."""
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self.settings.connect_timeout_s)
        reply, _ = await self._send("GET", "/readyz", request_id, None, None, timeout)
        return reply

    async def _send(self, method, path, request_id, data, params, timeout) -> tuple[Reply | None, str]:
        """One HTTP exchange: (the reply, "") or, when there was no usable answer, (None, why)."""
        started = time.perf_counter()
        wait_ms = max(1, round(1000 * (timeout.total - DEADLINE_MARGIN_S)))
        headers = {"X-Request-ID": request_id, "X-Request-Timeout-Ms": str(wait_ms), **self.auth}
        try:
            async with self.session.request(
                method,
                self.base + path,
                data=data,
                params=params,
                timeout=timeout,
                headers=headers,
            ) as response:
                reply = Reply(
                    response.status, await response.read(), response.headers.get("Content-Type", "")
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            return None, f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        call = {"/v1/match": "match", "/readyz": "readyz"}.get(path, "persons")
        telemetry.UPSTREAM_SECONDS.labels(call).observe(time.perf_counter() - started)
        if reply.status in UNAVAILABLE:
            return reply, f"ai-server answered {reply.status}: {reply.body[:200].decode(errors='replace')}"
        return reply, ""

    async def _failed(self, request_id: str, method: str, path: str, started: float, reason: str) -> None:
        ms = 1000 * (time.perf_counter() - started)
        log.warning("upstream failure", extra={"request_id": request_id, "path": path, "reason": reason})
        await self.on_failure(
            {
                "ts": time.time(),
                "request_id": request_id,
                "kind": "upstream",
                "method": method,
                "path": path,
                "status": 0,
                "code": "upstream_failure",
                "reason": reason[:500],
                "ms": round(ms, 1),
            }
        )
