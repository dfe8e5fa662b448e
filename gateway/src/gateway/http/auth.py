"""API keys and roles: every protected handler starts with `await authorize(request, role)`.

Refused keys are limited per client address (GATEWAY_AUTH_FAILURES_PER_MINUTE): the failure log records a
refusal only while the address has tokens left (`failure_log` takes them), and once it has none a wrong
key is answered 429 and not recorded at all, so a flood of bad keys can fill neither the failure log nor
the disk. A valid key is always accepted, whoever shares its address."""

from aiohttp import web

from ..errors import ApiError
from ..store import ApiKey
from .context import KEY_ID, services


def client_address(request: web.Request) -> str:
    """The peer's address (behind a reverse proxy: the proxy's, so the limit is per proxy)."""
    return request.remote or "unknown"


async def authorize(request: web.Request, role: str) -> ApiKey:
    """The caller's key (401 without a valid one, 403 when its role is below `role`), after its rate
    limit (429). The key id goes into the request's log line and failure record."""
    gateway = services(request)
    token = request.headers.get("X-API-Key", "")
    found = await gateway.store.check_key(token) if token else None
    if found is None:
        if gateway.refusals.exhausted(client_address(request)):
            raise ApiError(429, "rate_limited", "too many refused API keys from this address", 60.0)
        raise ApiError(401, "unauthorized", "send a valid API key in the X-API-Key header")
    request[KEY_ID] = found.key_id
    if not found.may(role):
        raise ApiError(403, "forbidden", f"this needs an API key with the {role} role (or above)")
    gateway.limiter.check(found.key_id)
    return found
