"""POST /v1/match (and the paper's /match): API key and rate limit -> the key's quotas -> the body budget
-> multipart read with size limits and a deadline -> image checks -> the photo's stored copy prepared and
written while the result comes from the key's cache or the ai-server -> the search stored -> the answer,
as much of it as the key's role may see. A photo whose search is not stored is removed again at once."""

import time

from aiohttp import web

from ...limits import check_quotas
from ..auth import authorize
from ..context import request_id, services
from ..forms import body_budget, bool_param, int_param, read_form
from .searches import search_view


async def match(request: web.Request) -> web.Response:
    gateway = services(request)
    caller = await authorize(request, "search")
    started = time.perf_counter()
    await check_quotas(gateway.store, gateway.settings, caller.key_id)
    async with body_budget(request, gateway.settings, max_files=1):
        form = await read_form(request, gateway.settings, max_files=1)
        (data,) = form.files
        k = int_param(form.fields, "k", 5, 1, gateway.disclosure.max_k_for(caller))
        explain = bool_param(form.fields, "explain")
        timings: dict[str, float] = {}
        async with gateway.archive.holding(data) as photo:
            result, hit = await gateway.matcher.match(
                caller.key_id, request_id(request), data, k, explain, timings
            )
            stored = time.perf_counter()
            search = await gateway.archive.record(caller.key_id, photo, k, result, hit)
            timings["store"] = time.perf_counter() - stored
    timings["total"] = time.perf_counter() - started
    view = search_view(search, caller, gateway.disclosure)
    body = {
        "search_id": search["id"],
        "request_id": request_id(request),
        "k": k,
        "cached": search["cached"],
        **view["result"],
        "image_url": view["image_url"],
        "heatmap_url": view["heatmap_url"],
        "timings_ms": {name: round(1000 * s, 2) for name, s in timings.items()},
    }
    if result.get("explanation"):
        body["explanation"] = result["explanation"]
    return web.json_response(body)
