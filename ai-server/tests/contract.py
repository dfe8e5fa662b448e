"""Every ai-server response a test sees is checked against the server's own OpenAPI file
(`ai_server/serving/openapi.json`), as the gateway's tests check the gateway's: the status must be documented
for the operation, the media type too, and a JSON body must validate against the documented schema with a
full JSON Schema 2020-12 validator (OpenAPI 3.1's dialect). A request outside the document (an unknown path,
a method the path does not have) must still answer the documented error envelope."""

import json
from importlib import resources

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from testkit import path_template

SPEC = json.loads(resources.files("ai_server.serving").joinpath("openapi.json").read_text())
SPEC_URI = "urn:ai-server:openapi.json"
REGISTRY = Registry().with_resource(SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012))
ERROR_SCHEMA = "#/components/schemas/Error"


def spec_path(path: str) -> str | None:
    """The OpenAPI path template a concrete path belongs to (None: not in the document)."""
    return path_template(SPEC, path)


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validate(body, pointer: str) -> None:
    """`body` against the schema at `pointer` in the document; raises jsonschema.ValidationError."""
    validator = Draft202012Validator(
        {"$ref": SPEC_URI + pointer}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(body)


def checked(response):
    """A `requests` response, after checking it (for tests against a running server)."""
    path = response.request.path_url
    media_type = response.headers.get("Content-Type", "").split(";")[0]
    check(response.request.method, path, response.status_code, media_type, response.content)
    return response


def check(method: str, path: str, status: int, media_type: str, body: bytes) -> None:
    """Raise AssertionError (or jsonschema.ValidationError) if the response breaks the document."""
    template = spec_path(path)
    operation = SPEC["paths"][template].get(method.lower()) if template else None
    if operation is None:
        assert status >= 400, f"{method} {path} is not in the OpenAPI file but answered {status}"
        validate(json.loads(body), ERROR_SCHEMA)
        return
    assert str(status) in operation["responses"], f"{method} {path} answered {status}: not documented"
    documented = operation["responses"][str(status)]
    where = ["paths", template, method.lower(), "responses", str(status)]
    if "$ref" in documented:  # a shared response: #/components/responses/<name>
        where = documented["$ref"].removeprefix("#/").split("/")
        documented = SPEC["components"]["responses"][where[-1]]
    content = documented.get("content")
    if content is None:  # documented without a body schema (/healthz, /readyz 200, /openapi.json)
        return
    assert media_type in content, f"{method} {path}: {media_type} is not documented for {status}"
    if media_type == "application/json" and "schema" in content[media_type]:
        validate(json.loads(body), _pointer(*where, "content", media_type, "schema"))
