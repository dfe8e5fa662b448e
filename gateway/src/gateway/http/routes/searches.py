"""A key's stored searches: the history, one search with its feedback, its photo and heatmap, and
feedback on a match. A search key sees only its own searches; an admin key sees everyone's."""

from aiohttp import web

from ...errors import ApiError
from ...store import ApiKey, Search
from ..auth import authorize
from ..context import services
from ..forms import int_param, read_json_object

MAX_COMMENT = 2000


def search_view(search: Search) -> dict:
    """A stored search as clients see it: links to its images instead of their hashes."""
    keys = ("id", "created_at", "key_id", "k", "cached", "result")
    out = {key: search[key] for key in keys if key in search}
    out["image_url"] = f"/v1/searches/{search['id']}/image"
    out["heatmap_url"] = f"/v1/searches/{search['id']}/heatmap" if search["heatmap_sha"] else None
    if "feedback" in search:
        out["feedback"] = search["feedback"]
    return out


async def own_search(request: web.Request, caller: ApiKey) -> Search:
    """The search in the path, when this caller may see it; 404 otherwise (not 403: ids stay secret)."""
    search = await services(request).store.get_search(request.match_info["search_id"])
    if search is None or (caller.role != "admin" and search["key_id"] != caller.key_id):
        raise ApiError(404, "not_found", "no such search")
    return search


async def list_searches(request: web.Request) -> web.Response:
    caller = await authorize(request, "search")
    offset = int_param(request.query, "offset", 0, 0, 10**9)
    limit = int_param(request.query, "limit", 20, 1, 100)
    mine = caller.key_id if caller.role != "admin" or request.query.get("mine") == "true" else None
    searches, total = await services(request).store.list_searches(mine, offset, limit)
    return web.json_response(
        {"searches": [search_view(s) for s in searches], "total": total, "offset": offset, "limit": limit}
    )


async def get_search(request: web.Request) -> web.Response:
    caller = await authorize(request, "search")
    return web.json_response({"search": search_view(await own_search(request, caller))})


async def search_image(request: web.Request) -> web.StreamResponse:
    search = await own_search(request, await authorize(request, "search"))
    return image_file(request, search["image_sha"], search["image_type"])


async def search_heatmap(request: web.Request) -> web.StreamResponse:
    search = await own_search(request, await authorize(request, "search"))
    if not search["heatmap_sha"]:
        raise ApiError(404, "not_found", "this search was made without explain=true: no heatmap")
    return image_file(request, search["heatmap_sha"], "image/png")


def image_file(request: web.Request, sha: str, content_type: str) -> web.StreamResponse:
    path = services(request).images.path(sha)
    if not path.exists():
        raise ApiError(404, "not_found", "the image is no longer stored")
    headers = {"Content-Type": content_type, "Cache-Control": "private, max-age=3600"}
    return web.FileResponse(path, headers=headers)


async def feedback(request: web.Request) -> web.Response:
    caller = await authorize(request, "search")
    search = await own_search(request, caller)
    body = await read_json_object(request)
    person_id, correct, comment = body.get("person_id"), body.get("correct"), body.get("comment", "")
    if not isinstance(person_id, str) or not isinstance(correct, bool):
        raise ApiError(400, "missing_field", "person_id (a string) and correct (true/false) are required")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ApiError(400, "invalid_parameter", f"comment: a string of at most {MAX_COMMENT} characters")
    if person_id not in {m["person_id"] for m in search["result"]["matches"]}:
        raise ApiError(400, "invalid_parameter", "person_id is not one of this search's matches")
    entry = await services(request).store.add_feedback(
        search["id"], caller.key_id, person_id, correct, comment
    )
    return web.json_response({"feedback": entry}, status=201)
