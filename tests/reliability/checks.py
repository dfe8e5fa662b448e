"""What every response must satisfy, whatever was sent: no 5xx (but the documented 503/507), errors in
the one JSON envelope, and nothing internal in the body (tracebacks, source paths, the ai-server's
address, the data directories)."""

import re

import requests

LEAKS = re.compile(r'Traceback|File "|site-packages|\.py", line|127\.0\.0\.1|localhost|/tmp/|/work/')


def assert_clean(response: requests.Response, allowed_5xx: tuple = ()) -> None:
    status = response.status_code
    assert status < 500 or status in allowed_5xx, f"{status}: {response.text[:300]}"
    body = response.text if "json" in response.headers.get("Content-Type", "") else ""
    leak = LEAKS.search(body)
    assert leak is None, f"internal detail {leak.group(0)!r} in a {status} body: {body[:300]}"
    if status >= 400:
        payload = response.json()
        assert set(payload) == {"error", "request_id"}, payload
        assert payload["error"]["code"] and payload["error"]["message"], payload
        assert payload["request_id"] == response.headers["X-Request-ID"]


def code(response: requests.Response) -> str | None:
    return response.json()["error"]["code"] if response.status_code >= 400 else None


def server_errors(metrics_text: str, counter: str) -> dict:
    """{(route, status): count} of 5xx answers in a Prometheus text page."""
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith(counter + "{") and re.search(r'status="5\d\d"', line):
            count = float(line.rsplit(" ", 1)[1])
            if count:
                out[line.split("{", 1)[1].split("}")[0]] = count
    return out
