"""Persons: the ai-server's enrolment API behind the gateway's checks (admin keys, image checks, server-chosen
file names). Enrolling or deleting empties the result cache; deleting also redacts stored searches."""

import json

import aiohttp
from aiohttp import web

from ... import media
from ..auth import authorize
from ..context import request_id, services
from ..forms import read_form

MAX_ENROL_IMAGES = 8
ENROL_FIELDS = ("name", "metadata", "align")


async def forward(request: web.Request, method: str, path: str, data=None) -> web.Response:
    """The ai-server's JSON answer as is (with the client's query), or its refusal as an ApiError."""
    reply = await services(request).upstream.call(
        method, path, request_id(request), data=data, params=request.query
    )
    if reply.status >= 400:
        raise reply.refusal()
    return web.Response(status=reply.status, body=reply.body, content_type="application/json")


async def enrol(request: web.Request, path: str) -> web.Response:
    await authorize(request, "admin")
    gateway = services(request)
    form = await read_form(request, gateway.settings, max_files=MAX_ENROL_IMAGES)
    upload = aiohttp.FormData()
    for name in ENROL_FIELDS:
        if name in form.fields:
            upload.add_field(name, form.fields[name])
    for index, data in enumerate(form.files):  # server-chosen names: the client's never go further
        kind = media.sniff(data)
        upload.add_field("image", data, filename=f"{index}.{kind}", content_type=media.TYPES[kind])
    async with gateway.slots.slot():
        response = await forward(request, "POST", path, upload)
    gateway.cache.clear()
    return response


async def create_person(request: web.Request) -> web.Response:
    return await enrol(request, "/v1/persons")


async def add_faces(request: web.Request) -> web.Response:
    return await enrol(request, f"/v1/persons/{request.match_info['person_id']}/faces")


async def list_persons(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    return await forward(request, "GET", "/v1/persons")


async def get_person(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    return await forward(request, "GET", f"/v1/persons/{request.match_info['person_id']}")


async def delete_person(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    person_id = request.match_info["person_id"]
    response = await forward(request, "DELETE", f"/v1/persons/{person_id}")
    redacted = await forget(request, person_id)
    return web.json_response({**json.loads(response.body), "searches_redacted": redacted})


async def delete_face(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    person_id, face_id = request.match_info["person_id"], int(request.match_info["face_id"])
    response = await forward(request, "DELETE", f"/v1/persons/{person_id}/faces/{face_id}")
    redacted = await forget(request, person_id, face_id)
    return web.json_response({**json.loads(response.body), "searches_redacted": redacted})


async def forget(request: web.Request, person_id: str, face_id: int | None = None) -> int:
    """After a deletion: no cached result shows the person (or face), and stored searches are redacted."""
    gateway = services(request)
    gateway.cache.clear()
    return await gateway.store.redact_person(person_id, face_id)


async def thumbnail(request: web.Request) -> web.Response:
    await authorize(request, "search")
    person_id, face_id = request.match_info["person_id"], request.match_info["face_id"]
    path = f"/v1/persons/{person_id}/faces/{face_id}/thumbnail"
    reply = await services(request).upstream.call("GET", path, request_id(request))
    if reply.status != 200:
        raise reply.refusal()
    headers = {"Cache-Control": "private, max-age=3600"}
    return web.Response(body=reply.body, content_type="image/jpeg", headers=headers)
