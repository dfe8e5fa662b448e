"""The gallery through the API: enrol persons (one or more photos each), add faces, browse and delete.

Deleting is erasure: the answer (and a log line, without the name) reports what was removed, and
deleting a person already erased answers 200 again with `already_deleted`, so a DELETE the gateway
retries after a timeout still completes its own part of the erasure.
"""

import io
import json
import logging

from flask import Blueprint, g, jsonify, send_file

from ..enrol import new_faces
from ..errors import Code, ServiceError
from ..gallery import NewFace
from ..pipeline.images import upload_scale
from .guard import check_deadline
from .inputs import aligned_input, enrolment_uploads, int_param, person_fields, read_file, service
from .outputs import face_in_upload

blueprint = Blueprint("persons", __name__)
log = logging.getLogger("ai_server")
THUMBNAIL_MAX_AGE_S = 3600


def _faces_from_uploads() -> tuple[list[NewFace], list[dict]]:
    """Every uploaded photo -> a face to store; photos without a usable face are reported, not fatal."""
    engine, _ = service().require()
    limits = service().settings
    files = enrolment_uploads()
    aligned = aligned_input()
    photos, scales, skipped = [], [], []
    for index, file in enumerate(files):
        label = (file.filename or "")[:200]  # echoed back only; never touches the file system
        check_deadline("decoding")
        try:
            data = read_file(file)
            photos.append(engine.photo(data, limits.max_image_bytes, limits.max_pixels, aligned))
            scales.append(upload_scale(data, photos[-1].rgb))
        except ServiceError as err:  # reported per photo; the others are still enrolled
            skipped.append({"index": index, "filename": label, "error": err.as_dict()})
    if not photos:
        raise ServiceError(Code.NO_FACE_FOUND, f"no usable face in any image: {json.dumps(skipped)}")
    check_deadline("the model")
    faces = new_faces(engine, photos)
    for face, scale in zip(faces, scales, strict=True):  # boxes in the uploads' own pixels
        face.box = face_in_upload({"box": face.box}, scale)["box"]
    check_deadline("storing")
    return faces, skipped


def _enrolled(person: dict, faces: list[NewFace], skipped: list[dict]):
    return jsonify({"person": person, "faces_added": len(faces), "skipped": skipped}), 201


def _no_person(person_id: str) -> ServiceError:
    return ServiceError(Code.NOT_FOUND, f"no person {person_id}")


def _no_face(person_id: str, face_id: int) -> ServiceError:
    return ServiceError(Code.NOT_FOUND, f"no face {face_id} of person {person_id}")


@blueprint.post("/v1/persons")
def create_person():
    _, gallery = service().require()
    name, metadata = person_fields()
    faces, skipped = _faces_from_uploads()
    return _enrolled(gallery.add_person(name, metadata, faces), faces, skipped)


@blueprint.post("/v1/persons/<person_id>/faces")
def add_faces(person_id: str):
    _, gallery = service().require()
    if gallery.get_person(person_id) is None:
        raise _no_person(person_id)
    faces, skipped = _faces_from_uploads()
    return _enrolled(gallery.add_faces(person_id, faces), faces, skipped)


@blueprint.get("/v1/persons")
def list_persons():
    _, gallery = service().require()
    offset = int_param("offset", 0, 0, 10**9)
    limit = int_param("limit", 50, 1, 500)
    persons, total = gallery.list_persons(offset, limit)
    return jsonify({"persons": persons, "total": total, "offset": offset, "limit": limit})


@blueprint.get("/v1/persons/<person_id>")
def get_person(person_id: str):
    _, gallery = service().require()
    person = gallery.get_person(person_id)
    if person is None:
        raise _no_person(person_id)
    return jsonify({"person": person})


@blueprint.delete("/v1/persons/<person_id>")
def delete_person(person_id: str):
    _, gallery = service().require()
    erasure = gallery.delete_person(person_id)
    if erasure is None:
        raise _no_person(person_id)
    return _erased({"person_id": person_id}, erasure, gallery.version())


@blueprint.delete("/v1/persons/<person_id>/faces/<int:face_id>")
def delete_face(person_id: str, face_id: int):
    _, gallery = service().require()
    erasure = gallery.delete_face(person_id, face_id)
    if erasure is None:
        raise _no_face(person_id, face_id)
    return _erased({"person_id": person_id, "face_id": face_id}, erasure, gallery.version())


def _erased(what: dict, erasure: dict, version: int):
    """The erasure report, in the answer and in the log (ids and counts only: nothing personal)."""
    already = erasure.pop("already_deleted")
    log.info("erased", extra={"request_id": g.request_id, **what, **erasure, "already_deleted": already})
    body = {"deleted": True, **what, "gallery_version": version, "already_deleted": already}
    return jsonify({**body, "erasure": erasure})


@blueprint.get("/v1/persons/<person_id>/faces/<int:face_id>/thumbnail")
def face_thumbnail(person_id: str, face_id: int):
    _, gallery = service().require()
    jpeg = gallery.face_image(person_id, face_id, "thumbnail")  # a file, or a PostgreSQL row
    if jpeg is None:
        raise _no_face(person_id, face_id)
    return send_file(io.BytesIO(jpeg), mimetype="image/jpeg", max_age=THUMBNAIL_MAX_AGE_S)
