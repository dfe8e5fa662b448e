"""Every failure of a request becomes `{"error": {"code", "message"}, "request_id"}`: here, and only here.

`STATUS` is the one table from a `Code` to an HTTP status: the pipeline and the gallery raise
`ServiceError(code, message)` without knowing about HTTP, Werkzeug's own exceptions (unknown path, wrong
method, body too large) get a code here, a full disk is a 507 (nothing was stored), and anything else is
a logged 500 whose body says nothing internal.
"""

import errno
import logging
import sqlite3
import sys

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import Code, ServiceError

log = logging.getLogger("ai_server")

STATUS: dict[Code, int] = {
    Code.INVALID_IMAGE: 400,
    Code.MISSING_FIELD: 400,
    Code.INVALID_PARAMETER: 400,
    Code.INVALID_REQUEST: 400,
    Code.BAD_REQUEST: 400,
    Code.UNKNOWN_MODEL: 400,
    Code.UNAUTHORIZED: 401,
    Code.FORBIDDEN_HOST: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.MODEL_MISMATCH: 409,
    Code.IMAGE_TOO_LARGE: 413,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.NO_FACE_FOUND: 422,
    Code.HTTP_ERROR: 400,  # only the default: a Werkzeug error keeps its own status
    Code.INTERNAL_ERROR: 500,
    Code.NOT_READY: 503,
    Code.TIMEOUT: 503,
    Code.OVERLOADED: 503,
    Code.INSUFFICIENT_STORAGE: 507,
}
WERKZEUG_CODES = {400: Code.BAD_REQUEST, 404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED}


def error_response(code: Code, message: str, status: int | None = None) -> tuple[Response, int]:
    body = {"error": {"code": code.value, "message": message}, "request_id": g.get("request_id", "")}
    return jsonify(body), status or STATUS[code]


def storage_full(err: BaseException) -> bool:
    """ENOSPC/EDQUOT from a file write, SQLite's "database or disk is full", PostgreSQL's disk_full."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    if getattr(err, "sqlstate", None) == "53100":  # psycopg's DiskFull
        return True
    return isinstance(err, sqlite3.OperationalError) and "full" in str(err)


def gallery_unreachable(err: BaseException) -> bool:
    """The shared gallery's PostgreSQL (connection lost, pool exhausted) or Milvus failed: worth a retry.
    Looked up in sys.modules, so that an embedded gallery never imports their clients."""
    kinds = [
        getattr(sys.modules.get(module), name, None)
        for module, name in (
            ("psycopg", "OperationalError"),
            ("psycopg_pool", "PoolTimeout"),
            ("pymilvus", "MilvusException"),
        )
    ]
    kinds = tuple(k for k in kinds if isinstance(k, type))
    return bool(kinds) and isinstance(err, kinds)


def _refused(err: ServiceError):
    return error_response(err.code, err.message)


def _body_too_large(err: RequestEntityTooLarge):
    return error_response(Code.IMAGE_TOO_LARGE, "the request body is larger than the server accepts")


def _werkzeug_error(err: HTTPException):
    code = WERKZEUG_CODES.get(err.code, Code.HTTP_ERROR)
    return error_response(code, err.description or "", err.code or 500)


def _unexpected(err: Exception):
    if storage_full(err):  # the files or rows could not be written: nothing was enrolled
        log.error("storage full", extra={"request_id": g.get("request_id"), "reason": str(err)})
        return error_response(Code.INSUFFICIENT_STORAGE, "the gallery's storage is full; nothing was stored")
    if gallery_unreachable(err):
        log.exception("gallery backend failed", extra={"request_id": g.get("request_id")})
        return error_response(Code.NOT_READY, "the gallery's database or search index did not answer; retry")
    log.exception("unexpected error", extra={"request_id": g.get("request_id")})
    return error_response(Code.INTERNAL_ERROR, "the server failed on this request; it is logged")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ServiceError, _refused)
    app.register_error_handler(RequestEntityTooLarge, _body_too_large)
    app.register_error_handler(HTTPException, _werkzeug_error)
    app.register_error_handler(Exception, _unexpected)
