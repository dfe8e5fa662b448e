"""The ai-server HTTP API (Flask): `create_app` wires settings, the loading service, the blueprints
(`match`, `persons`, `ops`), the error envelope and per-request bookkeeping (request id, metrics, a JSON
log line per request).

Models and the gallery load in the background at start, and /readyz says 503 until every worker has
them, so no request ever pays for loading. Before any endpoint runs, `guard.py` checks the Host and the
gateway's shared secret and sets the request's deadline. Under gunicorn the factory runs once per worker
after the fork (`wsgi_app` in `serving/gunicorn_conf.py`).
"""

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from .. import telemetry
from ..pipeline.images import limit_decoding
from ..service import Service
from ..settings import Settings, load_settings
from ..workers import WorkerReadiness
from . import match, ops, persons
from .errors import register_error_handlers
from .guard import Guard
from .inputs import MAX_IMAGES, SERVICE

log = logging.getLogger("ai_server")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def create_app(settings: Settings | None = None) -> Flask:
    """A WSGI app for this process; its models start loading now, in the background. Refused (a
    SettingsError) without the gateway's shared secret."""
    settings = settings or load_settings()
    guard = Guard(settings)
    telemetry.configure_logging(settings.log_level)
    limit_decoding(settings.decode_concurrency)
    app = Flask(__name__)
    # a multipart body may carry a few images for enrolment: the per-image limit is checked per file
    app.config["MAX_CONTENT_LENGTH"] = MAX_IMAGES * settings.max_image_bytes + 1024 * 1024
    readiness = WorkerReadiness.from_environment(expected=settings.workers)
    app.extensions[SERVICE] = Service(settings, readiness)
    app.before_request(_start_request)
    app.before_request(guard.check)
    app.after_request(_finish_request)
    register_error_handlers(app)
    for blueprint in (match.blueprint, persons.blueprint, ops.blueprint):
        app.register_blueprint(blueprint)
    return app


def _start_request() -> None:
    """The caller's X-Request-ID when it is a sane token (the gateway sends one), else a new one."""
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    telemetry.REQUESTS.labels(endpoint, str(response.status_code)).inc()
    telemetry.REQUEST_SECONDS.labels(endpoint).observe(seconds)
    if endpoint not in ops.QUIET_PATHS:
        log.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": endpoint,  # the rule, not the URL: no ids or names in logs
                "status": response.status_code,
                "ms": round(1000 * seconds, 1),
                "budget_ms": round(1000 * g.budget_s) if "budget_s" in g else None,
            },
        )
    return response
