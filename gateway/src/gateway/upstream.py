"""Calls to the ai-server: a timeout on every call, replicas in rotation, bounded retries, a circuit breaker.

Replicas (GATEWAY_AI_SERVER_URL=url1,url2,...): each call starts on the next replica in round-robin
order. A replica whose call failed without a usable answer (connection refused or reset, timeout,
502/503/504) is taken out of rotation; a background check asks every replica's /readyz once a second and
puts it back as soon as it answers 200 (and takes out one whose /readyz fails before a call finds out).

Retries (with exponential backoff) apply only to such failures, and depend on what a second delivery
could do:
- GET, HEAD and DELETE are idempotent: up to GATEWAY_RETRIES more attempts, on another replica when
  there is one, else on the same;
- a match (POST /v1/match) changes nothing at the ai-server, but it is expensive: it is tried again only
  on a replica it has not been sent to in this call, never twice on one (a hung replica costs one
  timeout, not three);
- any other POST (an enrolment) may have been carried out even when its answer never came (a reset or a
  timeout after the request was sent), so it goes to another replica only when the first one certainly
  never received it: the connection could not be made at all (refused, unreachable, connect timeout).
  An enrolment is never made twice; a lost answer is the caller's 503 to check and retry.
After `breaker_failures` consecutive failed attempts with no replica left in rotation the circuit opens
and every call fails at once with 503 `ai_unavailable` until, `breaker_reset_s` later, one trial call is
let through: its success closes the circuit again. With several replicas one dead replica never opens it.

Every call carries the ai-server's shared secret (`Authorization: Bearer`) and how long the gateway will
wait for it (`X-Request-Timeout-Ms`, a little less than the call's timeout), so the ai-server stops work
nobody waits for instead of carrying on for minutes. `probe()` is the public /readyz's look at the
ai-server: no retries, no failure record, and it never counts towards the circuit breaker, so anonymous
traffic on /readyz cannot open the circuit for everyone.
"""

import asyncio
import contextlib
import itertools
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
READ_ONLY_POSTS = {"/v1/match"}  # POSTs that store nothing at the ai-server
UNAVAILABLE = {502, 503, 504}
NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)  # no byte of the request left
DEADLINE_MARGIN_S = 0.5  # the ai-server stops this much before the gateway gives up
PROBE_EVERY_S = 1.0  # the public /readyz asks the ai-server at most this often; replicas are checked as often


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


class Replica:
    """One ai-server: its base URL, whether it is in rotation, and its last /readyz body while ready."""

    def __init__(self, url: str):
        self.base = url.rstrip("/")
        self.up = True
        self.ready: dict | None = None

    def out(self) -> None:
        if self.up:
            log.warning("ai-server replica out of rotation", extra={"replica": self.base})
        self.up = False

    def back(self) -> None:
        if not self.up:
            log.info("ai-server replica back in rotation", extra={"replica": self.base})
        self.up = True


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
        self.replicas = [Replica(url) for url in settings.ai_server_urls]
        self.settings = settings
        self.auth = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)
        self.on_failure = on_failure  # records a failed call (the failure log)
        self.session: aiohttp.ClientSession | None = None
        self._turn = itertools.count()
        self._probing: asyncio.Lock | None = None
        self._probed: tuple[float, dict | None] = (float("-inf"), None)
        self._checking: asyncio.Task | None = None

    async def start(self) -> None:
        self._probing = asyncio.Lock()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=4 * self.settings.max_inflight + 16),
            auto_decompress=False,
        )
        if len(self.replicas) > 1:
            self._checking = asyncio.create_task(self._check_replicas())

    async def close(self) -> None:
        if self._checking:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking
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
        content_type: str | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        """The ai-server's reply (any status it chose), or ApiError 503 ai_unavailable / 502."""
        timeout = aiohttp.ClientTimeout(
            total=timeout_s or self.settings.timeout_s, sock_connect=self.settings.connect_timeout_s
        )
        tried: list[Replica] = []
        for attempt in range(1 + self.settings.retries):
            replica = self._pick(tried, repeat=method in IDEMPOTENT)
            if replica is None:
                break
            if not self.breaker.allow():
                raise unavailable(self.breaker.retry_after())
            tried.append(replica)
            started = time.perf_counter()
            sent = (data, params, content_type)
            reply, error = await self._send(replica, method, path, request_id, *sent, timeout)
            if reply is not None and reply.status not in UNAVAILABLE:
                replica.back()
                self.breaker.success()
                if reply.status >= 500 and reply.status != 507:  # 507: its storage is full, said cleanly
                    await self._failed(
                        request_id, method, path, started, f"ai-server answered {reply.status}"
                    )
                    raise ApiError(502, "upstream_error", "the recognition service failed on this request")
                return reply
            self._lost(replica)
            await self._failed(request_id, method, path, started, _reason(reply, error))
            if not _may_resend(method, path, error):
                break
            await asyncio.sleep(0.05 * 2**attempt * (1 + random.random() / 2))
        raise unavailable(1.0)

    def _pick(self, tried: list[Replica], repeat: bool) -> Replica | None:
        """The next replica for this call: one in rotation it has not tried, else (idempotent calls, or a
        first attempt while every replica is out) any; None when it should give up."""
        start = next(self._turn)
        order = [self.replicas[(start + i) % len(self.replicas)] for i in range(len(self.replicas))]
        for candidates in (
            [r for r in order if r.up and r not in tried],
            [r for r in order if r.up] if repeat else [],
            order if repeat or not tried else [],
        ):
            if candidates:
                return candidates[0]
        return None

    def _lost(self, replica: Replica) -> None:
        """A failed attempt: the replica leaves the rotation; the circuit counts it only when none is left."""
        if len(self.replicas) > 1:
            replica.out()
        if len(self.replicas) == 1 or not any(r.up for r in self.replicas):
            self.breaker.failure()

    async def _check_replicas(self) -> None:
        """Every replica's /readyz once a PROBE_EVERY_S: in rotation while it answers 200, out otherwise."""
        while True:
            replies = await asyncio.gather(*(self._probe(r, "replica-check") for r in self.replicas))
            for replica, reply in zip(self.replicas, replies, strict=True):
                replica.ready = _ready_body(reply)
                ready = replica.ready is not None
                (replica.back if ready else replica.out)()
            await asyncio.sleep(PROBE_EVERY_S)

    async def readiness(self, request_id: str) -> dict | None:
        """An ai-server's /readyz body while one is ready, else None: asked at most once a PROBE_EVERY_S
        (concurrent callers share one probe; with replicas, the background check's answers), outside the
        breaker and the failure log."""
        if self._checking is not None:
            return next((r.ready for r in self.replicas if r.up and r.ready), None)
        async with self._probing:
            asked_at, body = self._probed
            if time.monotonic() - asked_at >= PROBE_EVERY_S:
                reply = await self.probe(request_id)
                body = reply.json() if reply is not None and reply.status == 200 else None
                self._probed = (time.monotonic(), body)
            return body

    async def probe(self, request_id: str, timeout_s: float = 3.0) -> Reply | None:
        """GET /readyz of the first replica once, outside the breaker and the failure log; None when there
        is no answer."""
        return await self._probe(self.replicas[0], request_id, timeout_s)

    async def _probe(self, replica: Replica, request_id: str, timeout_s: float = 3.0) -> Reply | None:
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self.settings.connect_timeout_s)
        reply, _ = await self._send(replica, "GET", "/readyz", request_id, None, None, None, timeout)
        return reply

    async def _send(
        self, replica: Replica, method, path, request_id, data, params, content_type, timeout
    ) -> tuple[Reply | None, BaseException | None]:
        """One HTTP exchange: (the reply, None) or, when there was no answer, (None, the error)."""
        started = time.perf_counter()
        wait_ms = max(1, round(1000 * (timeout.total - DEADLINE_MARGIN_S)))
        headers = {"X-Request-ID": request_id, "X-Request-Timeout-Ms": str(wait_ms), **self.auth}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            async with self.session.request(
                method, replica.base + path, data=data, params=params, timeout=timeout, headers=headers
            ) as response:
                reply = Reply(
                    response.status, await response.read(), response.headers.get("Content-Type", "")
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            return None, err
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        call = {"/v1/match": "match", "/readyz": "readyz"}.get(path, "persons")
        telemetry.UPSTREAM_SECONDS.labels(call).observe(time.perf_counter() - started)
        return reply, None

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


def _may_resend(method: str, path: str, error: BaseException | None) -> bool:
    """Whether a failed attempt may be sent again (module docstring: which calls, and why)."""
    return method in IDEMPOTENT or path in READ_ONLY_POSTS or isinstance(error, NEVER_SENT)


def _ready_body(reply: Reply | None) -> dict | None:
    """A /readyz answer's body when it says ready (200 and JSON), else None."""
    if reply is None or reply.status != 200:
        return None
    try:
        return reply.json()
    except ValueError:
        return None


def _reason(reply: Reply | None, error: BaseException | None) -> str:
    if reply is not None:
        return f"ai-server answered {reply.status}: {reply.body[:200].decode(errors='replace')}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
