"""Who may call the ai-server, and for how long a request may work: checked before any endpoint runs.

- Host allow-list (`AI_SERVER_ALLOWED_HOSTS`): a page that re-binds its own DNS name to 127.0.0.1 still
  sends its own name as Host, so it is refused (403 `forbidden_host`) before anything is read or done.
- The shared secret: every request but the health probes (/healthz, /readyz) must carry
  `Authorization: Bearer <secret>`, compared in constant time (401 `unauthorized`). A browser cannot add
  that header to a cross-site form post, so a web page cannot enrol or delete through a user's loopback.
- A deadline: the gateway sends how long it will wait (`X-Request-Timeout-Ms`); the request may work for the
  shorter of that and `AI_SERVER_REQUEST_TIMEOUT_S`, and stops at the next stage once it has passed
  (503 `timeout`), so no work goes on for an answer nobody waits for.
"""

import hmac
import time

from flask import g, request

from ..errors import Code, ServiceError
from ..pipeline import images
from ..settings import Settings

OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes: compose's healthcheck, `make run`, the tests
TIMEOUT_HEADER = "X-Request-Timeout-Ms"


class Guard:
    def __init__(self, settings: Settings):
        self.secret = settings.internal_secret().encode()
        self.hosts = settings.hosts
        self.timeout_s = settings.request_timeout_s

    def check(self) -> None:
        """Host, secret, then the request's deadline (a `before_request` hook)."""
        if host_name(request.host) not in self.hosts:
            raise ServiceError(Code.FORBIDDEN_HOST, "this server does not answer for that Host")
        if request.path not in OPEN_PATHS and not self.authorized(request.headers.get("Authorization", "")):
            raise ServiceError(Code.UNAUTHORIZED, "only the gateway may call this service")
        g.budget_s = self.budget(request.headers.get(TIMEOUT_HEADER, ""))
        g.deadline = time.monotonic() + g.budget_s
        images.DECODE_DEADLINE.set(g.deadline)

    def authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.secret)

    def budget(self, header: str) -> float:
        """Seconds this request may work: the caller's wait when it says one, never above the setting."""
        try:
            asked = float(header) / 1000 if header else self.timeout_s
        except ValueError:
            asked = self.timeout_s
        return max(0.0, min(asked, self.timeout_s)) if asked == asked else self.timeout_s  # NaN: ignored


def host_name(host: str) -> str:
    """`Host` without the port, lower case: "127.0.0.1:5000" -> "127.0.0.1", "[::1]:5000" -> "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_deadline(stage: str) -> None:
    """Between stages: stop when the caller has given up (the gateway answers its client itself)."""
    deadline = g.get("deadline")
    if deadline is not None and time.monotonic() > deadline:
        raise ServiceError(Code.TIMEOUT, f"the request ran out of time before {stage}")
