"""The ai-server HTTP API (Flask): match, enrol, browse and delete persons, embed; health and metrics.

A /match request flows decode -> detect -> align -> heatmap + embedding (one batched pass) -> search ->
respond. Every error has one JSON shape, `{"error": {"code", "message"}, "request_id"}`, with a 4xx for
anything the caller can fix; models and the gallery load in the background at start, and /readyz says
503 until they are there, so no request ever pays for loading.
"""

import base64
import errno
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from importlib import resources

import numpy as np
from flask import Flask, Response, g, jsonify, request, send_file
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import telemetry
from .engine import Engine, Photo, overlay_png
from .faces import ALIGNED_SIZE
from .gallery import Gallery, GalleryError, NewFace
from .images import ImageError
from .settings import Settings

log = logging.getLogger("ai_server")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_NAME = 200
MAX_METADATA_BYTES = 16 * 1024


def storage_full(err: BaseException) -> bool:
    """ENOSPC/EDQUOT from a file write, or SQLite's "database or disk is full"."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, sqlite3.OperationalError) and "full" in str(err)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Service:
    """Engine + gallery, loaded in a background thread; `ready` once both are there."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine: Engine | None = None
        self.gallery: Gallery | None = None
        self.error: str | None = None
        self.loaded = threading.Event()
        threading.Thread(target=self._load, daemon=True, name="loader").start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            s = self.settings
            engine = Engine(
                s.weights_dir, s.model, s.vector, s.torch_threads, s.flip_tta, s.max_batch, s.batch_wait_ms
            )
            engine.vectors(np.zeros((ALIGNED_SIZE, ALIGNED_SIZE, 3), np.uint8), explain=True)  # warm up
            self.gallery = Gallery(
                s.data_dir, {k: sp.dim for k, sp in engine.spaces.items()}, s.index, s.hnsw_threshold
            )
            if removed := self.gallery.remove_orphans():  # left by a crash mid-enrolment or mid-deletion
                log.info("removed orphan files", extra={"files": removed})
            self.engine = engine
            log.info("ready", extra={"model": engine.model_name, "seconds": time.perf_counter() - started})
        except Exception as err:  # reported by /readyz, and the server stays up to say so
            self.error = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
            log.exception("loading failed")
        finally:
            self.loaded.set()

    def require(self) -> tuple[Engine, Gallery]:
        if self.engine is None or self.gallery is None:
            raise ApiError(503, "not_ready", self.error or "models and gallery are still loading")
        return self.engine, self.gallery


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    telemetry.configure_logging(settings.log_level)
    app = Flask(__name__)
    # a multipart body may carry a few images for enrolment: the per-image limit is checked per file
    app.config["MAX_CONTENT_LENGTH"] = 8 * settings.max_image_bytes + 1024 * 1024
    service = Service(settings)
    app.extensions["ai_service"] = service

    @app.before_request
    def start() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        telemetry.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        telemetry.REQUEST_SECONDS.labels(endpoint).observe(seconds)
        if endpoint not in ("/healthz", "/readyz", "/metrics"):
            log.info(
                "request",
                extra={
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "path": endpoint,  # the rule, not the URL: no ids or names in logs
                    "status": response.status_code,
                    "ms": round(1000 * seconds, 1),
                },
            )
        return response

    def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
        body = {"error": {"code": code, "message": message}, "request_id": g.get("request_id", "")}
        return jsonify(body), status

    @app.errorhandler(ApiError)
    @app.errorhandler(ImageError)
    @app.errorhandler(GalleryError)
    def known_error(err):
        return error_response(err.status, err.code, err.message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(err):
        return error_response(413, "image_too_large", "the request body is larger than the server accepts")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        return error_response(err.code or 500, codes.get(err.code, "http_error"), err.description or "")

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        if storage_full(err):  # the files or rows could not be written: nothing was enrolled
            log.error("storage full", extra={"request_id": g.get("request_id"), "reason": str(err)})
            message = "the gallery's storage is full; nothing was stored"
            return error_response(507, "insufficient_storage", message)
        log.exception("unexpected error", extra={"request_id": g.get("request_id")})
        return error_response(500, "internal_error", "the server failed on this request; it is logged")

    # -- helpers ---------------------------------------------------------------------------------------
    def read_upload(field: str = "image") -> bytes:
        files = request.files.getlist(field)
        if not files:
            raise ApiError(400, "missing_field", f"send the photo as a multipart file field '{field}'")
        if len(files) > 1:
            raise ApiError(400, "invalid_request", f"send exactly one '{field}' file")
        return files[0].read(settings.max_image_bytes + 1)

    def int_param(name: str, default: int, low: int, high: int) -> int:
        raw = request.values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "invalid_parameter", f"{name} must be an integer") from None
        if not low <= value <= high:
            raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}")
        return value

    def bool_param(name: str, default: bool = False) -> bool:
        raw = request.values.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ApiError(400, "invalid_parameter", f"{name} must be true or false")

    def face_of(data: bytes, aligned_input: bool, seconds: dict) -> Photo:
        engine, _ = service.require()
        return engine.photo(data, settings.max_image_bytes, settings.max_pixels, aligned_input, seconds)

    def model_info(engine: Engine, space) -> dict:
        entry = engine.manifest["models"][space.model]
        return {"name": space.model, "version": entry["sha256"][:12], "vector": space.key.rsplit("/", 1)[1]}

    def timings_ms(seconds: dict) -> dict:
        for stage in ("decode", "detect", "align", "heatmap", "embed", "search"):
            if stage in seconds:
                telemetry.STAGE_SECONDS.labels(stage).observe(seconds[stage])
        out = {k: round(1000 * v, 2) for k, v in seconds.items() if k != "batch"}
        out["total"] = round(1000 * (time.perf_counter() - g.started), 2)
        return out

    # -- matching ----------------------------------------------------------------------------------------
    def match(default_k: int):
        engine, gallery = service.require()
        k = int_param("k", default_k, 1, settings.max_k)
        explain = bool_param("explain")
        aligned_input = not bool_param("align", True)
        try:
            space = engine.space_for(request.values.get("model") or None)
        except KeyError:
            served = sorted({s.model for s in engine.spaces.values()})
            raise ApiError(400, "unknown_model", f"model must be one of {served}") from None
        seconds: dict = {}
        photo = face_of(read_upload(), aligned_input, seconds)
        vectors = engine.vectors(photo.aligned, explain=explain)
        seconds.update(vectors.seconds)
        telemetry.BATCH_SIZE.observe(vectors.seconds.get("batch", 1))
        t = time.perf_counter()
        found = gallery.search(space.key, vectors.by_space[space.key], k)
        seconds["search"] = time.perf_counter() - t
        results = [
            {
                "rank": i + 1,
                "person_id": m.person_id,
                "name": m.name,
                "metadata": m.metadata,
                "similarity": round(m.similarity, 6),
                "confidence": None
                if space.confidence(m.similarity) is None
                else round(space.confidence(m.similarity), 6),
                "face_id": m.face_id,
                "thumbnail_url": f"/v1/persons/{m.person_id}/faces/{m.face_id}/thumbnail",
            }
            for i, m in enumerate(found)
        ]
        threshold = space.threshold
        no_match = not found or (threshold is not None and found[0].similarity < threshold)
        body = {
            "request_id": g.request_id,
            "k": k,
            "matches": results,
            "no_match": no_match,
            "threshold": threshold,
            "face": photo.describe(),
            "model": model_info(engine, space),
            "gallery": {"persons": gallery.stats()["persons"], "version": gallery.version()},
            "timings_ms": timings_ms(seconds),
        }
        if explain:
            png = overlay_png(photo.aligned, vectors.explanation)
            body["explanation"] = {"heatmap_png": base64.b64encode(png).decode(), "media_type": "image/png"}
        return jsonify(body)

    @app.post("/v1/match")
    def match_v1():
        return match(5)

    @app.post("/match")
    def match_paper():
        """The paper's endpoint: top-5 by default."""
        return match(5)

    @app.post("/v1/embed")
    def embed():
        engine, _ = service.require()
        aligned_input = not bool_param("align", True)
        seconds: dict = {}
        photo = face_of(read_upload(), aligned_input, seconds)
        vectors = engine.vectors(photo.aligned, explain=True)
        seconds.update(vectors.seconds)
        return jsonify(
            {
                "request_id": g.request_id,
                "model": model_info(engine, engine.default_space),
                "face": photo.describe(),
                "vectors": {k: np.round(v, 7).tolist() for k, v in vectors.by_space.items()},
                "heatmap": {
                    "size": ALIGNED_SIZE,
                    "values": np.round(vectors.explanation, 4).tolist(),
                    "overlay_png": base64.b64encode(overlay_png(photo.aligned, vectors.explanation)).decode(),
                },
                "timings_ms": timings_ms(seconds),
            }
        )

    # -- persons -----------------------------------------------------------------------------------------
    def enrol_faces() -> tuple[list[NewFace], list[dict]]:
        """Every uploaded image (fields `image`/`images`) -> faces to store, and the ones skipped."""
        engine, _ = service.require()
        files = request.files.getlist("image") + request.files.getlist("images")
        if not files:
            raise ApiError(400, "missing_field", "send one or more photos as multipart file fields 'image'")
        if len(files) > 8:
            raise ApiError(400, "invalid_request", "at most 8 images per request")
        aligned_input = not bool_param("align", True)
        photos, skipped = [], []
        for index, file in enumerate(files):
            label = (file.filename or "")[:200]  # echoed back only; never touches the file system
            try:
                photos.append(face_of(file.read(settings.max_image_bytes + 1), aligned_input, {}))
            except (ImageError, ApiError) as err:  # reported per photo; the others are still enrolled
                skipped.append(
                    {"index": index, "filename": label, "error": {"code": err.code, "message": err.message}}
                )
        vectors = engine.vectors_many([p.aligned for p in photos]) if photos else []
        faces = [
            NewFace(p.aligned, p.thumbnail(), v.by_space, p.describe()["box"], p.describe()["score"])
            for p, v in zip(photos, vectors, strict=True)
        ]
        if not faces:
            raise ApiError(422, "no_face_found", f"no usable face in any image: {json.dumps(skipped)}")
        return faces, skipped

    def person_fields() -> tuple[str, dict]:
        name = (request.values.get("name") or "").strip()
        if not name or len(name) > MAX_NAME:
            raise ApiError(
                400,
                "missing_field" if not name else "invalid_parameter",
                f"name is required (1-{MAX_NAME} characters)",
            )
        raw = request.values.get("metadata") or "{}"
        if len(raw.encode()) > MAX_METADATA_BYTES:
            raise ApiError(400, "invalid_parameter", f"metadata is limited to {MAX_METADATA_BYTES} bytes")
        try:
            metadata = json.loads(raw)
        except json.JSONDecodeError:
            raise ApiError(400, "invalid_parameter", "metadata must be a JSON object") from None
        if not isinstance(metadata, dict):
            raise ApiError(400, "invalid_parameter", "metadata must be a JSON object")
        return name, metadata

    @app.post("/v1/persons")
    def create_person():
        _, gallery = service.require()
        name, metadata = person_fields()
        faces, skipped = enrol_faces()
        person = gallery.add_person(name, metadata, faces)
        return jsonify({"person": person, "faces_added": len(faces), "skipped": skipped}), 201

    @app.post("/v1/persons/<person_id>/faces")
    def add_faces(person_id: str):
        _, gallery = service.require()
        if gallery.get_person(person_id) is None:
            raise ApiError(404, "not_found", f"no person {person_id}")
        faces, skipped = enrol_faces()
        person = gallery.add_faces(person_id, faces)
        return jsonify({"person": person, "faces_added": len(faces), "skipped": skipped}), 201

    @app.get("/v1/persons")
    def list_persons():
        _, gallery = service.require()
        offset = int_param("offset", 0, 0, 10**9)
        limit = int_param("limit", 50, 1, 500)
        persons, total = gallery.list_persons(offset, limit)
        return jsonify({"persons": persons, "total": total, "offset": offset, "limit": limit})

    @app.get("/v1/persons/<person_id>")
    def get_person(person_id: str):
        _, gallery = service.require()
        person = gallery.get_person(person_id)
        if person is None:
            raise ApiError(404, "not_found", f"no person {person_id}")
        return jsonify({"person": person})

    @app.delete("/v1/persons/<person_id>")
    def delete_person(person_id: str):
        _, gallery = service.require()
        if not gallery.delete_person(person_id):
            raise ApiError(404, "not_found", f"no person {person_id}")
        return jsonify({"deleted": True, "person_id": person_id, "gallery_version": gallery.version()})

    @app.delete("/v1/persons/<person_id>/faces/<int:face_id>")
    def delete_face(person_id: str, face_id: int):
        _, gallery = service.require()
        if not gallery.delete_face(person_id, face_id):
            raise ApiError(404, "not_found", f"no face {face_id} of person {person_id}")
        return jsonify({"deleted": True, "face_id": face_id, "gallery_version": gallery.version()})

    @app.get("/v1/persons/<person_id>/faces/<int:face_id>/thumbnail")
    def face_thumbnail(person_id: str, face_id: int):
        _, gallery = service.require()
        path = gallery.face_file(person_id, face_id, "thumbnail")
        if path is None:
            raise ApiError(404, "not_found", f"no face {face_id} of person {person_id}")
        return send_file(path, mimetype="image/jpeg", max_age=3600)

    # -- operations --------------------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        engine, gallery = service.require()
        return jsonify(
            {
                "status": "ready",
                "model": model_info(engine, engine.default_space),
                "models": sorted({s.model for s in engine.spaces.values()}),
                "gallery": gallery.stats(),
            }
        )

    @app.get("/metrics")
    def metrics():
        if service.gallery is not None:
            stats = service.gallery.stats()
            telemetry.GALLERY_PERSONS.set(stats["persons"])
            telemetry.GALLERY_FACES.set(stats["faces"])
        body, content_type = telemetry.render()
        return Response(body, content_type=content_type)

    @app.get("/openapi.json")
    def openapi():
        spec = resources.files("ai_server.serving").joinpath("openapi.json").read_text()
        return Response(spec, content_type="application/json")

    return app
