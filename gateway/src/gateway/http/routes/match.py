"""POST /v1/match (and the paper's /match): API key and rate limit -> multipart read with size limits ->
image checks -> the photo written to disk while the result comes from the cache or the ai-server -> the
search stored -> the enriched response. A photo whose search is not stored is removed again at once."""

import time

from aiohttp import web

from ... import media
from ..auth import authorize
from ..context import request_id, services
from ..forms import bool_param, int_param, read_form
from .searches import search_view


async def match(request: web.Request) -> web.Response:
    gateway = services(request)
    caller = await authorize(request, "search")
    started = time.perf_counter()
    form = await read_form(request, gateway.settings, max_files=1)
    (data,) = form.files
    k = int_param(form.fields, "k", 5, 1, gateway.settings.max_k)
    explain = bool_param(form.fields, "explain")
    sha, timings = media.sha256(data), {}
    async with gateway.archive.holding(data, sha) as writing:
        result, hit = await gateway.matcher.match(request_id(request), data, sha, k, explain, timings)
        stored = time.perf_counter()
        search = await gateway.archive.record(caller.key_id, writing, media.sniff(data), k, result, hit)
        timings["store"] = time.perf_counter() - stored
    timings["total"] = time.perf_counter() - started
    view = search_view(search)
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
