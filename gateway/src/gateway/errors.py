"""The one error type: every refusal becomes `{"error": {"code", "message"}, "request_id"}`."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after
