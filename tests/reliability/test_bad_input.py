"""The bad-input corpus, multipart abuse, bad parameters and oversized bodies, through the gateway and
straight at the ai-server: each gets its documented 4xx JSON error or a correct answer, never a 5xx, and
both services are still up and clean afterwards."""

import socket
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from checks import assert_clean, code, server_errors
from corpus import corpus, face_canvas, grey_levels, save
from PIL import Image

SAMPLES = corpus()


@pytest.fixture(scope="module")
def enrolled(admin):
    """The eight people the corpus's faces come from, enrolled from a plain JPEG of the same photo, so a
    correctly decoded upload must rank its own person first."""
    ids = {}
    for i in range(8):
        reply = admin("POST", "/v1/persons", data={"name": f"corpus {i}"},
                      files={"image": ("p.jpg", save(face_canvas(i), "JPEG"))})  # fmt: skip
        assert reply.status_code == 201, reply.text
        ids[i] = reply.json()["person"]["id"]
    return ids


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_corpus_through_the_gateway(sample, search, enrolled):
    reply = search.match(sample.data, filename=sample.name, k=3)
    assert_clean(reply)
    assert (reply.status_code, code(reply)) in sample.expect, reply.text[:300]
    if reply.status_code == 200:
        body = reply.json()
        if sample.face is not None:
            assert body["matches"][0]["person_id"] == enrolled[sample.face], body["matches"]
            assert body["matches"][0]["similarity"] > 0.5, body["matches"][0]
        if sample.name == "many_faces.jpg":
            assert body["face"]["faces_found"] >= 4, body["face"]


def test_16bit_png_reads_like_its_8bit_version(search, enrolled):
    rgb = np.asarray(face_canvas(5))
    grey8 = save(Image.fromarray(grey_levels(rgb).astype(np.uint8)), "PNG")
    grey16 = next(s.data for s in SAMPLES if s.name == "face_16bit_grey.png")
    top8, top16 = (search.match(data, k=1).json()["matches"][0] for data in (grey8, grey16))
    assert top16["person_id"] == top8["person_id"]
    assert abs(top16["similarity"] - top8["similarity"]) < 0.01, (top8, top16)


def test_a_grey_16bit_photo_finds_its_colour_enrolment(search, enrolled):
    """What the corpus test asserts of every other real photo of an enrolled person, for the grey 16-bit
    PNG: its person first, with a similarity above 0.5 (a known weakness of the model served before
    shufflenet-ext-heatmap, kept as a strict xfail until a better model turned it green)."""
    grey16 = next(s.data for s in SAMPLES if s.name == "face_16bit_grey.png")
    reply = search.match(grey16, filename="face_16bit_grey.png", k=3)
    assert reply.status_code == 200, reply.text[:300]
    top = reply.json()["matches"][0]
    assert top["person_id"] == enrolled[5] and top["similarity"] > 0.5, reply.json()["matches"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_corpus_straight_at_the_ai_server(sample, ai_server):
    files = {"image": (sample.name, sample.data)}
    reply = ai_server.call("POST", "/v1/match", files=files)
    assert_clean(reply)
    assert (reply.status_code, code(reply)) in sample.expect, reply.text[:300]


def test_bad_images_are_refused_for_enrolment_and_nothing_is_enrolled(admin, ai_server, enrolled):
    before = admin("GET", "/v1/persons").json()["total"]
    for sample in SAMPLES:
        if (200, None) in sample.expect or sample.name == "over_10mb.jpg":
            continue
        files = {"image": (sample.name, sample.data)}
        reply = admin("POST", "/v1/persons", data={"name": "bad " + sample.name}, files=files)
        assert_clean(reply)
        # an image the gateway passes on but the ai-server cannot decode is skipped: no face to enrol
        expect = sample.expect | (
            {(422, "no_face_found")} if (400, "invalid_image") in sample.expect else set()
        )
        assert (reply.status_code, code(reply)) in expect, (sample.name, reply.text[:300])
    assert admin("GET", "/v1/persons").json()["total"] == before


def raw_post(url: str, head: str, body: bytes) -> tuple[int, str]:
    """A hand-made request on a socket (for bodies requests will not send); returns (status, body)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1].decode(errors="replace")


MULTIPART_ABUSE = {
    "no boundary": ({"Content-Type": "multipart/form-data"}, b"--x\r\n\r\n"),
    "boundary never closed": (
        {"Content-Type": "multipart/form-data; boundary=zz"},
        b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8\xff',
    ),
    "json instead of multipart": ({"Content-Type": "application/json"}, b'{"image": "aGVsbG8="}'),
    "url-encoded": ({"Content-Type": "application/x-www-form-urlencoded"}, b"image=abc&k=5"),
    "empty multipart": ({"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz--\r\n"),
    "no content type": ({}, b"\xff\xd8\xff\xe0"),
}


@pytest.mark.parametrize("case", MULTIPART_ABUSE, ids=str)
def test_multipart_abuse_is_a_400(case, search):
    headers, body = MULTIPART_ABUSE[case]
    reply = search("POST", "/v1/match", data=body, headers=headers)
    assert_clean(reply)
    assert reply.status_code == 400, reply.text


def test_multipart_structure_abuse(search, admin):
    jpeg = save(face_canvas(0), "JPEG")
    cases = {
        "two images": {"files": [("image", ("a.jpg", jpeg)), ("image", ("b.jpg", jpeg))]},
        "wrong field name": {"files": {"photo": ("a.jpg", jpeg)}},
        "huge text field": {"files": {"image": ("a.jpg", jpeg)}, "data": {"k": "5" * 100_000}},
        "too many parts": {"files": {"image": ("a.jpg", jpeg)}, "data": {f"f{i}": "x" for i in range(20)}},
        "image as text field": {"data": {"image": "not a file"}},
    }
    for name, kwargs in cases.items():
        reply = search("POST", "/v1/match", **kwargs)
        assert_clean(reply)
        assert reply.status_code == 400, (name, reply.text)
    nine = [("image", (f"{i}.jpg", jpeg)) for i in range(9)]
    reply = admin("POST", "/v1/persons", data={"name": "nine"}, files=nine)
    assert reply.status_code == 400 and code(reply) == "invalid_request", reply.text


@pytest.mark.parametrize("k", ["0", "-1", "51", str(10**9), "1e3", "abc", "1.5", "5; DROP TABLE"])
def test_bad_k_is_a_400(k, search):
    reply = search.match(save(face_canvas(0), "JPEG"), k=k)
    assert_clean(reply)
    assert reply.status_code == 400 and code(reply) == "invalid_parameter", reply.text


def test_good_k_and_bad_explain(search):
    jpeg = save(face_canvas(1), "JPEG")
    assert [len(search.match(jpeg, k=k).json()["matches"]) for k in ("1", "3", "")] == [1, 3, 5]
    reply = search.match(jpeg, explain="maybe")
    assert reply.status_code == 400 and code(reply) == "invalid_parameter"


def test_oversized_bodies(gateway, search):
    key = gateway.keys["search"]
    big = b"\xff\xd8\xff" + b"\x00" * (12 * 1024 * 1024)
    reply = search.match(big)
    assert_clean(reply)
    assert reply.status_code == 413 and code(reply) == "image_too_large"
    # a declared length far beyond what is sent, then the client goes away: the gateway shrugs it off
    head = (
        f"POST /v1/match HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nConnection: close\r\n"
        "Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 999999999\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n--zz\r\n")
    # a JSON body over the limit for feedback, and a huge header
    status, body = raw_post(
        gateway.url + "/v1/searches/" + "0" * 32 + "/feedback",
        f"POST /v1/searches/{'0' * 32}/feedback HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
        "Connection: close\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n",
        b"{" + b" " * 199_998 + b"}",
    )
    assert status in (404, 413), body  # the search does not exist; either answer is clean
    assert "Traceback" not in body
    reply = requests.get(gateway.url + "/v1/searches", headers={"X-API-Key": key, "X-Big": "a" * 20000})
    assert reply.status_code in (400, 431), reply.status_code


def test_both_services_are_up_and_answered_no_5xx(gateway, ai_server, search):
    assert requests.get(gateway.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(gateway.url + "/readyz", timeout=5).status_code == 200
    assert requests.get(ai_server.url + "/healthz", timeout=5).status_code == 200
    assert ai_server.process.poll() is None and gateway.process.poll() is None
    assert search.match(save(face_canvas(3), "JPEG")).status_code == 200
    gw = server_errors(requests.get(gateway.url + "/metrics").text, "gateway_requests_total")
    ai = server_errors(ai_server.call("GET", "/metrics").text, "ai_requests_total")
    ai.pop('endpoint="/readyz",status="503"', None)  # while the models loaded at start
    assert gw == {} and ai == {}, (gw, ai)
