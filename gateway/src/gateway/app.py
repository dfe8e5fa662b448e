"""The public HTTP API (aiohttp): match, stored searches and feedback, persons, health, docs, web app.

A /match request flows: API key and rate limit -> multipart read with size limits -> image checks (magic
bytes, pixels) -> versions from the ai-server -> cache or one ai-server call inside a bounded slot ->
image and search stored -> enriched response. One middleware gives every request its id (propagated to
the ai-server and the logs), turns every refusal into the error envelope, logs, counts, and records
refusals in the failure log.
"""

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from html import escape
from importlib import resources

import aiohttp
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import media, telemetry
from .cache import ResultCache
from .errors import ApiError, storage_full
from .limits import RateLimiter, Slots
from .settings import Settings
from .store import Store
from .upstream import Upstream

log = logging.getLogger("gateway")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PERSON = r"{person_id:[A-Za-z0-9_-]{1,64}}"
FACE = r"{face_id:\d{1,12}}"
SEARCH = r"{search_id:[0-9a-f]{32}}"
IMAGE_FIELDS = ("image", "images")
MAX_FIELD_BYTES = 32 * 1024
MAX_PARTS = 16
MAX_ENROL_IMAGES = 8
MAX_COMMENT = 2000
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


@dataclass
class Caller:
    key_id: str
    role: str


class Gateway:
    """Everything a handler needs, made once per app."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = Store(settings.database_url)
        self.images = media.ImageStore(settings.data_dir / "images")
        self.upstream = Upstream(settings, self.store.add_failure)
        self.cache = ResultCache(settings.cache_entries)
        self.slots = Slots(settings.max_inflight, settings.max_queue, settings.queue_timeout_s)
        self.limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
        self.in_use: Counter[str] = Counter()  # images being written for a search not yet stored

    # -- auth ----------------------------------------------------------------------------------------------
    def authorize(self, request: web.Request, role: str) -> Caller:
        token = request.headers.get("X-API-Key", "")
        found = self.store.check_key(token) if token else None
        if found is None:
            raise ApiError(401, "unauthorized", "send a valid API key in the X-API-Key header")
        caller = Caller(*found)
        request["key_id"] = caller.key_id
        if role == "admin" and caller.role != "admin":
            raise ApiError(403, "forbidden", "this needs an admin API key")
        self.limiter.check(caller.key_id)
        return caller

    # -- input ---------------------------------------------------------------------------------------------
    async def read_form(self, request: web.Request, max_files: int) -> tuple[dict[str, str], list[bytes]]:
        """Text fields and image files of a multipart body, each file checked as it arrives."""
        if request.content_type != "multipart/form-data":
            raise ApiError(400, "invalid_request", "send multipart/form-data with the photo in field 'image'")
        fields: dict[str, str] = {}
        files: list[bytes] = []
        try:
            async for part in await request.multipart():
                if len(fields) + len(files) == MAX_PARTS:
                    raise ApiError(400, "invalid_request", f"at most {MAX_PARTS} multipart parts")
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise ApiError(400, "invalid_request", "nested or unnamed multipart parts are refused")
                if part.name in IMAGE_FIELDS:
                    if len(files) == max_files:
                        many = "exactly one image" if max_files == 1 else f"at most {max_files} images"
                        raise ApiError(400, "invalid_request", f"send {many}")
                    limit = self.settings.max_image_bytes
                    files.append(await self._read_part(part, limit, "image_too_large"))
                elif part.filename is not None:
                    raise ApiError(400, "invalid_request", f"unexpected file field '{part.name[:40]}'")
                else:
                    raw = await self._read_part(part, MAX_FIELD_BYTES, "invalid_parameter")
                    fields[part.name] = raw.decode("utf-8", errors="replace")
        except (ValueError, AssertionError, aiohttp.ClientPayloadError, HttpProcessingError) as err:
            raise ApiError(400, "invalid_request", f"the multipart body cannot be read: {err}") from None
        except ConnectionResetError:  # the client left mid-body: its mistake, not a 500 in the metrics
            raise ApiError(400, "invalid_request", "the connection closed before the body ended") from None
        if not files:
            raise ApiError(400, "missing_field", "send the photo as a multipart file field 'image'")
        for data in files:
            media.check_image(data, self.settings.max_image_bytes, self.settings.max_pixels)
        return fields, files

    @staticmethod
    async def _read_part(part: BodyPartReader, limit: int, code: str) -> bytes:
        chunks, size = [], 0
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > limit:
                status = 413 if code == "image_too_large" else 400
                raise ApiError(status, code, f"a part of the body is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def int_param(values, name: str, default: int, low: int, high: int) -> int:
        raw = values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "invalid_parameter", f"{name} must be an integer") from None
        if not low <= value <= high:
            raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}")
        return value

    @staticmethod
    def bool_param(values, name: str) -> bool:
        raw = (values.get(name) or "false").lower()
        if raw in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw in ("1", "true", "yes", "on")
        raise ApiError(400, "invalid_parameter", f"{name} must be true or false")

    # -- upstream ------------------------------------------------------------------------------------------
    @staticmethod
    def passthrough(reply) -> ApiError:
        """The ai-server's own refusal (bad image, no face, not found) with its status and code."""
        try:
            error = reply.json()["error"]
            return ApiError(reply.status, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
            return ApiError(502, "upstream_error", f"the recognition service answered {reply.status}")

    async def versions(self, request_id: str) -> tuple[str, int]:
        reply = await self.upstream.call("GET", "/readyz", request_id, timeout_s=5)
        if reply.status != 200:
            raise self.passthrough(reply)
        ready = reply.json()
        return ready["model"]["version"], ready["gallery"]["version"]

    def forget_person(self, person_id: str, face_id: int | None = None) -> int:
        self.cache.clear()
        return self.store.redact_person(person_id, face_id)

    # -- storage -------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def image_on_disk(self, data: bytes, sha: str):
        """Writes an image (in a thread, fsynced) and marks it in use until the block ends, so the purge
        leaves it alone; if no stored search refers to it by then, it is removed again. The query photo
        is written while the ai-server works, which hides the fsync."""
        self.in_use[sha] += 1
        writing = asyncio.ensure_future(asyncio.to_thread(self.images.put, data))
        try:
            yield writing
        finally:
            try:
                await writing
            finally:
                self.in_use[sha] -= 1
                if not self.in_use[sha]:
                    del self.in_use[sha]
                    if not self.store.image_referenced(sha):
                        self.images.delete(sha)

    async def save_search(self, caller: Caller, writing, kind: str, k: int, result: dict, cached: bool):
        search = {
            "id": uuid.uuid4().hex,
            "key_id": caller.key_id,
            "created_at": time.time(),
            "image_sha": await writing,
            "image_type": media.TYPES[kind],
            "heatmap_sha": None,
            "k": k,
            "cached": cached,
            "result": {
                "matches": [
                    {**m, "thumbnail_url": f"/v1/persons/{m['person_id']}/faces/{m['face_id']}/thumbnail"}
                    for m in result["matches"]
                ],
                **{key: result[key] for key in ("no_match", "threshold", "face", "model", "gallery")},
            },
        }
        if not result.get("explanation"):
            self.store.add_search(search)
            return search
        png = base64.b64decode(result["explanation"]["heatmap_png"])
        async with self.image_on_disk(png, media.sha256(png)) as heatmap:
            search["heatmap_sha"] = await heatmap
            self.store.add_search(search)
        return search

    async def purge(self) -> None:
        """Retention: searches, their images and failure records older than the retention period; and
        images no search refers to (a crash between writing a file and storing its search), after 1 h."""
        cutoff = time.time() - self.settings.retention_days * 86400
        for sha in self.store.purge_searches(cutoff):
            if sha not in self.in_use:
                self.images.delete(sha)
        stale = await asyncio.to_thread(self.images.stale, 3600)
        keep = self.store.referenced_images()  # read after the listing: includes searches stored meanwhile
        orphans = [p for p in stale if p.name not in keep and p.name not in self.in_use]
        for path in orphans:
            path.unlink(missing_ok=True)
        log.info("retention purge", extra={"cutoff": cutoff, "orphans_removed": len(orphans)})


GATEWAY = web.AppKey("gateway", Gateway)


def search_view(search: dict) -> dict:
    out = {
        key: search[key] for key in ("id", "created_at", "key_id", "k", "cached", "result") if key in search
    }
    out["image_url"] = f"/v1/searches/{search['id']}/image"
    out["heatmap_url"] = f"/v1/searches/{search['id']}/heatmap" if search["heatmap_sha"] else None
    if "feedback" in search:
        out["feedback"] = search["feedback"]
    return out


def error_body(code: str, message: str, request_id: str) -> dict:
    return {"error": {"code": code, "message": message}, "request_id": request_id}


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    telemetry.configure_logging(settings.log_level)
    gw = Gateway(settings)
    origins = settings.origins
    routes = web.RouteTableDef()

    def cors(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin", "").rstrip("/")
        if origin and ("*" in origins or origin in origins):
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Retry-After"
            response.headers["Vary"] = "Origin"

    @web.middleware
    async def frame(request: web.Request, handler):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        request["request_id"] = request_id
        started = time.perf_counter()
        try:
            if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
                response = web.Response(status=204)
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = "X-API-Key, Content-Type, X-Request-ID"
                response.headers["Access-Control-Max-Age"] = "600"
            else:
                response = await handler(request)
        except ApiError as err:
            response = web.json_response(error_body(err.code, err.message, request_id), status=err.status)
            if err.retry_after is not None:
                response.headers["Retry-After"] = str(max(1, round(err.retry_after + 0.49)))
        except web.HTTPException as err:
            code = HTTP_CODES.get(err.status, "http_error")
            response = web.json_response(error_body(code, err.reason, request_id), status=err.status)
        except Exception as err:
            if storage_full(err):
                log.error("storage full", extra={"request_id": request_id, "reason": str(err)})
                message = "the server's storage is full; nothing was stored, try again later"
                body = error_body("insufficient_storage", message, request_id)
                response = web.json_response(body, status=507)
            else:
                log.exception("unexpected error", extra={"request_id": request_id})
                message = "the gateway failed on this request; it is logged"
                response = web.json_response(error_body("internal_error", message, request_id), status=500)
        response.headers["X-Request-ID"] = request_id
        response.headers["X-Content-Type-Options"] = "nosniff"  # stored photos are served as what they are
        cors(request, response)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        seconds = time.perf_counter() - started
        telemetry.REQUESTS.labels(route, str(response.status)).inc()
        telemetry.REQUEST_SECONDS.labels(route).observe(seconds)
        entry = {
            "request_id": request_id,
            "method": request.method,
            "path": route,  # the route, not the URL: no ids in logs
            "status": response.status,
            "ms": round(1000 * seconds, 1),
            "key_id": request.get("key_id"),
        }
        if route not in ("/healthz", "/readyz", "/metrics"):
            log.info("request", extra=entry)
        if response.status >= 400 and route != "/{tail}":
            body = getattr(response, "body", b"") or b"{}"
            try:
                error = json.loads(body)["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": ""}
            entry.update(ts=time.time(), kind="rejected", code=error["code"], reason=error["message"])
            try:
                gw.store.add_failure(entry)
            except Exception as err:  # a full disk must not turn the answer into a 500
                if not storage_full(err):
                    raise
                log.error("failure not recorded: storage full", extra={"request_id": request_id})
        return response

    # -- match -------------------------------------------------------------------------------------------
    async def match(request: web.Request) -> web.Response:
        caller = gw.authorize(request, "search")
        request_id = request["request_id"]
        started = time.perf_counter()
        fields, (data,) = await gw.read_form(request, max_files=1)
        k = gw.int_param(fields, "k", 5, 1, settings.max_k)
        explain = gw.bool_param(fields, "explain")
        sha = media.sha256(data)
        async with gw.image_on_disk(data, sha) as writing:
            search, timings = await match_and_store(request, caller, writing, data, sha, k, explain)
        timings["total"] = time.perf_counter() - started
        view = search_view(search)
        body = {
            "search_id": search["id"],
            "request_id": request_id,
            "k": k,
            "cached": search["cached"],
            **view["result"],
            "image_url": view["image_url"],
            "heatmap_url": view["heatmap_url"],
            "timings_ms": {name: round(1000 * s, 2) for name, s in timings.items()},
        }
        if search.get("explanation"):
            body["explanation"] = search["explanation"]
        return web.json_response(body)

    async def match_and_store(request, caller, writing, data, sha, k, explain):
        """Cache (checked against the current versions) or the ai-server in a bounded slot -> stored."""
        request_id, kind = request["request_id"], media.sniff(data)
        timings, result = {}, None
        cached = gw.cache.get((sha, k, explain))
        if cached is not None:  # seen before: still valid only at the same model and gallery versions
            t = time.perf_counter()
            if await gw.versions(request_id) == cached[0]:
                result = cached[1]
            timings["versions"] = time.perf_counter() - t
        telemetry.CACHE.labels("miss" if result is None else "hit").inc()
        hit = result is not None
        if result is None:
            form = aiohttp.FormData()
            form.add_field("image", data, filename=f"upload.{kind}", content_type=media.TYPES[kind])
            form.add_field("k", str(k))
            form.add_field("explain", "true" if explain else "false")
            t = time.perf_counter()
            async with gw.slots.slot():
                reply = await gw.upstream.call("POST", "/v1/match", request_id, data=form)
            timings["ai_server"] = time.perf_counter() - t
            if reply.status != 200:
                raise gw.passthrough(reply)
            result = reply.json()
            versions = (result["model"]["version"], result["gallery"]["version"])
            gw.cache.put((sha, k, explain), versions, result)
        t = time.perf_counter()
        search = await gw.save_search(caller, writing, kind, k, result, hit)
        timings["store"] = time.perf_counter() - t
        if result.get("explanation"):
            search["explanation"] = result["explanation"]
        return search, timings

    routes.post("/v1/match")(match)
    routes.post("/match")(match)

    # -- searches and feedback -----------------------------------------------------------------------------
    def own_search(request: web.Request, caller: Caller) -> dict:
        search = gw.store.get_search(request.match_info["search_id"])
        if search is None or (caller.role != "admin" and search["key_id"] != caller.key_id):
            raise ApiError(404, "not_found", "no such search")
        return search

    @routes.get("/v1/searches")
    async def list_searches(request: web.Request) -> web.Response:
        caller = gw.authorize(request, "search")
        offset = gw.int_param(request.query, "offset", 0, 0, 10**9)
        limit = gw.int_param(request.query, "limit", 20, 1, 100)
        mine = caller.key_id if caller.role != "admin" or request.query.get("mine") == "true" else None
        searches, total = gw.store.list_searches(mine, offset, limit)
        return web.json_response(
            {"searches": [search_view(s) for s in searches], "total": total, "offset": offset, "limit": limit}
        )

    @routes.get(f"/v1/searches/{SEARCH}")
    async def get_search(request: web.Request) -> web.Response:
        caller = gw.authorize(request, "search")
        return web.json_response({"search": search_view(own_search(request, caller))})

    @routes.get(f"/v1/searches/{SEARCH}/image")
    async def search_image(request: web.Request) -> web.StreamResponse:
        search = own_search(request, gw.authorize(request, "search"))
        return image_file(search["image_sha"], search["image_type"])

    @routes.get(f"/v1/searches/{SEARCH}/heatmap")
    async def search_heatmap(request: web.Request) -> web.StreamResponse:
        search = own_search(request, gw.authorize(request, "search"))
        if not search["heatmap_sha"]:
            raise ApiError(404, "not_found", "this search was made without explain=true: no heatmap")
        return image_file(search["heatmap_sha"], "image/png")

    def image_file(sha: str, content_type: str) -> web.StreamResponse:
        path = gw.images.path(sha)
        if not path.exists():
            raise ApiError(404, "not_found", "the image is no longer stored")
        headers = {"Content-Type": content_type, "Cache-Control": "private, max-age=3600"}
        return web.FileResponse(path, headers=headers)

    @routes.post(f"/v1/searches/{SEARCH}/feedback")
    async def feedback(request: web.Request) -> web.Response:
        caller = gw.authorize(request, "search")
        search = own_search(request, caller)
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "invalid_request", "send a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "send a JSON object")
        person_id, correct, comment = body.get("person_id"), body.get("correct"), body.get("comment", "")
        if not isinstance(person_id, str) or not isinstance(correct, bool):
            raise ApiError(400, "missing_field", "person_id (a string) and correct (true/false) are required")
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise ApiError(400, "invalid_parameter", f"comment: a string of at most {MAX_COMMENT} characters")
        if person_id not in {m["person_id"] for m in search["result"]["matches"]}:
            raise ApiError(400, "invalid_parameter", "person_id is not one of this search's matches")
        entry = gw.store.add_feedback(search["id"], caller.key_id, person_id, correct, comment)
        return web.json_response({"feedback": entry}, status=201)

    # -- persons: the ai-server's enrolment API behind the gateway's checks ----------------------------
    async def forward(request: web.Request, method: str, path: str, data=None) -> web.Response:
        reply = await gw.upstream.call(method, path, request["request_id"], data=data, params=request.query)
        if reply.status >= 400:
            raise gw.passthrough(reply)
        return web.Response(status=reply.status, body=reply.body, content_type="application/json")

    async def enrol(request: web.Request, path: str) -> web.Response:
        gw.authorize(request, "admin")
        fields, files = await gw.read_form(request, max_files=MAX_ENROL_IMAGES)
        form = aiohttp.FormData()
        for name in ("name", "metadata", "align"):
            if name in fields:
                form.add_field(name, fields[name])
        for index, data in enumerate(files):  # server-chosen names: the client's never go further
            kind = media.sniff(data)
            form.add_field("image", data, filename=f"{index}.{kind}", content_type=media.TYPES[kind])
        async with gw.slots.slot():
            response = await forward(request, "POST", path, form)
        gw.cache.clear()
        return response

    @routes.post("/v1/persons")
    async def create_person(request: web.Request) -> web.Response:
        return await enrol(request, "/v1/persons")

    @routes.post(f"/v1/persons/{PERSON}/faces")
    async def add_faces(request: web.Request) -> web.Response:
        return await enrol(request, f"/v1/persons/{request.match_info['person_id']}/faces")

    @routes.get("/v1/persons")
    async def list_persons(request: web.Request) -> web.Response:
        gw.authorize(request, "admin")
        return await forward(request, "GET", "/v1/persons")

    @routes.get(f"/v1/persons/{PERSON}")
    async def get_person(request: web.Request) -> web.Response:
        gw.authorize(request, "admin")
        return await forward(request, "GET", f"/v1/persons/{request.match_info['person_id']}")

    @routes.delete(f"/v1/persons/{PERSON}")
    async def delete_person(request: web.Request) -> web.Response:
        gw.authorize(request, "admin")
        person_id = request.match_info["person_id"]
        response = await forward(request, "DELETE", f"/v1/persons/{person_id}")
        body = {**json.loads(response.body), "searches_redacted": gw.forget_person(person_id)}
        return web.json_response(body)

    @routes.delete(f"/v1/persons/{PERSON}/faces/{FACE}")
    async def delete_face(request: web.Request) -> web.Response:
        gw.authorize(request, "admin")
        person_id, face_id = request.match_info["person_id"], int(request.match_info["face_id"])
        response = await forward(request, "DELETE", f"/v1/persons/{person_id}/faces/{face_id}")
        body = {**json.loads(response.body), "searches_redacted": gw.forget_person(person_id, face_id)}
        return web.json_response(body)

    @routes.get(f"/v1/persons/{PERSON}/faces/{FACE}/thumbnail")
    async def thumbnail(request: web.Request) -> web.Response:
        gw.authorize(request, "search")
        person_id, face_id = request.match_info["person_id"], request.match_info["face_id"]
        path = f"/v1/persons/{person_id}/faces/{face_id}/thumbnail"
        reply = await gw.upstream.call("GET", path, request["request_id"])
        if reply.status != 200:
            raise gw.passthrough(reply)
        headers = {"Cache-Control": "private, max-age=3600"}
        return web.Response(body=reply.body, content_type="image/jpeg", headers=headers)

    # -- operations --------------------------------------------------------------------------------------
    @routes.get("/v1/admin/failures")
    async def failures(request: web.Request) -> web.Response:
        gw.authorize(request, "admin")
        offset = gw.int_param(request.query, "offset", 0, 0, 10**9)
        limit = gw.int_param(request.query, "limit", 50, 1, 500)
        rows, total = gw.store.list_failures(offset, limit, request.query.get("request_id") or None)
        return web.json_response({"failures": rows, "total": total, "offset": offset, "limit": limit})

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/readyz")
    async def readyz(request: web.Request) -> web.Response:
        if not gw.store.writable() or not os.access(gw.images.root, os.W_OK):
            raise ApiError(503, "not_ready", "the gateway's storage is not writable")
        reply = await gw.upstream.call("GET", "/readyz", request["request_id"], timeout_s=5)
        if reply.status != 200:
            raise ApiError(503, "not_ready", "the recognition service is not ready")
        ai = {key: reply.json()[key] for key in ("model", "gallery")}
        return web.json_response({"status": "ready", "ai_server": ai, "storage": "ok"})

    @routes.get("/metrics")
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    spec_text = resources.files("gateway").joinpath("openapi.json").read_text()

    @routes.get("/openapi.json")
    async def openapi(request: web.Request) -> web.Response:
        return web.Response(text=spec_text, content_type="application/json")

    @routes.get("/docs")
    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=docs_page(json.loads(spec_text)), content_type="text/html")

    # -- the web app: files of GATEWAY_WEB_DIR, index.html for any other path (client-side routes) ------
    web_root = settings.web_root.resolve() if settings.web_root else None

    @routes.get(r"/{tail:(?!v1/|v1$).*}")  # unknown /v1 paths stay JSON 404s
    async def static(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if web_root is None:
            raise ApiError(404, "not_found", f"no route {request.path}")
        path = (web_root / tail).resolve()
        if not path.is_relative_to(web_root) or not path.is_file():
            path = web_root / "index.html"
        if not path.is_file():
            raise ApiError(404, "not_found", f"no route {request.path}")
        return web.FileResponse(path)

    app = web.Application(middlewares=[frame], client_max_size=MAX_FIELD_BYTES)
    app.add_routes(routes)
    app[GATEWAY] = gw

    async def lifecycle(app: web.Application):
        await gw.upstream.start()

        async def retention():
            while True:
                try:
                    await gw.purge()
                except Exception:
                    log.exception("retention purge failed")
                await asyncio.sleep(settings.purge_interval_s)

        task = asyncio.create_task(retention())
        yield
        task.cancel()
        await gw.upstream.close()

    app.cleanup_ctx.append(lifecycle)
    return app


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


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None, print=None)
