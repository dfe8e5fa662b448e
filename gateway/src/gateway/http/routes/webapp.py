"""The web app: files of GATEWAY_WEB_DIR, and index.html for any other path (the app's client-side routes).
Unknown /v1 paths never reach this handler, so they stay JSON 404s."""

from aiohttp import web

from ...errors import ApiError
from ..context import services


async def static(request: web.Request) -> web.StreamResponse:
    web_root = services(request).web_root
    if web_root is None:
        raise ApiError(404, "not_found", f"no route {request.path}")
    path = (web_root / request.match_info["tail"]).resolve()
    if not path.is_relative_to(web_root) or not path.is_file():
        path = web_root / "index.html"
    if not path.is_file():
        raise ApiError(404, "not_found", f"no route {request.path}")
    return web.FileResponse(path)
