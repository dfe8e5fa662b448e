"""The gateway's public API as its tests and the reliability suite call it: `Api` sends requests with an
API key and checks every response against the gateway's OpenAPI file (read from the checkout, not
imported): the path, method and status must be documented, the media type too, and a JSON body must
validate against the documented schema."""

import json

import jsonschema
import requests

from .openapi import path_template
from .paths import REPO

SPEC = json.loads((REPO / "gateway/src/gateway/openapi.json").read_text())


def check_contract(method: str, path: str, response: requests.Response) -> None:
    template = path_template(SPEC, path)
    assert template, f"{path} is not in the OpenAPI file"
    operation = SPEC["paths"][template].get(method.lower())
    assert operation, f"{method} {path} is not in the OpenAPI file"
    documented = operation["responses"].get(str(response.status_code))
    assert documented, f"{method} {path} answered {response.status_code}, which is not documented"
    if "$ref" in documented:
        documented = SPEC["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    content = documented.get("content", {})
    media_type = response.headers.get("Content-Type", "").split(";")[0]
    assert media_type in content, (
        f"{method} {path}: {media_type} is not documented for {response.status_code}"
    )
    schema = content[media_type].get("schema")
    if media_type == "application/json" and schema:
        jsonschema.validate(response.json(), {**schema, "components": SPEC["components"]})


class Api:
    """requests with an API key and the contract check on every response."""

    def __init__(self, url: str, key: str | None = None):
        self.url, self.key = url, key

    def __call__(self, method: str, path: str, key: str | None = "default", **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        key = self.key if key == "default" else key
        if key:
            headers["X-API-Key"] = key
        response = requests.request(method, self.url + path, headers=headers, timeout=120, **kwargs)
        check_contract(method, path, response)
        return response

    def match(self, image: bytes, key="default", filename: str = "q.jpg", headers=None, **fields):
        files = {"image": (filename, image)}
        return self("POST", "/v1/match", key=key, data=fields, files=files, headers=headers or {})


def error_code(response: requests.Response) -> str:
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body["error"]["code"]
