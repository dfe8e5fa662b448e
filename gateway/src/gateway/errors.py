"""The one error type: every refusal becomes `{"error": {"code", "message"}, "request_id"}`."""

import errno
import sqlite3


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def storage_full(err: BaseException) -> bool:
    """A full disk (or quota) under the data directory: a clean 507 for the client, not a 500."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, sqlite3.OperationalError) and "full" in str(err)
