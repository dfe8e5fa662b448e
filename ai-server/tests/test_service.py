"""The HTTP API on a real Flask app, real models (the tiny shipped pair), real FAISS and real photos. Every
response is checked against the server's OpenAPI file (`contract.py`)."""

import base64
import io
import json

import contract
import jsonschema
import numpy as np
import pytest
from flask.testing import FlaskClient
from photos import by_identity, encode, photo
from PIL import Image
from testkit import png_claiming

from ai_server.research import data
from ai_server.serving.errors import Code, ServiceError
from ai_server.serving.gallery import Gallery
from ai_server.serving.http.app import create_app
from ai_server.serving.http.errors import STATUS
from ai_server.serving.settings import Settings


class ContractClient(FlaskClient):
    """Flask's test client; every response is checked against openapi.json before the test sees it."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        sent = response.request
        contract.check(sent.method, sent.path, response.status_code, response.mimetype, response.get_data())
        return response


SECRET = "s" * 40  # the gateway's shared secret, sent by every test client below


def _app(weights, data_dir, **settings):
    settings = {"secret": SECRET, **settings}
    app = create_app(Settings(weights_dir=weights, data_dir=data_dir, onnx_threads=2, **settings))
    assert app.extensions["ai_service"].loaded.wait(120)
    app.test_client_class = ContractClient
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {SECRET}"
    return client


@pytest.fixture
def client(tiny_weights, tmp_path):
    return _app(tiny_weights, tmp_path / "gallery")


@pytest.fixture(params=["embedded", "shared"])
def any_client(request, tiny_weights, tmp_path):
    """The app on each gallery backend: embedded, and PostgreSQL + Milvus (real engines, conftest.py)."""
    shared = request.getfixturevalue("shared_location") if request.param == "shared" else {}
    return _app(tiny_weights, tmp_path / "gallery", **shared)


@pytest.fixture(scope="module")
def people():
    return by_identity(data.validation_identities())


def _enrol(client, name, paths, **fields):
    files = [(io.BytesIO(photo(p)), f"{i}.jpg") for i, p in enumerate(paths)]
    response = client.post("/v1/persons", data={"name": name, "image": files, **fields})
    assert response.status_code == 201, response.json
    return response.json


def _match(client, image: bytes, **fields):
    return client.post("/v1/match", data={"image": (io.BytesIO(image), "q.jpg"), **fields})


def _error(response, status, code):
    assert response.status_code == status, response.json
    body = response.json
    assert body["error"]["code"] == code and body["error"]["message"] and body["request_id"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready["status"] == "ready" and ready["model"]["name"] == "tiny-heatmap"
    assert ready["models"] == ["tiny-base", "tiny-heatmap"]


def test_enrol_then_match_a_person_by_another_photo(any_client, people):
    client = any_client
    ids = sorted(people)[:4]
    enrolled = {i: _enrol(client, f"Person {i}", people[i][:2], metadata=json.dumps({"id": i})) for i in ids}
    assert all(e["faces_added"] == 2 and not e["skipped"] for e in enrolled.values())
    response = _match(client, photo(people[ids[0]][0]), k=3)  # an enrolled photo: must come first
    assert response.status_code == 200
    body = response.json
    assert body["k"] == 3 and len(body["matches"]) == 3
    best = body["matches"][0]
    assert best["person_id"] == enrolled[ids[0]]["person"]["id"] and best["similarity"] > 0.99
    assert best["metadata"] == {"id": ids[0]} and 0 <= best["confidence"] <= 1
    assert [m["rank"] for m in body["matches"]] == [1, 2, 3]
    assert len({m["person_id"] for m in body["matches"]}) == 3  # persons, not faces
    sims = [m["similarity"] for m in body["matches"]]
    assert sims == sorted(sims, reverse=True)
    assert body["face"]["faces_found"] == 1 and len(body["face"]["landmarks"]) == 5
    assert set(body["timings_ms"]) >= {"decode", "detect", "align", "heatmap", "embed", "search", "total"}
    assert body["model"]["name"] == "tiny-heatmap" and body["min_confidence"] == 0.5  # search-calibrated
    assert body["threshold"] is None and body["no_match"] == (
        max(m["confidence"] for m in body["matches"]) < 0.5
    )
    thumb = client.get(best["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.data)).size == (160, 160)
    # the Base model's space is filled by the same pass and can be searched too
    base = _match(client, photo(people[ids[0]][0]), model="tiny-base").json
    assert base["model"]["name"] == "tiny-base" and base["matches"][0]["person_id"] == best["person_id"]
    # k larger than the gallery: every person once; /match is the paper's top-5 alias
    assert len(_match(client, photo(people[ids[1]][0]), k=50).json["matches"]) == 4
    alias = client.post("/match", data={"image": (io.BytesIO(photo(people[ids[1]][0])), "q.jpg")})
    assert alias.status_code == 200 and alias.json["k"] == 5


def test_the_photo_as_the_body_itself_is_matched_as_the_multipart_upload_is(client, people):
    """What the gateway sends: the image as the body (its type in Content-Type), the parameters in the
    query. The same answer as the multipart form; an empty or oversized body is a clear 4xx."""
    ids = sorted(people)[:3]
    for i in ids:
        _enrol(client, f"Person {i}", people[i][:1])
    query = photo(people[ids[1]][1])
    form = _match(client, query, k=2, explain="true").json
    raw = client.post("/v1/match?k=2&explain=true", data=query, content_type="image/jpeg")
    assert raw.status_code == 200, raw.json
    same = ["person_id", "similarity", "confidence"]
    assert [[m[f] for f in same] for m in raw.json["matches"]] == [
        [m[f] for f in same] for m in form["matches"]
    ]
    assert raw.json["k"] == 2 and raw.json["explanation"] == form["explanation"]
    assert raw.json["face"] == form["face"]
    embedded = client.post("/v1/embed", data=query, content_type="image/jpeg")
    assert embedded.status_code == 200 and embedded.json["face"] == form["face"]
    _error(client.post("/v1/match", data=b"", content_type="image/jpeg"), 400, "missing_field")
    _error(client.post("/v1/match?k=0", data=query, content_type="image/jpeg"), 400, "invalid_parameter")
    not_an_image = client.post("/v1/match", data=b"not an image", content_type="image/png")
    _error(not_an_image, 415, "unsupported_media_type")


def test_empty_gallery_is_an_honest_no_match(client, people):
    body = _match(client, photo(next(iter(people.values()))[0])).json
    assert body["matches"] == [] and body["no_match"] is True


def test_explain_returns_a_heatmap_overlay(client, people):
    _enrol(client, "A", people[sorted(people)[0]][:1])
    body = _match(client, photo(people[sorted(people)[0]][1]), explain="true").json
    png = base64.b64decode(body["explanation"]["heatmap_png"])
    assert Image.open(io.BytesIO(png)).size == (224, 224)
    assert body["timings_ms"]["render"] > 0  # the overlay's own stage; a match without explain has none
    assert "render" not in _match(client, photo(people[sorted(people)[0]][1])).json["timings_ms"]
    embedded = client.post(
        "/v1/embed", data={"image": (io.BytesIO(photo(people[sorted(people)[1]][0])), "q.jpg")}
    )
    assert embedded.status_code == 200
    vectors = embedded.json["vectors"]
    assert len(vectors) == 2 and all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors.values())
    heat = np.array(embedded.json["heatmap"]["values"])
    assert heat.shape == (112, 112) and heat.min() >= 0 and heat.max() <= 1


def test_persons_listing_and_deletion_is_complete(client, people, tmp_path):
    ids = sorted(people)[:3]
    created = [_enrol(client, f"Person {i} Erasable", people[i][:2])["person"] for i in ids]
    listing = client.get("/v1/persons?limit=2").json
    assert listing["total"] == 3 and len(listing["persons"]) == 2
    assert client.get("/v1/persons?offset=2").json["persons"][0]["id"] == created[2]["id"]
    victim = created[0]
    assert client.get(f"/v1/persons/{victim['id']}").json["person"]["name"] == victim["name"]
    gallery_dir = tmp_path / "gallery"
    files_before = len(list((gallery_dir / "faces").iterdir())) + len(
        list((gallery_dir / "thumbs").iterdir())
    )
    assert files_before == 12
    thumbnail = client.get(f"/v1/persons/{victim['id']}/faces/{victim['faces'][0]['id']}/thumbnail").data
    response = client.delete(f"/v1/persons/{victim['id']}")
    assert response.status_code == 200 and response.json["deleted"] is True
    assert response.json["erasure"] == {
        "faces": 2,
        "vectors": 4,
        "crops": 2,
        "thumbnails": 2,
        "wal_truncated": True,
    }
    _error(client.get(f"/v1/persons/{victim['id']}"), 404, "not_found")
    again = client.delete(f"/v1/persons/{victim['id']}")  # a retried DELETE: done, nothing more to do
    assert again.status_code == 200 and again.json["already_deleted"] is True
    assert again.json["erasure"]["faces"] == 0
    _error(client.delete("/v1/persons/never-enrolled"), 404, "not_found")
    on_disk = b"".join(p.read_bytes() for p in gallery_dir.rglob("*") if p.is_file())
    assert victim["name"].encode() not in on_disk and thumbnail not in on_disk  # SQLite, WAL, files
    files_after = len(list((gallery_dir / "faces").iterdir())) + len(list((gallery_dir / "thumbs").iterdir()))
    assert files_after == 8
    db = Gallery.embedded(gallery_dir, {}, verify=False).metadata.connect()
    assert db.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", (victim["id"],)).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 4 * 2  # 4 faces x 2 spaces
    matches = _match(client, photo(people[ids[0]][0]), k=50).json["matches"]
    assert victim["id"] not in {m["person_id"] for m in matches}
    # deleting one face of a person
    other = created[1]
    face_id = other["faces"][0]["id"]
    assert client.delete(f"/v1/persons/{other['id']}/faces/{face_id}").status_code == 200
    assert [f["id"] for f in client.get(f"/v1/persons/{other['id']}").json["person"]["faces"]] == [
        other["faces"][1]["id"]
    ]
    _error(client.get(f"/v1/persons/{other['id']}/faces/{face_id}/thumbnail"), 404, "not_found")


def test_enrolment_reports_photos_without_a_face(client, people):
    noise = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)))
    files = [(io.BytesIO(photo(people[sorted(people)[0]][0])), "good.jpg"), (io.BytesIO(noise), "noise.jpg")]
    body = client.post("/v1/persons", data={"name": "X", "image": files}).json
    assert body["faces_added"] == 1
    assert body["skipped"] == [
        {
            "index": 1,
            "filename": "noise.jpg",
            "error": {"code": "no_face_found", "message": "no face was found in the image"},
        }
    ]
    _error(
        client.post("/v1/persons", data={"name": "Y", "image": (io.BytesIO(noise), "n.jpg")}),
        422,
        "no_face_found",
    )
    _error(client.post("/v1/persons", data={"image": (io.BytesIO(noise), "n.jpg")}), 400, "missing_field")
    bad_meta = {"name": "Z", "metadata": "[1, 2]", "image": (io.BytesIO(noise), "n.jpg")}
    _error(client.post("/v1/persons", data=bad_meta), 400, "invalid_parameter")
    assert client.get("/v1/persons").json["total"] == 1  # nothing half-enrolled


def _png_header_only(width: int, height: int) -> bytes:
    """A small PNG that claims to be width x height: a decompression bomb's header."""
    return png_claiming(width, height, pixels=b"\x00" * 4096, level=9)


def test_bad_input_gets_a_clear_4xx(client, people):
    good = photo(people[sorted(people)[0]][0])
    no_face = encode(Image.new("RGB", (300, 300), (120, 130, 140)))
    cases = [
        (good[: len(good) // 2], 400, "invalid_image"),  # truncated JPEG
        (b"this is text, not an image", 415, "unsupported_media_type"),
        (b"", 400, "invalid_image"),
        (_png_header_only(20000, 20000), 413, "image_too_large"),
        (encode(Image.new("RGB", (8, 8)), "GIF"), 415, "unsupported_media_type"),
        (no_face, 422, "no_face_found"),
    ]
    for image, status, code in cases:
        _error(_match(client, image), status, code)
    _error(client.post("/v1/match", data={}), 400, "missing_field")
    _error(client.post("/v1/match", data={"photo": (io.BytesIO(good), "q.jpg")}), 400, "missing_field")
    for k in ("0", "51", "abc", "-1"):
        _error(_match(client, good, k=k), 400, "invalid_parameter")
    _error(_match(client, good, model="resnet"), 400, "unknown_model")
    _error(_match(client, good, explain="maybe"), 400, "invalid_parameter")
    _error(_match(client, good, align="false"), 400, "invalid_image")  # not a 112x112 crop
    _error(client.get("/v1/persons/nobody"), 404, "not_found")
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.get("/v1/match"), 405, "method_not_allowed")
    two = {"image": [(io.BytesIO(good), "a.jpg"), (io.BytesIO(good), "b.jpg")]}
    _error(client.post("/v1/match", data=two), 400, "invalid_request")
    assert client.get("/healthz").status_code == 200


def test_size_limits(tiny_weights, tmp_path, people):
    client = _app(tiny_weights, tmp_path / "g", max_image_bytes=20_000, max_pixels=250 * 250)
    _error(_match(client, photo(people[sorted(people)[0]][0], fmt="PNG")), 413, "image_too_large")
    big = encode(Image.new("RGB", (300, 300)))
    assert len(big) < 20_000
    _error(_match(client, big), 413, "image_too_large")  # 90,000 pixels > 62,500
    raw = client.post(
        "/v1/match", data=photo(people[sorted(people)[0]][0], fmt="PNG"), content_type="image/png"
    )
    _error(raw, 413, "image_too_large")  # the body itself: the same byte limit


def test_exif_orientation_is_applied(client, people):
    _enrol(client, "Upright", people[sorted(people)[0]][:1])
    rotated = Image.open(io.BytesIO(photo(people[sorted(people)[0]][0]))).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the rotation above
    body = _match(client, encode(rotated, exif=exif.tobytes())).json
    assert body["matches"][0]["similarity"] > 0.99


def test_request_ids_propagate_and_metrics_count(client):
    response = client.get("/v1/persons", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    assert client.get("/v1/persons/none", headers={"X-Request-ID": "r1"}).json["request_id"] == "r1"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'ai_requests_total{endpoint="/v1/persons",status="200"}' in metrics
    assert "ai_gallery_persons" in metrics
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/v1/match" in spec["paths"]


def test_restart_keeps_the_gallery(tiny_weights, tmp_path, people):
    first = _app(tiny_weights, tmp_path / "g")
    person = _enrol(first, "Kept", people[sorted(people)[0]][:2])["person"]
    second = _app(tiny_weights, tmp_path / "g")
    assert second.get(f"/v1/persons/{person['id']}").json["person"]["name"] == "Kept"
    assert _match(second, photo(people[sorted(people)[0]][0])).json["matches"][0]["person_id"] == person["id"]


def test_another_model_is_refused_until_reembedded(tiny_weights, tmp_path, people):
    from ai_server.cli import main

    client = _app(tiny_weights, tmp_path / "g")
    _enrol(client, "Old", people[sorted(people)[0]][:2])
    with pytest.raises(ServiceError, match="reembed") as refused:
        Gallery.embedded(tmp_path / "g", {"other-model@000000000000/embedding": 512})
    assert refused.value.code == Code.MODEL_MISMATCH
    # serving the Base model alone needs vectors of exactly that space: already there (same pass)
    assert _app(tiny_weights, tmp_path / "g", model="tiny-base").get("/readyz").status_code == 200
    # the paper's heatmap vector is another space: refused, then re-embedded from the stored crops
    refused = _app(tiny_weights, tmp_path / "g", vector="heatmap_vector").get("/readyz")
    assert refused.status_code == 503 and "reembed" in refused.json["error"]["message"]
    import os

    os.environ["AI_SERVER_WEIGHTS_DIR"] = str(tiny_weights)
    os.environ["AI_SERVER_VECTOR"] = "heatmap_vector"
    try:
        assert main(["reembed", "--data-dir", str(tmp_path / "g")]) == 0
    finally:
        del os.environ["AI_SERVER_WEIGHTS_DIR"], os.environ["AI_SERVER_VECTOR"]
    served = _app(tiny_weights, tmp_path / "g", vector="heatmap_vector")
    body = _match(served, photo(people[sorted(people)[0]][0])).json
    assert body["model"]["vector"] == "heatmap_vector" and body["matches"][0]["name"] == "Old"


def test_a_failed_file_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from ai_server.serving.gallery import files

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError):
        files.atomic_write(tmp_path / "face.png", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_a_very_thin_image_is_searched_without_error():
    from ai_server.serving.pipeline.faces import FaceDetector

    assert FaceDetector().detect(np.zeros((1, 3000, 3), np.uint8)) == []


def test_every_error_code_has_one_status_and_is_in_the_openapi_file():
    documented = contract.SPEC["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert set(documented["enum"]) == {code.value for code in Code}
    assert set(STATUS) == set(Code)


def test_the_contract_check_can_fail():
    """A body the document does not allow, and a status it does not list, are caught."""
    envelope = {"error": {"code": "not_found", "message": "no person x"}, "request_id": "r"}
    contract.check("GET", "/v1/persons/x", 404, "application/json", json.dumps(envelope).encode())
    with pytest.raises(jsonschema.ValidationError):
        contract.check("POST", "/v1/match", 200, "application/json", json.dumps({"k": 5}).encode())
    wrong_code = {**envelope, "error": {"code": "no_such_code", "message": "x"}}
    with pytest.raises(jsonschema.ValidationError):
        contract.check("GET", "/v1/persons/x", 404, "application/json", json.dumps(wrong_code).encode())
    with pytest.raises(AssertionError, match="not documented"):
        contract.check("GET", "/v1/persons/x", 418, "application/json", json.dumps(envelope).encode())
    with pytest.raises(AssertionError):  # an undocumented path may only answer the error envelope
        contract.check("GET", "/v1/secret", 200, "application/json", b"{}")
