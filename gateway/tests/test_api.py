"""The public API end to end: a real gateway in front of the real ai-server, faces from ../shared/data.

This module's operator lets search keys see the candidates of a no-match answer and two metadata fields
(the shipped model calls few searches a match), so the flows below have people to look at; what a
search key sees under the default policy is tests/reliability/test_security.py's. The module runs once per
store backend (conftest's `backend_url`: SQLite, then PostgreSQL)."""

import hashlib
import io
import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import Api, Gateway, error_code
from gateway.client import Client, InvalidRequest, NotFound, Unauthorized
from photos import encode, people, photo
from PIL import Image
from testkit import png_claiming

MAX_BYTES = 1_000_000
MAX_PIXELS = 4_000_000


@pytest.fixture(scope="module")
def gateway(ai_server, tmp_path_factory, backend_url):
    root = tmp_path_factory.mktemp("api")
    web = root / "web"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<html>the app</html>")
    (web / "assets" / "app.js").write_text("console.log('app')")
    gw = Gateway(
        root,
        ai_server.url,
        max_image_bytes=MAX_BYTES,
        max_pixels=MAX_PIXELS,
        cors_origins="http://app.test",
        web_dir=web,
        rate_per_minute=100000,
        rate_burst=1000,
        auth_failures_per_minute=100000,
        search_show_no_match="true",
        search_metadata_fields="case,last_seen",
        database_url=backend_url,
    )
    roles = {"admin": "admin", "search": "search", "other": "search", "enrol": "enrol"}
    gw.keys = {name: gw.new_key(role) for name, role in roles.items()}
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def api(gateway):
    return Api(gateway.url, gateway.keys["search"])


@pytest.fixture(scope="module")
def admin(gateway):
    return Api(gateway.url, gateway.keys["admin"])


IDS = list(people())


def enrol(admin: Api, name: str, paths) -> dict:
    files = [("image", (f"{i}.jpg", photo(p), "image/jpeg")) for i, p in enumerate(paths)]
    response = admin("POST", "/v1/persons", data={"name": name, "metadata": '{"case": "t"}'}, files=files)
    assert response.status_code == 201, response.text
    return response.json()["person"]


def test_match_history_feedback_delete(api, admin, gateway):
    alice = enrol(admin, "Alice", people()[IDS[0]][:2])
    enrol(admin, "Bob", people()[IDS[1]][:2])
    query = photo(people()[IDS[0]][3])
    response = api.match(query, k=3)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["matches"][0]["person_id"] == alice["id"] and result["matches"][0]["name"] == "Alice"
    assert result["k"] == 3 and not result["cached"]
    assert result["heatmap_url"] is None and "ai_server" in result["timings_ms"]

    # the stored query image is a copy without metadata; thumbnails are served through the gateway
    stored = api("GET", result["image_url"])
    assert stored.headers["Content-Type"] == "image/jpeg" and stored.content[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(stored.content)).size == (300, 300) and b"Exif" not in stored.content
    assert stored.headers["X-Content-Type-Options"] == "nosniff"
    thumbnail = api("GET", result["matches"][0]["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.content[:3] == b"\xff\xd8\xff"

    history = api("GET", "/v1/searches?limit=5").json()
    assert history["searches"][0]["id"] == result["search_id"] and history["total"] >= 1
    assert api("GET", "/v1/searches?limit=1&offset=1").json()["searches"] != history["searches"][:1]

    feedback = {"person_id": alice["id"], "correct": True, "comment": "same person, confirmed"}
    created = api("POST", f"/v1/searches/{result['search_id']}/feedback", json=feedback)
    assert created.status_code == 201
    search = api("GET", f"/v1/searches/{result['search_id']}").json()["search"]
    assert search["feedback"][0]["comment"] == "same person, confirmed" and search["feedback"][0]["correct"]
    bad = api(
        "POST", f"/v1/searches/{result['search_id']}/feedback", json={"person_id": "nobody", "correct": 1}
    )
    assert bad.status_code == 400 and error_code(bad) == "missing_field"
    stranger = api(
        "POST", f"/v1/searches/{result['search_id']}/feedback", json={"person_id": "x", "correct": False}
    )
    assert stranger.status_code == 400 and error_code(stranger) == "invalid_parameter"

    # another search key neither sees this search nor its image; an admin sees everyone's
    other = gateway.keys["other"]
    assert api("GET", f"/v1/searches/{result['search_id']}", key=other).status_code == 404
    assert api("GET", result["image_url"], key=other).status_code == 404
    assert api("GET", "/v1/searches", key=other).json()["total"] == 0
    assert admin("GET", f"/v1/searches/{result['search_id']}").status_code == 200

    deleted = api("DELETE", f"/v1/persons/{alice['id']}", key=gateway.keys["enrol"])
    assert deleted.status_code == 200 and deleted.json()["searches_redacted"] >= 1
    assert deleted.json()["erasure"]["gateway"]["feedback_removed"] == 1
    stored = api("GET", f"/v1/searches/{result['search_id']}").json()["search"]["result"]["matches"][0]
    assert stored["person_id"] == alice["id"] and stored["deleted"]
    assert stored["name"] is None and stored["thumbnail_url"] is None
    assert api("GET", result["image_url"]).status_code == 404  # the photo that matched Alice is gone
    assert admin("GET", f"/v1/persons/{alice['id']}").status_code == 404
    again = api.match(query, k=3).json()
    assert alice["id"] not in {m["person_id"] for m in again["matches"]}


def test_paper_alias_with_heatmap(api, admin):
    enrol(admin, "Carol", people()[IDS[2]][:1])
    response = api(
        "POST", "/match", files={"image": ("q.png", photo(people()[IDS[2]][2], "PNG"))}, data={"explain": "1"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["k"] == 5 and result["matches"][0]["name"] == "Carol"
    heatmap = api("GET", result["heatmap_url"])
    assert heatmap.status_code == 200 and heatmap.content[:8] == b"\x89PNG\r\n\x1a\n"


def _noise(width: int, height: int, fmt: str) -> bytes:
    return encode(Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)), fmt)


BAD_INPUTS = {
    "not multipart": (dict(json={"image": "x"}), 400, "invalid_request"),
    "multipart without boundary": (
        dict(data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}),
        400,
        "invalid_request",
    ),
    "garbage multipart": (
        dict(data=b"\x00\xff" * 50, headers={"Content-Type": "multipart/form-data; boundary=zz"}),
        400,
        "invalid_request",
    ),
    "truncated multipart": (
        dict(
            data=b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
            + b"\xff\xd8\xff",
            headers={"Content-Type": "multipart/form-data; boundary=zz"},
        ),
        400,
        "invalid_request",
    ),
    "no image field": (
        dict(data={"k": "3"}, files={"photo": ("a.jpg", b"\xff\xd8\xff")}),
        400,
        "invalid_request",
    ),
    "only text fields": (dict(files={"k": (None, "3")}), 400, "missing_field"),
    "too many fields": (
        dict(data={f"f{i}": "x" for i in range(20)}, files={"image": ("a.jpg", b"1")}),
        400,
        "invalid_request",
    ),
    "two images": (
        dict(files=[("image", ("a.jpg", b"1")), ("image", ("b.jpg", b"2"))]),
        400,
        "invalid_request",
    ),
    "empty file": (dict(files={"image": ("a.jpg", b"")}), 400, "invalid_image"),
    "text as jpeg": (
        dict(files={"image": ("a.jpg", b"hello, not an image", "image/jpeg")}),
        415,
        "unsupported_media_type",
    ),
    "gif": (
        dict(files={"image": ("a.gif", encode(Image.new("RGB", (50, 50)), "GIF"))}),
        415,
        "unsupported_media_type",
    ),
    "truncated jpeg header": (
        dict(files={"image": ("a.jpg", b"\xff\xd8\xff\xe0garbage")}),
        400,
        "invalid_image",
    ),
    "corrupt jpeg body": (
        dict(files={"image": ("a.jpg", photo(people()[IDS[0]][0])[:600])}),
        400,
        "invalid_image",
    ),
    "too many bytes": (dict(files={"image": ("a.png", _noise(700, 700, "PNG"))}), 413, "image_too_large"),
    "too many pixels": (
        dict(files={"image": ("a.png", encode(Image.new("RGB", (2100, 2000)), "PNG"))}),
        413,
        "image_too_large",
    ),
    "no face": (
        dict(files={"image": ("a.jpg", encode(Image.new("RGB", (300, 300), (90, 90, 90))))}),
        422,
        "no_face_found",
    ),
    "k zero": (dict(data={"k": "0"}, files={"image": ("a.jpg", b"x")}), 400, "invalid_parameter"),
    "k too large": (dict(data={"k": "51"}, files={"image": ("a.jpg", b"x")}), 400, "invalid_parameter"),
    "k not a number": (dict(data={"k": "five"}, files={"image": ("a.jpg", b"x")}), 400, "invalid_parameter"),
    "explain not a boolean": (
        dict(data={"explain": "maybe"}, files={"image": ("a.jpg", b"x")}),
        400,
        "invalid_parameter",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_clearly_and_nothing_is_stored(api, admin, gateway, case):
    kwargs, status, code = BAD_INPUTS[case]
    if case.startswith("k ") or case.startswith("explain"):  # a valid photo: only the parameter is wrong
        kwargs = {**kwargs, "files": {"image": ("a.jpg", photo(people()[IDS[0]][0]))}}
    before = api("GET", "/v1/searches").json()["total"]
    files_before = {p for p in (gateway.data_dir / "images").rglob("*") if p.is_file()}
    request_id = f"bad-{abs(hash(case))}"
    kwargs = dict(kwargs)
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": request_id}
    response = api("POST", "/v1/match", headers=headers, **kwargs)
    assert (response.status_code, error_code(response)) == (status, code), response.text
    assert api("GET", "/v1/searches").json()["total"] == before
    files_after = {p for p in (gateway.data_dir / "images").rglob("*") if p.is_file()}
    assert files_after == files_before  # no photo left behind
    logged = admin("GET", f"/v1/admin/failures?request_id={request_id}").json()["failures"]
    assert [(f["kind"], f["status"], f["code"]) for f in logged] == [("rejected", status, code)]


def test_enrolment_is_validated_too(admin):
    files = [("image", ("a.jpg", photo(people()[IDS[3]][0]))), ("image", ("b.jpg", b"<?php evil ?>"))]
    response = admin("POST", "/v1/persons", data={"name": "Mallory"}, files=files)
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"
    nine = [("image", (f"{i}.jpg", photo(people()[IDS[3]][0]))) for i in range(9)]
    response = admin("POST", "/v1/persons", data={"name": "Many"}, files=nine)
    assert response.status_code == 400 and error_code(response) == "invalid_request"
    nameless = admin("POST", "/v1/persons", files=[("image", ("a.jpg", photo(people()[IDS[3]][0])))])
    assert nameless.status_code == 400 and error_code(nameless) == "missing_field"  # the ai-server's check


def test_keys_and_roles(api, admin, gateway):
    image = photo(people()[IDS[0]][0])
    search_key, admin_key = gateway.keys["search"], gateway.keys["admin"]
    wrong_secret = search_key[: search_key.rindex("_") + 1] + "A" * 43
    for key in (None, "", "nonsense", wrong_secret, "gw_000000000000_" + "A" * 43):
        response = api.match(image, key=key)
        assert response.status_code == 401 and error_code(response) == "unauthorized"
    for method, path in (
        ("GET", "/v1/persons"),
        ("GET", "/v1/persons/abc"),
        ("DELETE", "/v1/persons/abc"),
        ("DELETE", "/v1/persons/abc/faces/1"),
        ("GET", "/v1/admin/failures"),
        ("GET", "/v1/admin/keys"),
    ):
        response = api(method, path)
        assert response.status_code == 403 and error_code(response) == "forbidden", (method, path)
    enrol_key = gateway.keys["enrol"]
    assert api("GET", "/v1/persons", key=enrol_key).status_code == 200  # enrol: the gallery, not the keys
    for method, path in (("GET", "/v1/admin/failures"), ("GET", "/v1/admin/keys")):
        assert api(method, path, key=enrol_key).status_code == 403, path
    files = {"image": ("a.jpg", image)}
    response = api("POST", "/v1/persons", data={"name": "X"}, files=files)
    assert response.status_code == 403
    response = api("POST", "/v1/persons/abc/faces", files=files)
    assert response.status_code == 403
    assert api.match(image, key=admin_key).status_code == 200  # admin may search too
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert api("GET", path, key=None).status_code == 200, path


def test_cors_for_the_web_app(gateway):
    preflight = requests.options(
        gateway.url + "/v1/match",
        headers={
            "Origin": "http://app.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.test"
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    refused = requests.get(gateway.url + "/healthz", headers={"Origin": "http://evil.test"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in refused.headers
    allowed = requests.get(gateway.url + "/v1/searches", headers={"Origin": "http://app.test"}, timeout=10)
    assert allowed.status_code == 401 and allowed.headers["Access-Control-Allow-Origin"] == "http://app.test"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]


def test_client_file_names_never_touch_the_file_system(api, gateway, tmp_path):
    image = photo(people()[IDS[4]][0])
    names = [
        "../../../../../../tmp/evil.jpg",
        "..\\..\\evil.jpg",
        "/etc/passwd",
        "évil name .jpg",
    ]
    before = set(gateway.data_dir.rglob("*"))
    for name in names:
        response = api.match(image, filename=name)
        assert response.status_code == 200, (name, response.text)
    nul = api.match(image, filename="a\x00b.jpg")  # a header no strict parser accepts
    assert nul.status_code == 400 and error_code(nul) == "invalid_request"
    kept = api("GET", response.json()["image_url"]).content  # the stored copy, named by its own hash
    sha = hashlib.sha256(kept).hexdigest()
    created = {p.relative_to(gateway.data_dir).as_posix() for p in set(gateway.data_dir.rglob("*")) - before}
    assert {c for c in created if not c.startswith("gateway.sqlite3")} <= {
        f"images/{sha[:2]}",
        f"images/{sha[:2]}/{sha}",
    }
    assert (gateway.data_dir / "images" / sha[:2] / sha).read_bytes() == kept
    assert not os.path.exists("/tmp/evil.jpg")
    assert not list(gateway.data_dir.parent.rglob("*evil*"))


def test_cache_hits_skip_inference_and_follow_enrolment_and_deletion(api, admin, ai_server, gateway):
    query = photo(people()[IDS[5]][3])
    first = api.match(query).json()
    calls = ai_server.match_count()
    hit = api.match(query).json()
    assert hit["cached"] and ai_server.match_count() == calls  # answered without the ai-server's inference
    assert hit["matches"] == first["matches"] and hit["search_id"] != first["search_id"]
    assert api.match(query, k=2).json()["cached"] is False  # k is part of the key
    # per key: another key's first search of the same photo is not a hit (it would tell it about this one)
    assert api.match(query, key=gateway.keys["other"]).json()["cached"] is False

    dana = enrol(admin, "Dana", people()[IDS[5]][:2])
    after = api.match(query).json()
    assert not after["cached"] and after["matches"][0]["person_id"] == dana["id"]
    assert after["gallery"]["version"] > first["gallery"]["version"]
    assert api.match(query).json()["cached"]

    admin("DELETE", f"/v1/persons/{dana['id']}")
    gone = api.match(query).json()
    assert not gone["cached"] and dana["id"] not in {m["person_id"] for m in gone["matches"]}
    assert api.match(query).json()["cached"]

    # a change the gateway never saw (made at the ai-server itself) is caught by the gallery version
    files = [("image", (f"{i}.jpg", photo(p))) for i, p in enumerate(people()[IDS[5]][:2])]
    direct = ai_server.call("POST", "/v1/persons", data={"name": "Eve"}, files=files)
    assert direct.status_code == 201
    behind_its_back = api.match(query).json()
    assert not behind_its_back["cached"]
    assert behind_its_back["matches"][0]["person_id"] == direct.json()["person"]["id"]
    ai_server.call("DELETE", f"/v1/persons/{direct.json()['person']['id']}")
    assert not api.match(query).json()["cached"]


def test_32_concurrent_uploads_are_all_answered(api):
    photos = [photo(paths[i]) for paths in list(people().values())[10:26] for i in (0, 1)]
    assert len(photos) == 32

    def upload(image):
        return api.match(image)

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(upload, photos))
    statuses = [r.status_code for r in responses]
    assert all(s in (200, 422) for s in statuses), statuses  # 422: the detector found no face in a photo
    assert statuses.count(200) >= 30
    ids = {r.json()["search_id"] for r in responses if r.status_code == 200}
    assert len(ids) == statuses.count(200)


def test_request_ids_reach_the_ai_server_and_the_logs(api, gateway, ai_server):
    request_id = f"trace-{random.randrange(10**9)}"
    response = api.match(photo(people()[IDS[6]][0]), headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id == response.json()["request_id"]
    assert request_id in ai_server.log.read_text()
    assert f'"request_id": "{request_id}"' in gateway.log.read_text()
    unsafe = api("GET", "/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["X-Request-ID"] != "bad id\twith spaces"


def test_client_module(gateway):
    search = Client(gateway.url, gateway.keys["search"])
    admin = Client(gateway.url, gateway.keys["admin"])
    paths = people()[IDS[7]]
    files = []
    for i, path in enumerate(paths[:3]):
        files.append(gateway.data_dir.parent / f"client-{i}.jpg")
        files[-1].write_bytes(photo(path))
    person = admin.enrol("Erin", files[:2], {"last_seen": "2026-11-01"})["person"]
    assert person["metadata"] == {"last_seen": "2026-11-01"} and len(person["faces"]) == 2
    result = search.match(files[2], k=2)
    assert result["matches"][0]["person_id"] == person["id"] and len(result["matches"]) <= 2
    with pytest.raises(Unauthorized) as refused:
        search.delete(person["id"])
    assert refused.value.status == 403 and refused.value.code == "forbidden" and refused.value.request_id
    assert admin.delete(person["id"])["deleted"]
    again = admin.delete(person["id"])  # a retry (after a timeout, say) completes, it does not fail
    assert again["deleted"] and again["already_deleted"]
    with pytest.raises(NotFound):
        admin.delete("nobody-ever")
    text = gateway.data_dir.parent / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(InvalidRequest) as invalid:
        search.match(text)
    assert invalid.value.code == "unsupported_media_type"
    with pytest.raises(Unauthorized):
        Client(gateway.url, "gw_nope_nope").match(files[0])


def test_operations_endpoints(api, gateway):
    ready = api("GET", "/readyz", key=None).json()
    assert ready["status"] == "ready" and ready["ai_server"]["model"]["version"]
    spec = api("GET", "/openapi.json", key=None).json()
    assert spec["openapi"].startswith("3.1") and "/v1/match" in spec["paths"]
    assert "/v1/searches/{search_id}/feedback" in api("GET", "/docs", key=None).text
    metrics = api("GET", "/metrics", key=None).text
    assert 'gateway_requests_total{route="/v1/match",status="200"}' in metrics
    assert 'gateway_cache_total{result="hit"}' in metrics


def test_web_app_is_served_with_index_fallback(gateway):
    get = lambda path: requests.get(gateway.url + path, timeout=10)  # noqa: E731
    assert get("/").text == "<html>the app</html>"
    assert get("/assets/app.js").text == "console.log('app')"
    assert get("/searches/123").text == "<html>the app</html>"  # a client-side route
    assert "root:" not in get("/..%2F..%2F..%2Fetc%2Fpasswd").text
    for method in ("GET", "POST", "DELETE"):
        missing = requests.request(method, gateway.url + "/v1/no-such-thing", timeout=10)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_image_checks_read_only_headers():
    """A unit check of the pixel limit: a huge image is refused from its header, without decoding."""
    from gateway.errors import ApiError
    from gateway.media import check_image

    for side in (7000, 100_000):  # 49 Mpx, and 10 Gpx (past Pillow's own decompression-bomb limit)
        with pytest.raises(ApiError) as refused:
            check_image(png_claiming(side, side, pixels=b""), 10 * 2**20, 40_000_000)
        assert (refused.value.status, refused.value.code) == (413, "image_too_large")
    assert check_image(encode(Image.new("RGB", (64, 64)), "WEBP"), 10**6, 10**6) == "webp"
