"""Two real ai-server replicas (gunicorn, the shipped weights) on one shared gallery: a real PostgreSQL
cluster and a real Milvus (milvus-lite's server), as the compose `scale` profile runs them. What one
replica enrols the other matches at once; what one deletes the other never returns; a replica killed
(SIGKILL) in the middle of enrolments leaves no half-written person, and comes back ready; a PostgreSQL
outage is a 503 and a full disk a 507, and neither leaves half a person; one gateway in front of both
is one service."""

import io
import os
import secrets
import signal
import threading
import time

import pytest
import requests
import testkit
from testkit import celeba_people, encode, sample_canvas
from testkit.gateway_api import Api
from testkit.milvus import MilvusLite, require_milvus_lite
from testkit.postgres import PostgresCluster, missing_reason

FACES_PER_PERSON = 3


def photo(identity: int, which: int = 0, quality: int = 93) -> bytes:
    paths = list(celeba_people("celeba_val", min_photos=FACES_PER_PERSON).values())[identity]
    return encode(sample_canvas(str(paths[which])), "JPEG", quality=quality)


@pytest.fixture(scope="module")
def gallery_db(tmp_path_factory):
    """The shared gallery's engines: a PostgreSQL cluster and milvus-lite's server, (cluster, milvus)."""
    reason = missing_reason()
    testkit.require(reason is None, f"PostgreSQL: {reason}")
    require_milvus_lite()
    root = tmp_path_factory.mktemp("gallery-db")
    cluster = PostgresCluster().start()
    milvus = MilvusLite(root / "milvus").start()
    yield cluster, milvus
    milvus.stop()
    cluster.stop()


@pytest.fixture(scope="module")
def replicas(gallery_db, tmp_path_factory):
    """Two ai-servers on one PostgreSQL database and one Milvus, with one secret (one gateway may call
    both): (a, b)."""
    cluster, milvus = gallery_db
    root = tmp_path_factory.mktemp("replicas")
    shared = {"postgres_url": cluster.url("postgres"), "milvus_uri": milvus.uri}
    shared["secret"] = secrets.token_urlsafe(32)
    servers = [
        testkit.AiServer(
            root / name, log=root / f"{name}.log", workers=1, threads=4, onnx_threads=1, **shared
        )
        for name in ("a", "b")
    ]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def enrol(server, name: str, identity: int, faces: int = FACES_PER_PERSON) -> requests.Response:
    files = [("image", (f"{i}.jpg", io.BytesIO(photo(identity, i)), "image/jpeg")) for i in range(faces)]
    return server.call("POST", "/v1/persons", data={"name": name}, files=files)


def match_call(server, identity: int, k: int = 5) -> requests.Response:
    files = {"image": ("q.jpg", io.BytesIO(photo(identity, 0)), "image/jpeg")}
    return server.call("POST", "/v1/match", data={"k": str(k)}, files=files)


def match(server, identity: int, k: int = 5) -> list[dict]:
    """The candidates for one of the photos the identity was enrolled with (so its person is first)."""
    response = match_call(server, identity, k)
    assert response.status_code == 200, response.text
    return response.json()["matches"]


def names(server) -> set[str]:
    return {p["name"] for p in server.call("GET", "/v1/persons?limit=200").json()["persons"]}


def test_one_gateway_over_both_replicas_is_one_service(replicas, tmp_path):
    """The compose `scale` profile end to end: a gateway spreads its calls over both replicas of one shared
    gallery; what it enrols through one, every later search finds, whichever replica answers it."""
    a, b = replicas
    gateway = testkit.Gateway(
        tmp_path / "gateway", f"{a.url},{b.url}", log=tmp_path / "gateway.log", ai_server_secret=a.secret
    )
    with gateway:
        enrol_api, search_api = (Api(gateway.url, gateway.new_key(role)) for role in ("enrol", "search"))
        files = [("image", (f"{i}.jpg", photo(20, i), "image/jpeg")) for i in range(FACES_PER_PERSON)]
        enrolled = enrol_api("POST", "/v1/persons", data={"name": "Through The Gateway"}, files=files)
        assert enrolled.status_code == 201, enrolled.text
        person_id = enrolled.json()["person"]["id"]
        before = a.match_count(), b.match_count()
        found = [search_api.match(photo(20, i % 3, quality=80 + i)) for i in range(6)]  # no cached answer
        assert [r.status_code for r in found] == [200] * 6, [r.text for r in found]
        assert {r.json()["matches"][0]["person_id"] for r in found} == {person_id}
        assert a.match_count() > before[0] and b.match_count() > before[1]  # both answered


def test_an_enrolment_through_one_is_matched_through_the_other_at_once(replicas):
    a, b = replicas
    enrolled = [enrol(a, f"Person {i}", i) for i in range(3)]
    assert all(r.status_code == 201 for r in enrolled), [r.text for r in enrolled]
    ids = [r.json()["person"]["id"] for r in enrolled]
    for i, person_id in enumerate(ids):
        assert match(b, i)[0]["person_id"] == person_id  # the other replica, no wait, no retry
    assert b.call("GET", f"/v1/persons/{ids[0]}").json()["person"]["name"] == "Person 0"
    face = enrolled[0].json()["person"]["faces"][0]["id"]
    thumbnail = b.call("GET", f"/v1/persons/{ids[0]}/faces/{face}/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/jpeg"


def test_a_deletion_through_one_is_never_returned_by_the_other(replicas):
    a, b = replicas
    victim = enrol(b, "To Delete", 5).json()["person"]["id"]
    assert match(a, 5)[0]["person_id"] == victim
    deleted = a.call("DELETE", f"/v1/persons/{victim}")
    assert deleted.status_code == 200 and deleted.json()["erasure"]["vectors"] > 0
    for server in (a, b):
        assert victim not in {m["person_id"] for m in match(server, 5, k=50)}
        assert server.call("GET", f"/v1/persons/{victim}").status_code == 404


def test_killing_a_replica_mid_enrolment_leaves_no_half_written_person(replicas):
    a, b = replicas
    acknowledged, stop = [], threading.Event()

    def keep_enrolling() -> None:
        for i in range(10, 40):
            if stop.is_set():
                return
            try:
                response = enrol(a, f"Killed {i}", i)
            except requests.RequestException:  # the replica died under this request
                return
            if response.status_code == 201:
                acknowledged.append(response.json()["person"]["id"])

    writer = threading.Thread(target=keep_enrolling)
    writer.start()
    deadline = time.time() + 120
    while len(acknowledged) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next enrolment
    os.killpg(a.process.pid, signal.SIGKILL)  # gunicorn and its worker, mid-request
    stop.set()
    writer.join(60)
    a.process.wait(30)
    assert len(acknowledged) >= 2, "the replica did not get going before the kill"
    persons = b.call("GET", "/v1/persons?limit=200").json()["persons"]
    killed = [p for p in persons if p["name"].startswith("Killed")]
    assert set(acknowledged) <= {p["id"] for p in killed}  # nothing acknowledged is lost
    assert all(len(p["faces"]) == FACES_PER_PERSON for p in killed)  # all of a person or nothing
    for p in killed:
        identity = int(p["name"].split()[1])
        assert match(b, identity)[0]["person_id"] == p["id"]  # and searchable through the survivor
    a.start()  # the killed replica comes back and serves the same gallery
    assert match(a, int(killed[-1]["name"].split()[1]))[0]["person_id"] == killed[-1]["id"]


FULL_DISK_ON_FACES = """
CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
END $$;
CREATE TRIGGER full_disk BEFORE INSERT ON faces FOR EACH ROW EXECUTE FUNCTION full_disk();
"""


def test_a_database_outage_is_a_503_and_a_full_disk_a_507_and_neither_leaves_a_half_person(
    replicas, gallery_db
):
    """PostgreSQL down: matches and enrolments on both replicas are refused with 503 (retry later), never a
    500, and nothing is half-written; once it is back both serve again at once (their pools replace the
    dead connections). A full disk during an enrolment (disk_full, raised here by a trigger, as a test
    cannot fill the disk) is a 507 and leaves no person."""
    a, b = replicas
    cluster, _ = gallery_db
    kept = enrol(a, "Before Outage", 50).json()["person"]["id"]
    cluster.stop_server()
    try:
        down = [
            call(server)
            for server in (a, b)
            for call in (lambda s: match_call(s, 50), lambda s: enrol(s, "During Outage", 51))
        ]
    finally:
        cluster.start_server()
    assert [r.status_code for r in down] == [503] * 4, [r.text for r in down]
    assert {r.json()["error"]["code"] for r in down} <= {"not_ready", "timeout"}
    for server in (a, b):
        assert match(server, 50)[0]["person_id"] == kept
    assert "During Outage" not in names(b)

    cluster.execute(FULL_DISK_ON_FACES)
    try:
        full = enrol(a, "Disk Full", 52)
    finally:
        cluster.execute("DROP TRIGGER full_disk ON faces")
    assert full.status_code == 507 and full.json()["error"]["code"] == "insufficient_storage", full.text
    assert "Disk Full" not in names(a) | names(b)
    assert enrol(b, "Disk Free", 52).status_code == 201 and "Disk Free" in names(a)
