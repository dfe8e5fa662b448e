"""The gallery through the API: enrol persons (one or more photos each), add faces, browse and delete."""

import json

from flask import Blueprint, jsonify, send_file

from ..enrol import new_faces
from ..errors import Code, ServiceError
from ..gallery import NewFace
from .inputs import aligned_input, enrolment_uploads, int_param, person_fields, read_file, service

blueprint = Blueprint("persons", __name__)
THUMBNAIL_MAX_AGE_S = 3600


def _faces_from_uploads() -> tuple[list[NewFace], list[dict]]:
    """Every uploaded photo -> a face to store; photos without a usable face are reported, not fatal."""
    engine, _ = service().require()
    limits = service().settings
    files = enrolment_uploads()
    aligned = aligned_input()
    photos, skipped = [], []
    for index, file in enumerate(files):
        label = (file.filename or "")[:200]  # echoed back only; never touches the file system
        try:
            photos.append(engine.photo(read_file(file), limits.max_image_bytes, limits.max_pixels, aligned))
        except ServiceError as err:  # reported per photo; the others are still enrolled
            skipped.append({"index": index, "filename": label, "error": err.as_dict()})
    if not photos:
        raise ServiceError(Code.NO_FACE_FOUND, f"no usable face in any image: {json.dumps(skipped)}")
    return new_faces(engine, photos), skipped


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
    if not gallery.delete_person(person_id):
        raise _no_person(person_id)
    return jsonify({"deleted": True, "person_id": person_id, "gallery_version": gallery.version()})


@blueprint.delete("/v1/persons/<person_id>/faces/<int:face_id>")
def delete_face(person_id: str, face_id: int):
    _, gallery = service().require()
    if not gallery.delete_face(person_id, face_id):
        raise _no_face(person_id, face_id)
    return jsonify({"deleted": True, "face_id": face_id, "gallery_version": gallery.version()})


@blueprint.get("/v1/persons/<person_id>/faces/<int:face_id>/thumbnail")
def face_thumbnail(person_id: str, face_id: int):
    _, gallery = service().require()
    path = gallery.face_file(person_id, face_id, "thumbnail")
    if path is None:
        raise _no_face(person_id, face_id)
    return send_file(path, mimetype="image/jpeg", max_age=THUMBNAIL_MAX_AGE_S)
