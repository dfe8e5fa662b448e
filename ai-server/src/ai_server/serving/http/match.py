"""Photo in, answers out: `/v1/match` (and the paper's `/match`) and `/v1/embed`.

A match flows decode -> detect -> align -> heatmap + embedding (one batched pass) -> search -> respond;
each stage's time is returned in `timings_ms`. Between stages the request's deadline is checked
(`guard.check_deadline`): work the gateway no longer waits for stops there.
"""

import base64
import time
from dataclasses import dataclass

import numpy as np
from flask import Blueprint, g, jsonify, request

from .. import telemetry
from ..gallery import Match
from ..pipeline.engine import Photo, Space, Vectors
from ..pipeline.faces import ALIGNED_SIZE
from ..pipeline.images import upload_scale
from ..pipeline.render import overlay_png
from .guard import check_deadline
from .inputs import aligned_input, bool_param, int_param, one_upload, service
from .outputs import face_in_upload, model_info, thumbnail_url, timings_ms

blueprint = Blueprint("match", __name__)
DEFAULT_K = 5


def _photo_and_vectors(aligned: bool, explain: bool, seconds: dict) -> tuple[Photo, dict, Vectors]:
    """The request's one uploaded photo (decoded, its largest face found and aligned), that face described
    in the upload's pixels, and its vectors. The engine expects the request from the start, so a batch
    being gathered waits for it while it decodes (and for no one else)."""
    engine, _ = service().require()
    limits = service().settings
    with engine.expect() as ticket:
        data = one_upload()
        check_deadline("decoding")
        photo = engine.photo(data, limits.max_image_bytes, limits.max_pixels, aligned, seconds)
        check_deadline("the model")
        vectors = engine.vectors(photo.aligned, explain=explain, ticket=ticket)
    seconds.update(vectors.seconds)
    return photo, face_in_upload(photo.describe(), upload_scale(data, photo.rgb)), vectors


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
    photo, face, vectors = _photo_and_vectors(aligned, explain, seconds)
    telemetry.BATCH_SIZE.observe(vectors.seconds.get("batch", 1))
    check_deadline("the search")
    started = time.perf_counter()
    found = gallery.search(space.key, vectors.by_space[space.key], k + 1)  # the next one: the last's gap
    seconds["search"] = time.perf_counter() - started
    persons, version = gallery.size()
    decision = decide(space, found, k, persons, service().settings)
    explanation = None
    if explain:
        started = time.perf_counter()
        png = overlay_png(photo.aligned, vectors.explanation)
        explanation = {"heatmap_png": base64.b64encode(png).decode(), "media_type": "image/png"}
        seconds["render"] = time.perf_counter() - started
    body = {
        "request_id": g.request_id,
        "k": k,
        "matches": [
            _match_entry(rank, m, c)
            for rank, (m, c) in enumerate(zip(found[:k], decision.confidences, strict=True), start=1)
        ],
        "no_match": decision.no_match,
        "min_confidence": decision.min_confidence,
        "threshold": decision.threshold,
        "face": face,
        "model": model_info(space),
        "gallery": {"persons": persons, "version": version},
        "timings_ms": timings_ms(seconds),
    }
    if explanation:
        body["explanation"] = explanation
    return jsonify(body)


@dataclass
class Decision:
    confidences: list  # per candidate shown: the probability it is the person, or None
    no_match: bool
    min_confidence: float | None  # the level a candidate's confidence must reach (search calibration)
    threshold: float | None  # the similarity the best must reach (models without a search calibration)


def decide(space: Space, found: list[Match], k: int, persons: int, settings) -> Decision:
    """One rule: "no reliable match" exactly when no candidate's confidence reaches the operator's level,
    and each candidate shows the very confidence the rule used. A model without a search calibration
    shows no confidence and falls back to its similarity threshold, so two numbers never disagree."""
    shown = found[:k]
    confidences = space.confidences([m.similarity for m in found], persons, k, settings.enrolled_prior)
    if confidences is not None:
        level = settings.min_confidence
        return Decision(confidences, not any(c >= level for c in confidences), level, None)
    threshold = space.threshold
    no_match = not shown or (threshold is not None and shown[0].similarity < threshold)
    return Decision([None] * len(shown), no_match, None, threshold)


def _match_entry(rank: int, match: Match, confidence: float | None) -> dict:
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
    photo, face, vectors = _photo_and_vectors(aligned_input(), True, seconds)
    overlay = overlay_png(photo.aligned, vectors.explanation)
    return jsonify(
        {
            "request_id": g.request_id,
            "model": model_info(engine.default_space),
            "face": face,
            "vectors": {key: np.round(v, 7).tolist() for key, v in vectors.by_space.items()},
            "heatmap": {
                "size": ALIGNED_SIZE,
                "values": np.round(vectors.explanation, 4).tolist(),
                "overlay_png": base64.b64encode(overlay).decode(),
            },
            "timings_ms": timings_ms(seconds),
        }
    )
