"""A key's stored searches: the history, one search with its feedback, its photo and heatmap, feedback on
a match, and deleting a search. A search or enrol key sees only its own searches, and a search key only
what its role may see of them (`policy.py`); an admin key sees everyone's, whole."""

import logging

from aiohttp import web

from ...errors import ApiError
from ...policy import Disclosure
from ...store import ApiKey, Search
from ..auth import authorize
from ..context import request_id, services
from ..forms import int_param, read_json_object

MAX_COMMENT = 2000
log = logging.getLogger("gateway")


def search_view(search: Search, caller: ApiKey, disclosure: Disclosure) -> dict:
    """A stored search as this caller sees it: links to its images instead of their hashes, and the
    result as the caller's role may see it."""
    keys = ("id", "created_at", "key_id", "k", "cached")
    out = {key: search[key] for key in keys if key in search}
    out["result"] = disclosure.result_for(caller, search["result"])
    out["image_url"] = f"/v1/searches/{search['id']}/image"
    out["heatmap_url"] = f"/v1/searches/{search['id']}/heatmap" if search["heatmap_sha"] else None
    if "feedback" in search:
        out["feedback"] = search["feedback"]
    return out


async def own_search(request: web.Request, caller: ApiKey) -> Search:
    """The search in the path, when this caller may see it; 404 otherwise (not 403: ids stay secret)."""
    search = await services(request).store.get_search(request.match_info["search_id"])
    if search is None or (not caller.may("admin") and search["key_id"] != caller.key_id):
        raise ApiError(404, "not_found", "no such search")
    return search


async def list_searches(request: web.Request) -> web.Response:
    caller = await authorize(request, "search")
    gateway = services(request)
    offset = int_param(request.query, "offset", 0, 0, 10**9)
    limit = int_param(request.query, "limit", 20, 1, 100)
    mine = caller.key_id if not caller.may("admin") or request.query.get("mine") == "true" else None
    searches, total = await gateway.store.list_searches(mine, offset, limit)
    views = [search_view(s, caller, gateway.disclosure) for s in searches]
    return web.json_response({"searches": views, "total": total, "offset": offset, "limit": limit})


async def get_search(request: web.Request) -> web.Response:
    caller = await authorize(request, "search")
    search = await own_search(request, caller)
    return web.json_response({"search": search_view(search, caller, services(request).disclosure)})


async def search_image(request: web.Request) -> web.StreamResponse:
    search = await own_search(request, await authorize(request, "search"))
    return image_file(request, search["image_sha"], search["image_type"])


async def search_heatmap(request: web.Request) -> web.StreamResponse:
    search = await own_search(request, await authorize(request, "search"))
    if not search["heatmap_sha"]:
        raise ApiError(404, "not_found", "this search has no heatmap (made without explain=true, or expired)")
    return image_file(request, search["heatmap_sha"], "image/png")


def image_file(request: web.Request, sha: str, content_type: str) -> web.StreamResponse:
    path = services(request).images.path(sha) if sha else None
    if path is None or not path.exists():
        raise ApiError(404, "not_found", "the image is no longer stored")
    headers = {"Content-Type": content_type, "Cache-Control": "private, no-store"}
    return web.FileResponse(path, headers=headers)


async def delete_search(request: web.Request) -> web.Response:
    """The search, its feedback, its photo and heatmap (unless another search uses them) and this key's
    cached results: erasure on the searcher's request."""
    caller = await authorize(request, "search")
    gateway = services(request)
    search = await own_search(request, caller)
    erasure = await gateway.archive.delete_search(search["id"])
    erasure["cached_results_removed"] = gateway.cache.forget_key(search["key_id"])
    what = {"request_id": request_id(request), "search_id": search["id"]}
    log.info("search deleted", extra={**what, **erasure})
    return web.json_response({"deleted": True, "search_id": search["id"], "erasure": erasure})


async def feedback(request: web.Request) -> web.Response:
    caller = await authorize(request, "search")
    gateway = services(request)
    search = await own_search(request, caller)
    body = await read_json_object(request, gateway.settings.body_timeout_s)
    person_id, correct, comment = body.get("person_id"), body.get("correct"), body.get("comment", "")
    if not isinstance(person_id, str) or not isinstance(correct, bool):
        raise ApiError(400, "missing_field", "person_id (a string) and correct (true/false) are required")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ApiError(400, "invalid_parameter", f"comment: a string of at most {MAX_COMMENT} characters")
    shown = gateway.disclosure.result_for(caller, search["result"])["matches"]
    if person_id not in {m["person_id"] for m in shown}:
        raise ApiError(400, "invalid_parameter", "person_id is not one of this search's matches")
    entry = await gateway.store.add_feedback(search["id"], caller.key_id, person_id, correct, comment)
    return web.json_response({"feedback": entry}, status=201)
