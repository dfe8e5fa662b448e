"""The service's one error type. Everything the gateway refuses (and every refusal of the ai-server it passes
on) is an ApiError; the HTTP layer turns it, and any other exception, into the JSON error envelope in one
place (`http/middleware.py`, `error_envelope`)."""

import errno


class ApiError(Exception):
    """A refusal with its HTTP status, a stable machine-readable code and a message for people;
    `retry_after` (seconds) when trying again later can succeed."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def storage_full(err: BaseException) -> bool:
    """A full disk (or quota) under the data directory: a clean 507 for the client, not a 500. The stores
    report a full database as this same OSError, so one test covers files and databases."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
