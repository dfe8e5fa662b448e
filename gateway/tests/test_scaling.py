"""More than one of each: two gateways on one PostgreSQL behave as one service (searches, feedback, keys
and their revocation, the daily quota), and one gateway in front of two ai-server replicas keeps
answering, without one error, while a replica is killed under load, and uses it again once it is back;
an enrolment is handed to the next replica only when the first certainly never received it."""

import asyncio
import contextlib
import os
import signal
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
import testkit
from conftest import Api, error_code
from gateway.errors import ApiError
from gateway.settings import load_settings
from gateway.upstream import Upstream
from photos import people, photo

IDS = list(people())
QUOTA = 4


@pytest.fixture(scope="module")
def pair(ai_server, postgres, tmp_path_factory):
    """Two gateway processes on one PostgreSQL database and one data folder (the stored photos' volume);
    the password in a file, as compose gives it, not in the URL."""
    root = tmp_path_factory.mktemp("pair")
    password = root / "postgres_password"
    password.write_text(postgres.password + "\n")
    with postgres.database("pair") as url:
        gateways = [
            testkit.Gateway(
                root / "data",
                ai_server.url,
                log=root / f"gateway-{i}.log",
                database_url=url.replace(f":{postgres.password}@", "@"),
                database_password_file=password,
                quota_searches_per_day=QUOTA,
                search_show_no_match="true",
            )
            for i in range(2)
        ]
        for gateway in gateways:  # at once, on an empty database: they take turns creating the tables
            gateway.launch()
        for gateway in gateways:
            gateway.wait_ready()
        admin = gateways[0].new_key("admin", name="ops")
        yield [Api(g.url, admin) for g in gateways]
        for gateway in gateways:
            gateway.stop()


def test_two_gateways_on_one_postgresql_are_one_service(pair):
    one, other = pair
    made = one("POST", "/v1/admin/keys", json={"role": "search", "name": "app"})
    assert made.status_code == 201, made.text
    token, key_id = made.json()["token"], made.json()["key"]["id"]
    files = [("image", (f"{i}.jpg", photo(p), "image/jpeg")) for i, p in enumerate(people()[IDS[5]][:2])]
    enrolled = other("POST", "/v1/persons", data={"name": "Dana"}, files=files)
    assert enrolled.status_code == 201, enrolled.text
    searched = one.match(photo(people()[IDS[5]][3]), key=token)
    assert searched.status_code == 200, searched.text
    search_id, shown = searched.json()["search_id"], searched.json()["matches"][0]["person_id"]

    listed = other("GET", "/v1/searches", key=token).json()
    assert [s["id"] for s in listed["searches"]] == [search_id]
    assert other("GET", searched.json()["image_url"], key=token).status_code == 200  # the shared volume
    feedback = {"person_id": shown, "correct": True, "comment": "through the other gateway"}
    assert other("POST", f"/v1/searches/{search_id}/feedback", json=feedback, key=token).status_code == 201
    stored = one("GET", f"/v1/searches/{search_id}", key=token).json()["search"]
    assert [f["comment"] for f in stored["feedback"]] == ["through the other gateway"]
    assert other.match(photo(people()[IDS[0]][1]), key=token).status_code == 200  # the key works there

    # the daily quota counts both gateways' matches: QUOTA in all, whichever gateway made them
    assert one.match(photo(people()[IDS[1]][0]), key=token).status_code == 200
    assert other.match(photo(people()[IDS[1]][1]), key=token).status_code == 200
    for gateway in (one, other):
        refused = gateway.match(photo(people()[IDS[1]][2]), key=token)
        assert refused.status_code == 429 and error_code(refused) == "quota_exceeded"

    revoked = other("DELETE", f"/v1/admin/keys/{key_id}")
    assert revoked.status_code == 200
    for gateway in (one, other):
        refused = gateway("GET", "/v1/searches", key=token)
        assert refused.status_code == 401 and error_code(refused) == "unauthorized"


@pytest.fixture(scope="module")
def replica(ai_server, tmp_path_factory):
    """A second ai-server with the same secret and its own (empty) gallery."""
    root = tmp_path_factory.mktemp("replica")
    settings = {"workers": 1, "threads": 8, "onnx_threads": 1, "log_level": "info"}
    server = testkit.AiServer(
        root / "gallery", log=root / "ai-server.log", secret=ai_server.secret, **settings
    )
    server.start()
    yield server
    server.stop()


def test_a_replica_killed_under_load_costs_no_request(ai_server, replica, tmp_path_factory):
    root = tmp_path_factory.mktemp("replicas")
    gateway = testkit.Gateway(
        root / "data",
        f"{ai_server.url},{replica.url}",
        log=root / "gateway.log",
        ai_server_secret=ai_server.secret,
        rate_per_minute=100000,
        rate_burst=1000,
    )
    api, admin = Api(gateway.url, gateway.new_key("search")), Api(gateway.url, gateway.new_key("admin"))
    faces = [p for person in IDS[:10] for p in people()[person][:4]]

    def match(i: int) -> int:  # every photo a new one (another size): no cached answer
        return api.match(photo(faces[i % len(faces)], size=300 + i)).status_code

    with gateway, ThreadPoolExecutor(4) as pool:
        counts = replica.match_count(), ai_server.match_count()
        statuses = list(pool.map(match, range(12)))
        assert replica.match_count() > counts[0] and ai_server.match_count() > counts[1]  # round-robin
        served = replica.match_count()
        under_load = [pool.submit(match, i) for i in range(12, 92)]
        deadline = time.time() + 60
        while replica.match_count() < served + 2 and time.time() < deadline:  # it is taking its share
            time.sleep(0.02)
        pending = sum(not f.done() for f in under_load)
        os.killpg(replica.process.pid, signal.SIGKILL)  # requests in flight on it, more on the way
        assert pending >= 8, "the load was over before the kill"
        statuses += [f.result() for f in under_load]
        assert statuses == [200] * len(statuses)
        lost = admin("GET", "/v1/admin/failures?limit=100").json()["failures"]
        assert any(f["kind"] == "upstream" and f["path"] == "/v1/match" for f in lost), (
            "nothing was in flight"
        )

        replica.start()  # the same port and gallery; back in rotation once its /readyz answers 200
        served = replica.match_count()
        deadline = time.time() + 30
        while replica.match_count() == served and time.time() < deadline:
            assert match(len(statuses)) == 200
            statuses.append(200)
        assert replica.match_count() > served, "the replica never came back into rotation"


@contextlib.contextmanager
def resetting_server():
    """A real TCP peer that reads a request and then resets the connection without answering: what a
    replica dying mid-request looks like from the gateway (the request may or may not have been done)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.recv(65536)  # the request (its head, at least) arrived
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


async def enrol_through(first: str, ai_server, name: str) -> tuple[int, list[dict]]:
    """One enrolment through an Upstream whose rotation starts at `first`, then the real ai-server."""
    settings = load_settings(ai_server_url=f"{first},{ai_server.url}", ai_server_secret=ai_server.secret)
    failures: list[dict] = []

    async def record(entry: dict) -> None:
        failures.append(entry)

    upstream = Upstream(settings, record, ai_server.secret)
    await upstream.start()
    try:
        form = aiohttp.FormData()
        form.add_field("name", name)
        form.add_field("image", photo(people()[IDS[6]][0]), filename="0.jpeg", content_type="image/jpeg")
        try:
            status = (await upstream.call("POST", "/v1/persons", "enrol-" + name, data=form)).status
        except ApiError as err:
            status = err.status
    finally:
        await upstream.close()
    return status, failures


def enrolled(ai_server, name: str) -> int:
    persons = ai_server.call("GET", "/v1/persons", params={"limit": 500}).json()["persons"]
    return sum(p["name"] == name for p in persons)


def test_an_enrolment_goes_to_another_replica_only_if_the_first_never_got_it(ai_server):
    """Connection refused: the request never left, so the next replica enrols it. Reset after the
    request was read: it may have been enrolled there, so it is not sent again (503, nothing doubled)."""
    refused = f"http://127.0.0.1:{testkit.free_port()}"
    status, failures = asyncio.run(enrol_through(refused, ai_server, "after-refused"))
    assert status == 201 and enrolled(ai_server, "after-refused") == 1
    assert "Connect" in failures[0]["reason"]

    with resetting_server() as resetter:
        status, failures = asyncio.run(enrol_through(resetter, ai_server, "after-reset"))
    assert status == 503 and enrolled(ai_server, "after-reset") == 0
    assert len(failures) == 1  # tried once, on the replica that may have done it
