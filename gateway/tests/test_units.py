"""The pieces without a network: the contract covers every route, keys, the store, the circuit breaker."""

import time

import jsonschema
import pytest
from conftest import REPO, SPEC
from gateway.app import create_app
from gateway.settings import Settings
from gateway.store import Store
from gateway.upstream import CircuitBreaker


def test_every_route_is_in_the_openapi_file_and_the_file_is_valid(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, web_dir=str(tmp_path)))
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method not in ("HEAD", "*") and route.resource.canonical != "/{tail}"
    }
    documented = {(method, path) for path, ops in SPEC["paths"].items() for method in ops}
    assert routes == documented
    for schema in SPEC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_keys_are_stored_hashed_and_checked(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/g.sqlite3")
    key_id, token = store.create_key("t", "search")
    assert store.check_key(token) == (key_id, "search")
    assert token.split("_", 2)[2] not in (tmp_path / "g.sqlite3").read_bytes().decode(errors="replace")
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), f"gw_{key_id}_", "gw__x", "x", ""):
        assert store.check_key(wrong) is None
    with pytest.raises(ValueError):
        store.create_key("t", "root")
    with pytest.raises(ValueError):
        Store("postgresql://db/gateway")


def _search(search_id: str, person: str, created_at: float, sha: str) -> dict:
    match = {"person_id": person, "face_id": 1, "name": "N", "metadata": {"a": 1}, "thumbnail_url": "/t"}
    return {
        "id": search_id,
        "key_id": "k",
        "created_at": created_at,
        "image_sha": sha,
        "image_type": "image/jpeg",
        "heatmap_sha": None,
        "k": 5,
        "cached": False,
        "result": {"matches": [match]},
    }


def test_redaction_and_retention(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/g.sqlite3")
    now = time.time()
    store.add_search(_search("a" * 32, "p1", now - 100, "shared"))
    store.add_search(_search("b" * 32, "p2", now, "shared"))
    store.add_search(_search("c" * 32, "p1", now - 100, "only-old"))
    assert store.redact_person("p1", face_id=1) == 2
    assert store.get_search("a" * 32)["result"]["matches"][0]["name"] == "N"  # one photo gone, not the person
    assert store.redact_person("p1") == 2
    match = store.get_search("a" * 32)["result"]["matches"][0]
    assert match == {
        "person_id": "p1",
        "face_id": 1,
        "name": None,
        "metadata": {},
        "thumbnail_url": None,
        "deleted": True,
    }
    assert store.get_search("b" * 32)["result"]["matches"][0]["name"] == "N"
    assert store.purge_searches(now - 10) == {"only-old"}  # "shared" is still used by a newer search
    assert store.get_search("a" * 32) is None and store.list_searches(None, 0, 10)[1] == 1


def test_circuit_breaker_opens_and_lets_one_trial_through():
    breaker = CircuitBreaker(failures=2, reset_s=0.2)
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow()
    time.sleep(0.25)
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.failure()  # the trial failed: open again at once
    assert not breaker.allow()
    time.sleep(0.25)
    assert breaker.allow() and not breaker.allow()
    breaker.abandon()  # the trial's caller went away: the next caller gets the trial
    assert breaker.allow()
    breaker.success()
    assert breaker.allow() and breaker.allow()


def test_service_pins_are_exact_and_agree_with_the_development_lock():
    def pins(path):
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        pairs = [line.partition("==") for line in lines if line]
        assert all(sep for _, sep, _ in pairs), f"{path.name}: every line must be name==version"
        return {name.lower().replace("_", "-"): version for name, _, version in pairs}

    service, lock = pins(REPO / "gateway/requirements.txt"), pins(REPO / "requirements-dev.lock")
    assert {"aiohttp", "pillow", "prometheus-client"} <= set(service)
    for name, version in service.items():
        assert lock.get(name) == version, f"{name}: {version} in the gateway, {lock.get(name)} in the lock"
