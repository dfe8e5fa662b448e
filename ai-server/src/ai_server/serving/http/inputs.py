"""Reading a request: the loaded service, uploaded photos and typed form/query parameters.

Every malformed input is a `ServiceError` with a code the caller can act on (`missing_field`,
`invalid_parameter`, `invalid_request`), raised before any model work is done.
"""

import json

from flask import current_app, request
from werkzeug.datastructures import FileStorage

from ..errors import Code, ServiceError
from ..service import Service

SERVICE = "ai_service"  # the app.extensions key of the process's Service
MAX_IMAGES = 8  # photos per enrolment request
MAX_NAME = 200
MAX_METADATA_BYTES = 16 * 1024
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def service() -> Service:
    return current_app.extensions[SERVICE]


def read_file(file: FileStorage) -> bytes:
    """At most one byte more than the limit: enough for the decoder to refuse an oversized photo."""
    return file.read(service().settings.max_image_bytes + 1)


def one_upload(field: str = "image") -> bytes:
    """The request's one photo: the body itself when its type is an image (what the gateway sends, with
    the parameters in the query: no multipart to build there or to parse here), else the file field."""
    if request.mimetype.startswith("image/"):
        data = request.stream.read(service().settings.max_image_bytes + 1)
        if not data:
            raise ServiceError(Code.MISSING_FIELD, "the request body is empty: send the photo in it")
        return data
    files = request.files.getlist(field)
    if not files:
        raise ServiceError(Code.MISSING_FIELD, f"send the photo as a multipart file field '{field}'")
    if len(files) > 1:
        raise ServiceError(Code.INVALID_REQUEST, f"send exactly one '{field}' file")
    return read_file(files[0])


def enrolment_uploads() -> list[FileStorage]:
    """The photos of an enrolment (fields `image` and `images`), 1 to MAX_IMAGES of them."""
    files = request.files.getlist("image") + request.files.getlist("images")
    if not files:
        raise ServiceError(Code.MISSING_FIELD, "send one or more photos as multipart file fields 'image'")
    if len(files) > MAX_IMAGES:
        raise ServiceError(Code.INVALID_REQUEST, f"at most {MAX_IMAGES} images per request")
    return files


def int_param(name: str, default: int, low: int, high: int) -> int:
    raw = request.values.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(Code.INVALID_PARAMETER, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ServiceError(Code.INVALID_PARAMETER, f"{name} must be between {low} and {high}")
    return value


def bool_param(name: str, default: bool = False) -> bool:
    raw = request.values.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ServiceError(Code.INVALID_PARAMETER, f"{name} must be true or false")


def aligned_input() -> bool:
    """`align=false`: the upload is already an aligned 112x112 crop (no detection)."""
    return not bool_param("align", True)


def person_fields() -> tuple[str, dict]:
    """The `name` (1-200 characters) and `metadata` (a JSON object, at most 16 KiB) of an enrolment."""
    name = (request.values.get("name") or "").strip()
    if not name or len(name) > MAX_NAME:
        code = Code.MISSING_FIELD if not name else Code.INVALID_PARAMETER
        raise ServiceError(code, f"name is required (1-{MAX_NAME} characters)")
    raw = request.values.get("metadata") or "{}"
    if len(raw.encode()) > MAX_METADATA_BYTES:
        raise ServiceError(Code.INVALID_PARAMETER, f"metadata is limited to {MAX_METADATA_BYTES} bytes")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError:
        raise ServiceError(Code.INVALID_PARAMETER, "metadata must be a JSON object") from None
    if not isinstance(metadata, dict):
        raise ServiceError(Code.INVALID_PARAMETER, "metadata must be a JSON object")
    return name, metadata
