"""Operating the service: liveness, readiness (of every worker), Prometheus metrics, the API document."""

from importlib import resources

from flask import Blueprint, Response, jsonify

from .. import telemetry
from ..errors import Code, ServiceError
from .inputs import service
from .outputs import model_info

blueprint = Blueprint("ops", __name__)
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")  # polled constantly: counted, not logged


@blueprint.get("/healthz")
def healthz():
    """The process answers (models may still be loading)."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():
    """200 only once every gunicorn worker has loaded, so the next request cannot meet a loading one."""
    engine, gallery = service().require()  # this worker, with its own reason if it failed
    ready, expected = service().readiness.count(), service().readiness.expected
    if ready < expected:
        raise ServiceError(Code.NOT_READY, f"{ready} of {expected} workers have loaded the models")
    return jsonify(
        {
            "status": "ready",
            "model": model_info(engine.default_space),
            "models": engine.models,
            "gallery": gallery.stats(),
            "workers": {"ready": ready, "expected": expected},
        }
    )


@blueprint.get("/metrics")
def metrics():
    gallery = service().gallery
    if gallery is not None:
        stats = gallery.stats()
        telemetry.GALLERY_PERSONS.set(stats["persons"])
        telemetry.GALLERY_FACES.set(stats["faces"])
    body, content_type = telemetry.render()
    return Response(body, content_type=content_type)


@blueprint.get("/openapi.json")
def openapi():
    spec = resources.files("ai_server.serving").joinpath("openapi.json").read_text()
    return Response(spec, content_type="application/json")
