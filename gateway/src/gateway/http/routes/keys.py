"""API keys for admins: list them (never a secret), create one with a role and an expiry (its token is in
this one answer only), revoke one at once. The command line does the same (`gateway keys ...`), which is
how the first admin key, or a lost one, is made."""

import logging
import time

from aiohttp import web

from ...errors import ApiError
from ...store import ROLES
from ..auth import authorize
from ..context import request_id, services
from ..forms import read_json_object

MAX_NAME = 200
MAX_DAYS = 3650
log = logging.getLogger("gateway")


async def list_keys(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    return web.json_response({"keys": await services(request).store.list_keys()})


async def create_key(request: web.Request) -> web.Response:
    caller = await authorize(request, "admin")
    gateway = services(request)
    body = await read_json_object(request, gateway.settings.body_timeout_s)
    role, name, days = body.get("role"), body.get("name", ""), body.get("expires_in_days")
    if role not in ROLES:
        raise ApiError(400, "invalid_parameter", f"role must be one of {', '.join(ROLES)}")
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise ApiError(400, "invalid_parameter", f"name: a string of at most {MAX_NAME} characters")
    valid_days = isinstance(days, int | float) and not isinstance(days, bool) and 0 < days <= MAX_DAYS
    if days is not None and not valid_days:
        raise ApiError(400, "invalid_parameter", f"expires_in_days: a number above 0, at most {MAX_DAYS}")
    expires_at = None if days is None else time.time() + days * 86400
    key_id, token = await gateway.store.create_key(name, role, expires_at)
    info = next(k for k in await gateway.store.list_keys() if k["id"] == key_id)
    log.info("key created", extra={"request_id": request_id(request), "key": key_id, "by": caller.key_id})
    return web.json_response({"key": info, "token": token}, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    caller = await authorize(request, "admin")
    key = await services(request).store.revoke_key(request.match_info["key_id"])
    if key is None:
        raise ApiError(404, "not_found", "no such API key")
    log.info("key revoked", extra={"request_id": request_id(request), "key": key["id"], "by": caller.key_id})
    return web.json_response({"revoked": True, "key": key})
