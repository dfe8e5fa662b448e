"""Persons: the ai-server's enrolment API behind the gateway's checks (enrol keys, image checks,
server-chosen file names, only the parameters the gateway itself read). Enrolling or deleting empties the
result cache; deleting a person is erasure on both tiers, reported in the answer and the log.

Thumbnails: an enrol or admin key may see any face's; a search key only those of faces its own stored
searches showed it (anything else is a 404, so face ids cannot be walked through)."""

import json
import logging

import aiohttp
from aiohttp import web

from ... import media
from ...errors import ApiError
from ..auth import authorize
from ..context import request_id, services
from ..forms import body_budget, int_param, read_form

MAX_ENROL_IMAGES = 8
ENROL_FIELDS = ("name", "metadata", "align")
log = logging.getLogger("gateway")


async def forward(request: web.Request, method: str, path: str, data=None, params=None) -> dict:
    """The ai-server's JSON answer, or its refusal as an ApiError; only `params` go along, never the
    client's own query string."""
    reply = await services(request).upstream.call(method, path, request_id(request), data=data, params=params)
    if reply.status >= 400:
        raise reply.refusal()
    return reply.json()


async def enrol(request: web.Request, path: str) -> web.Response:
    await authorize(request, "enrol")
    gateway = services(request)
    async with body_budget(request, gateway.settings, max_files=MAX_ENROL_IMAGES):
        form = await read_form(request, gateway.settings, max_files=MAX_ENROL_IMAGES)
        upload = aiohttp.FormData()
        for name in ENROL_FIELDS:
            if name in form.fields:
                upload.add_field(name, form.fields[name])
        for index, data in enumerate(form.files):  # server-chosen names: the client's never go further
            kind = media.sniff(data)
            upload.add_field("image", data, filename=f"{index}.{kind}", content_type=media.TYPES[kind])
        async with gateway.slots.slot():
            body = await forward(request, "POST", path, upload)
    gateway.cache.clear()
    return web.json_response(body, status=201)


async def create_person(request: web.Request) -> web.Response:
    return await enrol(request, "/v1/persons")


async def add_faces(request: web.Request) -> web.Response:
    return await enrol(request, f"/v1/persons/{request.match_info['person_id']}/faces")


async def list_persons(request: web.Request) -> web.Response:
    await authorize(request, "enrol")
    offset = int_param(request.query, "offset", 0, 0, 10**9)
    limit = int_param(request.query, "limit", 50, 1, 500)
    params = {"offset": str(offset), "limit": str(limit)}
    return web.json_response(await forward(request, "GET", "/v1/persons", params=params))


async def get_person(request: web.Request) -> web.Response:
    await authorize(request, "enrol")
    return web.json_response(await forward(request, "GET", f"/v1/persons/{request.match_info['person_id']}"))


async def delete_person(request: web.Request) -> web.Response:
    """Erasure of a person: the gallery's rows, vectors, crops and thumbnails (the ai-server), then every
    stored search's name, metadata and thumbnail link, the photos and heatmaps of those searches,
    feedback about the person, and every cached result. Repeating it (after a timeout) completes it."""
    await authorize(request, "enrol")
    person_id = request.match_info["person_id"]
    gallery = await forward(request, "DELETE", f"/v1/persons/{person_id}")
    return await _erased(request, gallery, person_id)


async def delete_face(request: web.Request) -> web.Response:
    await authorize(request, "enrol")
    person_id, face_id = request.match_info["person_id"], int(request.match_info["face_id"])
    gallery = await forward(request, "DELETE", f"/v1/persons/{person_id}/faces/{face_id}")
    return await _erased(request, gallery, person_id, face_id)


async def _erased(request: web.Request, gallery: dict, person_id: str, face_id: int | None = None):
    """The gateway's part of an erasure, and the report of both parts (answer and log: ids and counts)."""
    gateway = services(request)
    erasure = await gateway.archive.erase_person(person_id, face_id)
    erasure["cached_results_removed"] = gateway.cache.clear()
    report = {"gallery": gallery.pop("erasure", {}), "gateway": erasure}
    what = {"request_id": request_id(request), "person_id": person_id, "face_id": face_id}
    log.info("erased", extra={**what, "erasure": json.dumps(report)})
    body = {**gallery, "searches_redacted": erasure["searches_redacted"], "erasure": report}
    return web.json_response(body)


async def thumbnail(request: web.Request) -> web.Response:
    caller = await authorize(request, "search")
    gateway = services(request)
    person_id, face_id = request.match_info["person_id"], int(request.match_info["face_id"])
    if not caller.may("enrol"):
        shown = await gateway.store.searches_showing(caller.key_id, person_id, face_id)
        if not any(gateway.disclosure.shows_face(caller, s["result"], person_id, face_id) for s in shown):
            raise ApiError(404, "not_found", "no such face among this key's searches")
    path = f"/v1/persons/{person_id}/faces/{face_id}/thumbnail"
    reply = await gateway.upstream.call("GET", path, request_id(request))
    if reply.status != 200:
        raise reply.refusal()
    headers = {"Cache-Control": "private, no-store"}
    return web.Response(body=reply.body, content_type="image/jpeg", headers=headers)
