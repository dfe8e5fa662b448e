"""For operators and integrators: the failure log, health and readiness, metrics, the OpenAPI contract and a
plain HTML index of it."""

import json
import os
from functools import cache
from html import escape
from importlib import resources

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...errors import ApiError
from ..auth import authorize
from ..context import request_id, services
from ..forms import int_param


async def failures(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    offset = int_param(request.query, "offset", 0, 0, 10**9)
    limit = int_param(request.query, "limit", 50, 1, 500)
    wanted = request.query.get("request_id") or None
    rows, total = await services(request).store.list_failures(offset, limit, wanted)
    return web.json_response({"failures": rows, "total": total, "offset": offset, "limit": limit})


async def healthz(request: web.Request) -> web.Response:
    """Alive: answers whatever the ai-server and the database are doing."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: storage writable and the ai-server ready. Public, so it asks the ai-server at most
    once a second, outside the circuit breaker, and says nothing about the gallery."""
    gateway = services(request)
    if not await gateway.store.writable() or not os.access(gateway.images.root, os.W_OK):
        raise ApiError(503, "not_ready", "the gateway's storage is not writable")
    ready = await gateway.upstream.readiness(request_id(request))
    if ready is None:
        raise ApiError(503, "not_ready", "the recognition service is not ready")
    return web.json_response({"status": "ready", "ai_server": {"model": ready["model"]}, "storage": "ok"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@cache
def spec_text() -> str:
    return resources.files("gateway").joinpath("openapi.json").read_text()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=spec_text(), content_type="application/json")


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_page(json.loads(spec_text())), content_type="text/html")


def docs_page(spec: dict) -> str:
    """A plain HTML index of the API from the OpenAPI file (no scripts, nothing fetched)."""
    rows = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{escape(path)}</code></td>"
                f"<td>{escape(op.get('summary', ''))}</td></tr>"
            )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(spec['info']['title'])}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td{padding:.2em .6em}</style>"
        f"</head><body><h1>{escape(spec['info']['title'])}</h1><p>{escape(spec['info']['description'])}</p>"
        "<p>Machine-readable contract: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>"
        f"<table>{''.join(rows)}</table></body></html>"
    )
