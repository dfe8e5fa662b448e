"""The one error type of the service: a `ServiceError` carries a `Code` and a message, never an HTTP status.

Why one type with a code rather than an exception class per failure: decoding, the face pipeline and the
gallery all refuse things for reasons the caller must be told about (a truncated JPEG, no face, an unknown
person), and they are used by the HTTP API, the command line and the bulk enrolment alike. A code says
*what* went wrong in the caller's terms and is the same word the API returns in
`{"error": {"code", "message"}, "request_id"}`; which HTTP status that is is decided in exactly one place,
the table in `serving/http/errors.py`, so storage and decoding code never learns about HTTP. The codes are
the `Error.code` enum of `openapi.json` (a test keeps the two and the status table in step).
"""

from enum import StrEnum


class Code(StrEnum):
    """Why a request was refused, as the API's clients see it."""

    INVALID_IMAGE = "invalid_image"
    MISSING_FIELD = "missing_field"
    INVALID_PARAMETER = "invalid_parameter"
    INVALID_REQUEST = "invalid_request"
    IMAGE_TOO_LARGE = "image_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NO_FACE_FOUND = "no_face_found"
    NOT_READY = "not_ready"
    NOT_FOUND = "not_found"
    UNKNOWN_MODEL = "unknown_model"
    MODEL_MISMATCH = "model_mismatch"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    BAD_REQUEST = "bad_request"
    HTTP_ERROR = "http_error"
    INSUFFICIENT_STORAGE = "insufficient_storage"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN_HOST = "forbidden_host"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"
    INTERNAL_ERROR = "internal_error"


class ServiceError(Exception):
    """A refusal the caller can act on: `code` for programs, `message` for people."""

    def __init__(self, code: Code, message: str):
        super().__init__(message)
        self.code, self.message = Code(code), message

    def as_dict(self) -> dict:
        """The `error` object of the API's envelope (also used for per-photo `skipped` entries)."""
        return {"code": self.code.value, "message": self.message}
