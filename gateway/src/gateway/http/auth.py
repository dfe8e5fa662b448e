"""API keys and roles: every protected handler starts with `await authorize(request, role)`."""

from aiohttp import web

from ..errors import ApiError
from ..store import ApiKey
from .context import KEY_ID, services


async def authorize(request: web.Request, role: str) -> ApiKey:
    """The caller's key (401 without a valid one, 403 when an admin key is needed), after its rate limit
    (429). The key id goes into the request's log line and failure record."""
    token = request.headers.get("X-API-Key", "")
    found = await services(request).store.check_key(token) if token else None
    if found is None:
        raise ApiError(401, "unauthorized", "send a valid API key in the X-API-Key header")
    request[KEY_ID] = found.key_id
    if role == "admin" and found.role != "admin":
        raise ApiError(403, "forbidden", "this needs an admin API key")
    services(request).limiter.check(found.key_id)
    return found
