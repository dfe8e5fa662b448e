"""Reading what clients send, with limits checked as the bytes arrive: multipart forms with photos, query
and form parameters, JSON bodies. Everything wrong becomes a 400/408/413/415 ApiError that says what.

A body must arrive within GATEWAY_BODY_TIMEOUT_S (408 otherwise: a client that trickles its bytes holds
a connection, not the service), and a multipart body is read only inside the body budget (`limits.py`):
`read_form` takes the budget for the declared size before it reads a byte.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError

from .. import media
from ..errors import ApiError
from ..settings import Settings
from .context import services

IMAGE_FIELDS = ("image", "images")
MAX_FIELD_BYTES = 32 * 1024  # a text field, and any non-multipart body
MAX_PARTS = 16
CHUNK_BYTES = 256 * 1024


@dataclass
class Form:
    fields: dict[str, str]
    files: list[bytes]  # image files, each already checked (type, size, pixels)


def largest_body(settings: Settings, max_files: int) -> int:
    """The most a multipart body with `max_files` photos may be: the photos, the text fields, framing."""
    return max_files * settings.max_image_bytes + MAX_PARTS * (MAX_FIELD_BYTES + 1024)


@contextlib.asynccontextmanager
async def body_budget(request: web.Request, settings: Settings, max_files: int) -> AsyncIterator[None]:
    """Holds the request's share of the body budget (its declared length, or the largest body allowed
    when it declares none) while the handler runs; a declared length beyond any allowed body is a 413
    before anything is read."""
    largest = largest_body(settings, max_files)
    declared = request.content_length
    if declared is not None and declared > largest:
        raise ApiError(413, "image_too_large", f"the request body is larger than {largest} bytes")
    async with services(request).bodies.hold(declared if declared is not None else largest):
        yield


async def read_form(request: web.Request, settings: Settings, max_files: int) -> Form:
    """Text fields and image files of a multipart body, each file checked as it arrives, within the
    body deadline. Call it inside `body_budget`."""
    # not request.content_type: it runs the email package's parser, a quarter of a millisecond for each
    # new boundary, so on every upload
    mimetype = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, ""))
    if (mimetype.type, mimetype.subtype) != ("multipart", "form-data"):
        raise ApiError(400, "invalid_request", "send multipart/form-data with the photo in field 'image'")
    form = Form({}, [])
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            async for part in await request.multipart():
                await _read_part(part, form, settings, max_files)
    except TimeoutError:
        raise ApiError(408, "request_timeout", "the request body did not arrive in time") from None
    except (ValueError, AssertionError, aiohttp.ClientPayloadError, HttpProcessingError) as err:
        raise ApiError(400, "invalid_request", f"the multipart body cannot be read: {err}") from None
    except ConnectionResetError:  # the client left mid-body: its mistake, not a 500 in the metrics
        raise ApiError(400, "invalid_request", "the connection closed before the body ended") from None
    if not form.files:
        raise ApiError(400, "missing_field", "send the photo as a multipart file field 'image'")
    for data in form.files:
        media.check_image(data, settings.max_image_bytes, settings.max_pixels)
    return form


async def _read_part(part: Any, form: Form, settings: Settings, max_files: int) -> None:
    if len(form.fields) + len(form.files) == MAX_PARTS:
        raise ApiError(400, "invalid_request", f"at most {MAX_PARTS} multipart parts")
    if not isinstance(part, BodyPartReader) or not part.name:
        raise ApiError(400, "invalid_request", "nested or unnamed multipart parts are refused")
    if part.name in IMAGE_FIELDS:
        if len(form.files) == max_files:
            many = "exactly one image" if max_files == 1 else f"at most {max_files} images"
            raise ApiError(400, "invalid_request", f"send {many}")
        form.files.append(await _read_bounded(part, settings.max_image_bytes, "image_too_large"))
    elif part.filename is not None:
        raise ApiError(400, "invalid_request", f"unexpected file field '{part.name[:40]}'")
    else:
        raw = await _read_bounded(part, MAX_FIELD_BYTES, "invalid_parameter")
        form.fields[part.name] = raw.decode("utf-8", errors="replace")


async def _read_bounded(part: BodyPartReader, limit: int, code: str) -> bytes:
    """The part's bytes, refused as soon as they pass `limit` (never buffered beyond it), gathered in
    one buffer (not a list of chunks joined into a second copy)."""
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK_BYTES):
        if len(data) + len(chunk) > limit:
            status = 413 if code == "image_too_large" else 400
            raise ApiError(status, code, f"a part of the body is larger than {limit} bytes")
        data += chunk
    return bytes(data)


def int_param(values: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}")
    return value


def bool_param(values: Mapping[str, str], name: str) -> bool:
    raw = (values.get(name) or "false").lower()
    if raw in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return raw in ("1", "true", "yes", "on")
    raise ApiError(400, "invalid_parameter", f"{name} must be true or false")


async def read_json_object(request: web.Request, timeout_s: float) -> dict:
    """A small JSON object (the app's client_max_size bounds it), within the body deadline; nesting too
    deep for the parser is a 400 like any other bad JSON."""
    try:
        async with asyncio.timeout(timeout_s):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, "request_timeout", "the request body did not arrive in time") from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_request", "send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "send a JSON object")
    return body
