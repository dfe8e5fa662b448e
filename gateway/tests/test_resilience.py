"""What operators rely on: the ai-server going away and coming back, back-pressure, rate limits, retention,
and a database that has to wait holding up nothing else."""

import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import Api, Gateway, error_code
from photos import people, photo

IDS = list(people())
RESET_S = 2.0
TIMEOUT_S = 4.0
RETENTION_S = 3.0


@pytest.fixture(scope="module")
def gateway(ai_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("resilience")
    gw = Gateway(root, ai_server.url, breaker_reset_s=RESET_S, timeout_s=TIMEOUT_S)
    gw.keys = {"admin": gw.new_key("admin"), "search": gw.new_key("search")}
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def tight(ai_server, tmp_path_factory):
    """A gateway with small limits: 1 ai-server call at a time, 1 waiting, 3 requests per key at once
    (then 1 a second), and searches kept for only a few seconds."""
    gw = Gateway(
        tmp_path_factory.mktemp("tight"),
        ai_server.url,
        max_inflight=1,
        max_queue=1,
        rate_burst=3,
        rate_per_minute=60,
        retention_days=RETENTION_S / 86400,
        purge_interval_s=0.5,
    )
    gw.keys = {"admin": gw.new_key("admin")}
    gw.start()
    yield gw
    gw.stop()


def test_ai_server_down_then_back(gateway, ai_server):
    api = Api(gateway.url, gateway.keys["search"])
    admin = Api(gateway.url, gateway.keys["admin"])
    query = photo(people()[IDS[0]][0])
    assert api.match(query).status_code == 200
    ai_server.stop()
    try:
        for attempt in range(5):  # the first calls find out (with retries), then the open circuit answers
            started = time.perf_counter()
            response = api.match(
                photo(people()[IDS[1]][attempt]), headers={"X-Request-ID": f"down-{attempt}"}
            )
            seconds = time.perf_counter() - started
            assert response.status_code == 503 and error_code(response) == "ai_unavailable"
            assert seconds < 1.0, f"attempt {attempt} took {seconds:.2f} s"
            assert int(response.headers["Retry-After"]) >= 1
        assert (
            api.match(query).status_code == 503
        )  # a cached photo is not answered while the versions are unknown
        assert api("GET", "/readyz", key=None).status_code == 503
        assert api("GET", "/healthz", key=None).status_code == 200  # alive: the gateway itself is fine
        logged = admin("GET", "/v1/admin/failures?request_id=down-0").json()["failures"]
        kinds = {(f["kind"], f["code"]) for f in logged}
        assert kinds == {("upstream", "upstream_failure"), ("rejected", "ai_unavailable")}, logged
        assert any("Connect" in f["reason"] for f in logged if f["kind"] == "upstream")
        last = admin("GET", "/v1/admin/failures?request_id=down-4").json()["failures"]
        assert [f["kind"] for f in last] == ["rejected"]  # the open circuit answered without trying
    finally:
        ai_server.start()
    deadline = time.time() + RESET_S + 10
    while time.time() < deadline:  # the circuit lets one trial call through after RESET_S
        response = api.match(query)
        if response.status_code == 200:
            break
        time.sleep(0.3)
    assert response.status_code == 200, response.text
    assert api("GET", "/readyz", key=None).status_code == 200


def test_a_hung_ai_server_costs_one_timeout_not_a_hung_request(gateway, ai_server):
    api = Api(gateway.url, gateway.keys["search"])
    admin = Api(gateway.url, gateway.keys["admin"])
    os.killpg(ai_server.process.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        started = time.perf_counter()
        response = api.match(photo(people()[IDS[1]][3]), headers={"X-Request-ID": "hung-1"})
        seconds = time.perf_counter() - started
    finally:
        os.killpg(ai_server.process.pid, signal.SIGCONT)
    assert response.status_code == 503 and error_code(response) == "ai_unavailable"
    assert TIMEOUT_S - 0.5 < seconds < TIMEOUT_S + 2
    logged = admin("GET", "/v1/admin/failures?request_id=hung-1").json()["failures"]
    assert any(f["kind"] == "upstream" and "Timeout" in f["reason"] for f in logged), logged
    assert api.match(photo(people()[IDS[1]][3])).status_code == 200  # one failure does not open the circuit


def test_rate_limit_per_key(tight):
    api = Api(tight.url, tight.new_key("search"))
    other = Api(tight.url, tight.new_key("search"))
    statuses = [api("GET", "/v1/searches").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = api("GET", "/v1/searches")
    assert error_code(refused) == "rate_limited" and 1 <= int(refused.headers["Retry-After"]) <= 2
    assert other("GET", "/v1/searches").status_code == 200  # the limit is per key


def test_overload_is_refused_with_retry_after_not_queued(tight):
    keys = [tight.new_key("search") for _ in range(8)]
    images = [photo(people()[IDS[2 + i]][0]) for i in range(8)]  # all different: no cache hits

    def upload(i):
        return Api(tight.url, keys[i]).match(images[i])

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(upload, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert 503 in statuses and 200 in statuses, statuses
    assert set(statuses) <= {200, 422, 503}, statuses
    for response in responses:
        if response.status_code == 503:
            assert error_code(response) == "overloaded" and int(response.headers["Retry-After"]) >= 1


def test_retention_purges_old_searches_and_their_images(tight):
    api = Api(tight.url, tight.new_key("search"))
    image = photo(people()[IDS[12]][1])
    result = api.match(image)
    assert result.status_code == 200, result.text
    search_id = result.json()["search_id"]
    stored = list((tight.data_dir / "images").glob("*/*"))
    assert stored and api("GET", f"/v1/searches/{search_id}").status_code == 200
    time.sleep(RETENTION_S + 1.5)
    assert api("GET", f"/v1/searches/{search_id}").status_code == 404
    assert api("GET", "/v1/searches").json()["total"] == 0
    assert not list((tight.data_dir / "images").glob("*/*"))


def test_a_database_that_has_to_wait_does_not_stall_other_requests(gateway):
    """Another process holds SQLite's write lock (as a backup might): a refusal, whose failure record must
    wait for it, waits; /healthz meanwhile answers at once, because no database call runs on the loop."""
    database = sqlite3.connect(gateway.data_dir / "gateway.sqlite3", isolation_level=None)
    database.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(1) as pool:
        try:
            waiting = pool.submit(
                requests.get, gateway.url + "/v1/searches", headers={"X-Request-ID": "db-wait"}, timeout=30
            )
            time.sleep(0.3)  # the 401's failure record is now waiting for the lock
            latencies = []
            for _ in range(8):
                started = time.perf_counter()
                assert requests.get(gateway.url + "/healthz", timeout=5).status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.1)
            assert not waiting.done(), "the refusal should still be waiting for the database"
        finally:
            database.execute("ROLLBACK")
            database.close()
        assert waiting.result().status_code == 401
    assert max(latencies) < 2.0, latencies  # blocked, the first would wait out the 10 s busy timeout
    admin = Api(gateway.url, gateway.keys["admin"])
    logged = admin("GET", "/v1/admin/failures?request_id=db-wait").json()["failures"]
    assert [(f["status"], f["code"]) for f in logged] == [(401, "unauthorized")]
