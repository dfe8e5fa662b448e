"""Bounded resources, against real processes: memory under bursts of large uploads (gateway) and of huge
photos (ai-server, measured as the processes' own peak RSS, VmHWM), per-key quotas, a body that trickles
in, what is kept of a stored photo and for how long, and timeouts that agree between the tiers."""

import io
import json
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from checks import assert_clean, code
from corpus import face_canvas, save
from PIL import Image
from testkit.gateway_api import Api, check_contract

MIB = 1024 * 1024
GATEWAY_LIMIT = 512 * MIB  # docker-compose.yml's GATEWAY_MEMORY default
AI_WORKER_LIMIT = 1536 * MIB  # AI_SERVER_MEMORY (3g) shared by its 2 workers


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def reset_peak(pid: int) -> bool:
    """Start the peak over from the current RSS (Linux: clear_refs 5), where this user may."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def workers(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text()
    return [int(pid) for pid in children.split()]


class PaddedUpload:
    """A multipart body with one photo followed by unique random bytes up to `size`, generated while it is
    sent (so 60 of them need no 600 MB here); requests reads it like a file and sends its length."""

    BOUNDARY = "bounds-boundary"

    def __init__(self, jpeg: bytes, size: int):
        head = (
            f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        self.parts = [head, jpeg]
        self.padding = size - len(jpeg)
        self.tail = f"\r\n--{self.BOUNDARY}--\r\n".encode()
        self.length = len(head) + size + len(self.tail)

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        if self.parts:
            return self.parts.pop(0)
        if self.padding > 0:
            chunk = os.urandom(min(self.padding, 256 * 1024))
            self.padding -= len(chunk)
            return chunk
        out, self.tail = self.tail, b""
        return out


def test_60_parallel_10mib_uploads_keep_the_gateway_under_its_memory_limit(start_gateway):
    gw = start_gateway("memory", rate_burst=1000, queue_timeout_s=120, max_queue=100)
    key, jpeg = gw.keys["search"], save(face_canvas(5), "JPEG")
    baseline = peak_rss(gw.process.pid)

    def upload(_):
        body = PaddedUpload(jpeg, 10 * MIB - 4096)  # just under the 10 MiB limit, unique bytes each
        headers = {"X-API-Key": key, "Content-Type": f"multipart/form-data; boundary={body.BOUNDARY}"}
        return requests.post(gw.url + "/v1/match", data=body, headers=headers, timeout=300)

    with ThreadPoolExecutor(60) as pool:
        replies = list(pool.map(upload, range(60)))
    peak = peak_rss(gw.process.pid)
    print(f"gateway peak RSS {peak / MIB:.0f} MiB (at start {baseline / MIB:.0f} MiB) for 60 x 10 MiB")
    assert [r.status_code for r in replies] == [200] * 60, {r.status_code: r.text[:200] for r in replies}
    assert peak < GATEWAY_LIMIT / 2, f"{peak / MIB:.0f} MiB"
    # unique trailing bytes do not make unique files: what is kept is the picture, stored once
    assert len(list((gw.data_dir / "images").glob("*/*"))) == 1


def test_16_parallel_huge_solid_jpegs_keep_the_ai_server_under_its_limit(ai_server):
    """Tiny files, huge dimensions: refused from the header above the pixel cap, and at the cap decoded
    reduced, two at a time per worker."""
    (worker,) = workers(ai_server.process.pid)
    reset = reset_peak(worker)
    before = peak_rss(worker)
    over = save(Image.new("RGB", (6324, 6324), (200, 30, 40)), "JPEG")  # 40 Mpx in about 600 KB
    at_cap = save(Image.new("RGB", (3464, 3464), (30, 200, 40)), "JPEG")  # 12.0 Mpx

    def send(data: bytes) -> requests.Response:
        return ai_server.call("POST", "/v1/match", files={"image": ("solid.jpg", data)})

    with ThreadPoolExecutor(16) as pool:
        refused = list(pool.map(send, [over] * 16))
        decoded = list(pool.map(send, [at_cap] * 16))
    assert {(r.status_code, code(r)) for r in refused} == {(413, "image_too_large")}
    assert {(r.status_code, code(r)) for r in decoded} == {(422, "no_face_found")}
    peak = peak_rss(worker)
    print(f"ai-server worker peak RSS {peak / MIB:.0f} MiB (before {before / MIB:.0f} MiB, reset {reset})")
    assert peak < AI_WORKER_LIMIT, f"{peak / MIB:.0f} MiB"
    if reset:  # 16 x 12 Mpx at once, decoded full size with copies, would be gigabytes
        assert peak - before < 400 * MIB, f"grew {(peak - before) / MIB:.0f} MiB"


def test_a_key_that_filled_its_quota_gets_429_while_others_work(start_gateway):
    gw = start_gateway("quota", quota_searches_per_day=3, rate_burst=1000)
    greedy, other = Api(gw.url, gw.keys["search"]), Api(gw.url, gw.keys["enrol"])
    for i in range(3):
        assert greedy.match(save(face_canvas(1, size=300 + i), "JPEG")).status_code == 200
    refused = greedy.match(save(face_canvas(1, size=310), "JPEG"))
    assert refused.status_code == 429 and code(refused) == "quota_exceeded", refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 86400  # until the next UTC day
    assert other.match(save(face_canvas(1), "JPEG")).status_code == 200
    # the disk one key's searches may take: full after one search; deleting it frees it again
    small = start_gateway("quota-bytes", quota_stored_bytes=1, rate_burst=1000)
    greedy, other = Api(small.url, small.keys["search"]), Api(small.url, small.keys["enrol"])
    first = greedy.match(save(face_canvas(2), "JPEG"))
    assert first.status_code == 200
    full = greedy.match(save(face_canvas(2, size=320), "JPEG"))
    assert full.status_code == 429 and code(full) == "quota_exceeded", full.text
    assert other.match(save(face_canvas(2), "JPEG")).status_code == 200
    assert greedy("DELETE", f"/v1/searches/{first.json()['search_id']}").status_code == 200
    assert greedy.match(save(face_canvas(2, size=320), "JPEG")).status_code == 200


def test_a_body_that_trickles_in_is_cut_off(start_gateway):
    gw = start_gateway("slow", body_timeout_s=2)
    head = (
        f"POST /v1/match HTTP/1.1\r\nHost: x\r\nX-API-Key: {gw.keys['search']}\r\n"
        "Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 1000000\r\n\r\n"
        '--zz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8\xff'
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=15) as slow:
        slow.sendall(head.encode("latin-1"))
        assert requests.get(gw.url + "/healthz", timeout=5).status_code == 200  # others go on
        slow.sendall(b"\x00" * 100)  # a little more, then nothing
        answer = slow.recv(65536)
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer and 1.5 < waited < 10, waited


def test_a_stored_photo_keeps_no_metadata_and_goes_after_its_retention(start_gateway):
    gw = start_gateway("photos", photo_retention_days=3 / 86400, purge_interval_s=0.5)
    search = Api(gw.url, gw.keys["search"])
    marker = uuid.uuid4().hex
    exif = Image.Exif()
    exif[0x010E] = f"taken at home {marker}"  # ImageDescription
    exif[0x0112] = 6  # rotated: the copy must come out upright
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 2.5), 3: "W", 4: (0.0, 7.0, 39.0)})  # GPS
    upload = save(face_canvas(3).rotate(90, expand=True), "JPEG", exif=exif, comment=marker.encode())
    assert marker.encode() in upload and b"Exif" in upload
    answer = search.match(upload).json()
    kept = search("GET", answer["image_url"]).content
    stored = Image.open(io.BytesIO(kept))
    assert marker.encode() not in kept and b"Exif" not in kept and not stored.getexif()
    assert stored.size == (300, 300) and "icc_profile" not in stored.info and "comment" not in stored.info
    time.sleep(4)
    assert search("GET", answer["image_url"]).status_code == 404  # photo retention: gone
    assert search("GET", f"/v1/searches/{answer['search_id']}").status_code == 200  # the record stays
    assert not list((gw.data_dir / "images").glob("*/*"))


def test_the_ai_server_stops_when_the_gateway_has_given_up(ai_server, start_gateway):
    face = save(face_canvas(0), "JPEG")
    late = ai_server.call(
        "POST", "/v1/match", files={"image": ("q.jpg", face)}, headers={"X-Request-Timeout-Ms": "0"}
    )
    assert late.status_code == 503 and code(late) == "timeout", late.text
    gw = start_gateway("deadline", timeout_s=3)
    request_id = f"deadline-{uuid.uuid4().hex[:8]}"
    reply = Api(gw.url, gw.keys["search"]).match(face, headers={"X-Request-ID": request_id})
    assert reply.status_code == 200
    lines = [json.loads(line) for line in ai_server.log.read_text().splitlines() if request_id in line]
    budgets = [line["budget_ms"] for line in lines if line.get("msg") == "request"]
    assert budgets and all(0 < b <= 3000 for b in budgets), budgets  # the gateway's own wait, not 120 s


@pytest.mark.parametrize("side", [6324, 4000])
def test_the_gateway_refuses_more_than_12_megapixels_from_the_header(gateway, search, side):
    reply = search.match(save(Image.new("RGB", (side, side), (9, 9, 9)), "JPEG"))
    assert_clean(reply)
    check_contract("POST", "/v1/match", reply)
    assert reply.status_code == 413 and code(reply) == "image_too_large", reply.text
