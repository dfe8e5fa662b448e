"""One middleware per concern, outermost first (the order `chain()` returns):

request_id_middleware
                every request gets an id (the client's X-Request-ID when it is safe), sent back in the
                X-Request-ID header, passed to the ai-server, in every log line and error body
security_headers
                nosniff (stored photos are served as what they are), a Content-Security-Policy (the web
                app's scripts, styles and API calls from its own origin only; nothing at all for the
                API), no framing, no referrer, and HSTS when GATEWAY_HSTS_MAX_AGE_S says it is served
                over HTTPS
failure_log     every answer >= 400 (except the web app's own 404s) recorded in the store's failure log;
                refusals of requests without a valid key only while their address has tokens left
metrics         request count and latency per route and status
access_log      one JSON line per request (not for /healthz, /readyz, /metrics)
cors            preflight answers and Access-Control-* headers for the configured origins
error_envelope  the one place where an exception becomes an answer: ApiError, aiohttp's HTTP errors, a full
                disk (507) and anything unexpected (500) all leave as the JSON error envelope

Everything outside error_envelope therefore only ever sees responses, never exceptions.
"""

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from .. import telemetry
from ..errors import ApiError, storage_full
from .auth import client_address
from .context import ERROR, KEY_ID, REQUEST_ID, STARTED, request_id, services

log = logging.getLogger("gateway")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
QUIET_ROUTES = ("/healthz", "/readyz", "/metrics")  # probes and scrapes: counted, not logged
WEB_APP_ROUTE = "/{tail}"  # the web app's catch-all: browser traffic, not API refusals worth recording
HTTP_CODES[408] = "request_timeout"
# The web app (Expo's export): its own scripts and styles (react-native-web sets inline styles), photos
# the user picks (blob:, data:), and the API on the same origin. The API's JSON needs none of it.
WEB_APP_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def route_of(request: web.Request) -> str:
    """The route template, not the URL: metrics and logs never carry ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def elapsed_ms(request: web.Request) -> float:
    return round(1000 * (time.perf_counter() - request[STARTED]), 1)


def request_entry(request: web.Request, response: web.StreamResponse) -> dict:
    """What the access log and the failure log say about a request."""
    return {
        "request_id": request_id(request),
        "method": request.method,
        "path": route_of(request),
        "status": response.status,
        "ms": elapsed_ms(request),
        "key_id": request.get(KEY_ID),
    }


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = given if SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
    request[STARTED] = time.perf_counter()
    response = await handler(request)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    return response


def security_headers(hsts_max_age_s: int):
    """The headers every answer carries (see the module docstring)."""

    @web.middleware
    async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        web_app = route_of(request) == WEB_APP_ROUTE or request.path == "/docs"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = WEB_APP_POLICY if web_app else API_POLICY
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if hsts_max_age_s:
            response.headers["Strict-Transport-Security"] = f"max-age={hsts_max_age_s}; includeSubDomains"
        return response

    return security_headers_middleware


@web.middleware
async def failure_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Records refusals; failing to record one never changes the answer the client gets."""
    response = await handler(request)
    if response.status < 400 or route_of(request) == WEB_APP_ROUTE:
        return response
    if request.get(KEY_ID) is None and not services(request).refusals.allows(client_address(request)):
        telemetry.UNLOGGED.inc()  # no valid key, and this address has had its share of records
        return response
    error = request.get(ERROR) or ApiError(response.status, "http_error", "")
    entry = {**request_entry(request, response), "ts": time.time(), "kind": "rejected"}
    try:
        await services(request).store.add_failure({**entry, "code": error.code, "reason": error.message})
    except Exception as err:
        if storage_full(err):
            log.error("failure not recorded: storage full", extra={"request_id": request_id(request)})
        else:
            log.exception("failure not recorded", extra={"request_id": request_id(request)})
    return response


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    route = route_of(request)
    telemetry.REQUESTS.labels(route, str(response.status)).inc()
    telemetry.REQUEST_SECONDS.labels(route).observe(time.perf_counter() - request[STARTED])
    return response


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if route_of(request) not in QUIET_ROUTES:
        log.info("request", extra=request_entry(request, response))
    return response


def cors(origins: set[str]):
    """Browsers on these origins (or any, with "*") may call the API with an API key header."""
    any_origin = "*" in origins

    @web.middleware
    async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "X-API-Key, Content-Type, X-Request-ID"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        origin = request.headers.get("Origin", "").rstrip("/")
        if origin and (any_origin or origin in origins):
            response.headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Retry-After"
            response.headers["Vary"] = "Origin"
        return response

    return cors_middleware


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as err:
        error = as_api_error(err, request_id(request))
    request[ERROR] = error  # for the failure log
    body = {"error": {"code": error.code, "message": error.message}, "request_id": request_id(request)}
    response = web.json_response(body, status=error.status)
    if error.retry_after is not None:  # whole seconds, at least 1, rounded up from .01 past a second
        response.headers["Retry-After"] = str(max(1, round(error.retry_after + 0.49)))
    return response


def as_api_error(err: Exception, request_id: str) -> ApiError:
    """Any exception as the ApiError the client gets; call it inside `except`, so tracebacks are logged."""
    if isinstance(err, ApiError):
        return err
    if isinstance(err, web.HTTPException):  # the router's 404/405, aiohttp's body size limit (413)
        return ApiError(err.status, HTTP_CODES.get(err.status, "http_error"), err.reason)
    if storage_full(err):
        log.error("storage full", extra={"request_id": request_id, "reason": str(err)})
        message = "the server's storage is full; nothing was stored, try again later"
        return ApiError(507, "insufficient_storage", message)
    log.exception("unexpected error", extra={"request_id": request_id})
    return ApiError(500, "internal_error", "the gateway failed on this request; it is logged")


def chain(origins: set[str], hsts_max_age_s: int = 0) -> list:
    return [
        request_id_middleware,
        security_headers(hsts_max_age_s),
        failure_log,
        metrics,
        access_log,
        cors(origins),
        error_envelope,
    ]
