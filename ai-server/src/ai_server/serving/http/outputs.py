"""Parts of response bodies that several endpoints share: the model served, stage timings, face links."""

import time

from flask import g

from .. import telemetry
from ..pipeline.engine import Space


def model_info(space: Space) -> dict:
    return {"name": space.model, "version": space.version, "vector": space.vector}


def timings_ms(seconds: dict[str, float]) -> dict[str, float]:
    """Each stage's time in ms (also exported as `ai_stage_seconds`), and the request's total so far."""
    telemetry.observe_stages(seconds)
    out = {stage: round(1000 * value, 2) for stage, value in seconds.items() if stage != "batch"}
    out["total"] = round(1000 * (time.perf_counter() - g.started), 2)
    return out


def face_in_upload(described: dict, scale: float) -> dict:
    """A face's box and landmarks in the upload's own pixels (a large photo is decoded reduced)."""
    if scale == 1.0:
        return described
    out = {**described, "box": [round(v * scale, 1) for v in described["box"]]}
    if described.get("landmarks") is not None:
        out["landmarks"] = [[round(v * scale, 1) for v in point] for point in described["landmarks"]]
    return out


def thumbnail_url(person_id: str, face_id: int) -> str:
    return f"/v1/persons/{person_id}/faces/{face_id}/thumbnail"
