"""Photo in, answers out: `/v1/match` (and the paper's `/match`) and `/v1/embed`.

A match flows decode -> detect -> align -> heatmap + embedding (one batched pass) -> search -> respond;
each stage's time is returned in `timings_ms`.
"""

import base64
import time

import numpy as np
from flask import Blueprint, g, jsonify, request

from .. import telemetry
from ..gallery import Match
from ..pipeline.engine import Photo, Space
from ..pipeline.faces import ALIGNED_SIZE
from ..pipeline.render import overlay_png
from .inputs import aligned_input, bool_param, int_param, one_upload, service
from .outputs import model_info, thumbnail_url, timings_ms

blueprint = Blueprint("match", __name__)
DEFAULT_K = 5


def _photo(aligned: bool, seconds: dict) -> Photo:
    """The request's one uploaded photo, decoded, its largest face found and aligned."""
    engine, _ = service().require()
    limits = service().settings
    return engine.photo(one_upload(), limits.max_image_bytes, limits.max_pixels, aligned, seconds)


@blueprint.post("/v1/match")
@blueprint.post("/match")  # the paper's endpoint
def match():
    """The top-k enrolled persons most like the photo's largest face (k=5 unless asked)."""
    engine, gallery = service().require()
    k = int_param("k", DEFAULT_K, 1, service().settings.max_k)
    explain = bool_param("explain")
    aligned = aligned_input()
    space = engine.space_for(request.values.get("model") or None)
    seconds: dict = {}
    photo = _photo(aligned, seconds)
    vectors = engine.vectors(photo.aligned, explain=explain)
    seconds.update(vectors.seconds)
    telemetry.BATCH_SIZE.observe(vectors.seconds.get("batch", 1))
    started = time.perf_counter()
    found = gallery.search(space.key, vectors.by_space[space.key], k)
    seconds["search"] = time.perf_counter() - started
    threshold = space.threshold
    body = {
        "request_id": g.request_id,
        "k": k,
        "matches": [_match_entry(rank, m, space) for rank, m in enumerate(found, start=1)],
        "no_match": not found or (threshold is not None and found[0].similarity < threshold),
        "threshold": threshold,
        "face": photo.describe(),
        "model": model_info(space),
        "gallery": {"persons": gallery.stats()["persons"], "version": gallery.version()},
        "timings_ms": timings_ms(seconds),
    }
    if explain:
        png = overlay_png(photo.aligned, vectors.explanation)
        body["explanation"] = {"heatmap_png": base64.b64encode(png).decode(), "media_type": "image/png"}
    return jsonify(body)


def _match_entry(rank: int, match: Match, space: Space) -> dict:
    confidence = space.confidence(match.similarity)
    return {
        "rank": rank,
        "person_id": match.person_id,
        "name": match.name,
        "metadata": match.metadata,
        "similarity": round(match.similarity, 6),
        "confidence": None if confidence is None else round(confidence, 6),
        "face_id": match.face_id,
        "thumbnail_url": thumbnail_url(match.person_id, match.face_id),
    }


@blueprint.post("/v1/embed")
def embed():
    """The face's vector in every served space and the served model's heatmap of it."""
    engine, _ = service().require()
    seconds: dict = {}
    photo = _photo(aligned_input(), seconds)
    vectors = engine.vectors(photo.aligned, explain=True)
    seconds.update(vectors.seconds)
    overlay = overlay_png(photo.aligned, vectors.explanation)
    return jsonify(
        {
            "request_id": g.request_id,
            "model": model_info(engine.default_space),
            "face": photo.describe(),
            "vectors": {key: np.round(v, 7).tolist() for key, v in vectors.by_space.items()},
            "heatmap": {
                "size": ALIGNED_SIZE,
                "values": np.round(vectors.explanation, 4).tolist(),
                "overlay_png": base64.b64encode(overlay).decode(),
            },
            "timings_ms": timings_ms(seconds),
        }
    )
