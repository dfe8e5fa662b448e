"""The HTTP seams on their own, each on a real loopback server (aiohttp's TestServer) with a real store:
the middleware chain around handlers that fail in every way, one route handler mounted alone, and the
access log line. No ai-server is needed: nothing here calls it."""

import asyncio
import errno
import io
import json
import logging
import re
import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from gateway.errors import ApiError
from gateway.http.app import run_services
from gateway.http.context import SERVICES
from gateway.http.middleware import chain
from gateway.http.routes import SEARCH, searches
from gateway.services import Services
from gateway.settings import load_settings
from gateway.telemetry import LogFormatter

ORIGIN = "http://app.test"


def app_with(tmp_path, routes: list[web.RouteDef]) -> web.Application:
    """Only these routes, behind the gateway's real middleware chain and services (the ai-server URL points
    nowhere: a handler that called it would fail)."""
    settings = load_settings(data_dir=tmp_path, ai_server_url="http://127.0.0.1:9", cors_origins=ORIGIN)
    app = web.Application(middlewares=chain(settings.origins))
    app[SERVICES] = Services.from_settings(settings)
    app.add_routes(routes)
    app.cleanup_ctx.append(run_services)
    return app


async def refuse(request):
    raise ApiError(429, "rate_limited", "slow down", retry_after=1.2)


async def crash(request):
    raise RuntimeError("a bug")


async def disk_full(request):
    raise OSError(errno.ENOSPC, "No space left on device")


async def fine(request):
    return web.json_response({"ok": True})


def test_the_middleware_chain_turns_every_failure_into_the_envelope(tmp_path):
    routes = [
        web.get("/refuse", refuse),
        web.get("/crash", crash),
        web.get("/full", disk_full),
        web.get("/ok", fine),
    ]

    async def scenario():
        app = app_with(tmp_path, routes)
        async with TestClient(TestServer(app)) as client:
            answers = {}
            for path in ("/refuse", "/crash", "/full", "/ok", "/nowhere"):
                response = await client.get(path, headers={"X-Request-ID": f"id{path.replace('/', '-')}"})
                answers[path] = (response.status, dict(response.headers), await response.json())
            wrong_method = await client.post("/ok")
            answers["POST /ok"] = (wrong_method.status, dict(wrong_method.headers), await wrong_method.json())
            unsafe = await client.get("/ok", headers={"X-Request-ID": "no spaces allowed", "Origin": ORIGIN})
            answers["unsafe"] = (unsafe.status, dict(unsafe.headers), await unsafe.json())
            failures, _ = await app[SERVICES].store.list_failures(0, 50)
        return answers, failures

    answers, failures = asyncio.run(scenario())
    expected = {
        "/refuse": (429, "rate_limited"),
        "/crash": (500, "internal_error"),
        "/full": (507, "insufficient_storage"),
        "/nowhere": (404, "not_found"),
        "POST /ok": (405, "method_not_allowed"),
    }
    for path, (status, code) in expected.items():
        got_status, headers, body = answers[path]
        assert (got_status, body["error"]["code"]) == (status, code), (path, body)
        assert (
            body["request_id"] == headers["X-Request-ID"] and headers["X-Content-Type-Options"] == "nosniff"
        )
    assert answers["/refuse"][1]["Retry-After"] == "2" and answers["/refuse"][2]["request_id"] == "id-refuse"
    assert "a bug" not in json.dumps(answers["/crash"][2])  # the traceback is logged, not sent
    status, headers, body = answers["unsafe"]
    assert status == 200 and body == {"ok": True} and re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    recorded = {(f["request_id"], f["status"], f["code"], f["path"]) for f in failures}
    assert recorded == {
        ("id-refuse", 429, "rate_limited", "/refuse"),
        ("id-crash", 500, "internal_error", "/crash"),
        ("id-full", 507, "insufficient_storage", "/full"),
        ("id-nowhere", 404, "not_found", "unmatched"),
        (answers["POST /ok"][2]["request_id"], 405, "method_not_allowed", "unmatched"),
    }


def test_the_feedback_handler_alone(tmp_path):
    """POST /v1/searches/{id}/feedback mounted by itself, on a search put straight into the store."""
    search_id = "a" * 32

    async def scenario():
        app = app_with(tmp_path, [web.post(f"/v1/searches/{SEARCH}/feedback", searches.feedback)])
        async with TestClient(TestServer(app)) as client:
            store = app[SERVICES].store
            _, owner = await store.create_key("owner", "search")
            _, stranger = await store.create_key("stranger", "search")
            await store.add_search(stored_search(search_id, (await store.check_key(owner)).key_id))
            url = f"/v1/searches/{search_id}/feedback"
            sent = {"person_id": "p1", "correct": True, "comment": "same person"}
            replies = [
                await client.post(url, json=sent, headers={"X-API-Key": owner}),
                await client.post(url, json={**sent, "person_id": "p9"}, headers={"X-API-Key": owner}),
                await client.post(url, json=sent, headers={"X-API-Key": stranger}),
                await client.post(url, json=sent),
                await client.post(url, data="[1, 2]", headers={"X-API-Key": owner}),
            ]
            answers = [(r.status, await r.json()) for r in replies]
            return answers, await store.get_search(search_id)

    answers, search = asyncio.run(scenario())
    assert answers[0][0] == 201 and answers[0][1]["feedback"]["comment"] == "same person"
    codes = [(status, body["error"]["code"]) for status, body in answers[1:]]
    assert codes == [
        (400, "invalid_parameter"),
        (404, "not_found"),
        (401, "unauthorized"),
        (400, "invalid_request"),
    ]
    assert [(f["person_id"], f["correct"]) for f in search["feedback"]] == [("p1", True)]


def stored_search(search_id: str, key_id: str) -> dict:
    match = {"rank": 1, "person_id": "p1", "face_id": 1, "name": "N", "metadata": {}, "similarity": 0.9}
    return {
        "id": search_id,
        "key_id": key_id,
        "created_at": time.time(),
        "image_sha": "0" * 64,
        "image_type": "image/jpeg",
        "heatmap_sha": None,
        "k": 5,
        "cached": False,
        "result": {"matches": [match]},
    }


def test_the_access_log_is_one_json_object_per_request(tmp_path):
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(LogFormatter())
    logger = logging.getLogger("gateway")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)

    async def scenario():
        async with TestClient(TestServer(app_with(tmp_path, [web.get("/refuse", refuse)]))) as client:
            await client.get("/refuse", headers={"X-Request-ID": "logged-1"})

    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    entries = [json.loads(line) for line in lines.getvalue().splitlines()]
    (access,) = [e for e in entries if e["msg"] == "request"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access.pop("ts"))
    assert isinstance(access.pop("ms"), float)
    assert access == {
        "level": "info",
        "logger": "gateway",
        "msg": "request",
        "request_id": "logged-1",
        "method": "GET",
        "path": "/refuse",
        "status": 429,
        "key_id": None,
    }
