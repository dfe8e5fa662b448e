"""A small Python client for integrators (built on requests): match, enrol and delete, with typed errors.

    from gateway.client import Client, Unavailable
    client = Client("http://localhost:8080", api_key="gw_...")
    result = client.match("photo.jpg", k=5)
    for m in result["matches"]:
        print(m["rank"], m["name"], m["similarity"], m["confidence"])

Every refusal raises a subclass of GatewayError carrying the envelope's code, message and request id;
RateLimited and Unavailable also carry `retry_after` (seconds), so a caller can wait and try again.
"""

import json
from pathlib import Path

import requests


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str, request_id: str, retry_after: float | None):
        super().__init__(f"{status} {code}: {message} (request {request_id})")
        self.status, self.code, self.message = status, code, message
        self.request_id, self.retry_after = request_id, retry_after


class InvalidRequest(GatewayError):
    """400, 413, 415, 422: the photo or a parameter; fix the request, do not retry it as is."""


class Unauthorized(GatewayError):
    """401 (no, unknown, revoked or expired API key) or 403 (the key's role may not do this)."""


class NotFound(GatewayError):
    """404."""


class RateLimited(GatewayError):
    """429: this key's rate limit or quota (`code`: rate_limited, quota_exceeded); wait `retry_after`."""


class Unavailable(GatewayError):
    """502/503: the recognition service is down or the gateway is overloaded; wait `retry_after`."""


def _error_class(status: int) -> type[GatewayError]:
    if status in (401, 403):
        return Unauthorized
    if status == 404:
        return NotFound
    if status == 429:
        return RateLimited
    if status >= 500:
        return Unavailable
    return InvalidRequest


class Client:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 60.0):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = api_key
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, self.base + path, timeout=self.timeout_s, **kwargs)
        if response.ok:
            return response.json()
        try:
            body = response.json()
            code, message = body["error"]["code"], body["error"]["message"]
            request_id = body.get("request_id", "")
        except (ValueError, KeyError, TypeError):
            code, message, request_id = "http_error", response.text[:200], ""
        retry = response.headers.get("Retry-After")
        raise _error_class(response.status_code)(
            response.status_code, code, message, request_id, float(retry) if retry else None
        )

    def match(self, path: str | Path, k: int = 5, explain: bool = False) -> dict:
        """The k most similar enrolled persons for the face in the photo at `path` (a stored search)."""
        image = Path(path).read_bytes()
        form = {"k": str(k), "explain": "true" if explain else "false"}
        return self._call("POST", "/v1/match", data=form, files={"image": ("photo", image)})

    def enrol(self, name: str, paths: list[str | Path], metadata: dict | None = None) -> dict:
        """Enrol a person from up to 8 photos (an enrol or admin key); the person and any skipped photos."""
        files = [("image", (f"{i}", Path(p).read_bytes())) for i, p in enumerate(paths)]
        form = {"name": name, "metadata": json.dumps(metadata or {})}
        return self._call("POST", "/v1/persons", data=form, files=files)

    def delete(self, person_id: str) -> dict:
        """Erase a person (an enrol or admin key): the answer reports what was removed; repeating it
        after a timeout is safe (`already_deleted`)."""
        return self._call("DELETE", f"/v1/persons/{person_id}")

    def delete_search(self, search_id: str) -> dict:
        """Erase one of this key's stored searches: record, feedback, photo and heatmap."""
        return self._call("DELETE", f"/v1/searches/{search_id}")
