"""The pieces without a network: the contract covers every route, keys, the store (each backend: the
`store_url` fixture), the circuit breaker."""

import ast
import asyncio
import os
import shutil
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from conftest import REPO, SPEC
from gateway.http.app import create_app
from gateway.settings import Settings
from gateway.store import schema, store_for
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
    for component in SPEC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(component)


def everything_stored(url: str) -> str:
    """Every row of every table as text: what a copy of the database would give away."""
    with schema.connection(url) as db:
        tables = [t for t in sa.inspect(db).get_table_names()]
        return repr([db.execute(sa.text(f"SELECT * FROM {t}")).all() for t in tables])


def test_keys_are_stored_hashed_and_checked(store_url):
    async def check():
        async with store_for(store_url) as store:
            key_id, token = await store.create_key("t", "search")
            found = await store.check_key(token)
            assert (found.key_id, found.role) == (key_id, "search")
            stored = everything_stored(store_url)
            assert key_id in stored and token.split("_", 2)[2] not in stored
            for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), f"gw_{key_id}_", "gw__x", "x", ""):
                assert await store.check_key(wrong) is None
            with pytest.raises(ValueError):
                await store.create_key("t", "root")

    asyncio.run(check())
    with pytest.raises(ValueError):
        store_for("mysql://db/gateway")


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


def test_redaction_erasure_and_retention(store_url):
    asyncio.run(_redaction_erasure_and_retention(store_url))


async def _redaction_erasure_and_retention(store_url):
    store = store_for(store_url)
    await store.open()
    now = time.time()
    await store.add_search(_search("a" * 32, "p1", now - 100, "shared"))
    await store.add_search(_search("b" * 32, "p2", now, "shared"))
    await store.add_search(_search("c" * 32, "p1", now - 100, "only-old"))
    await store.add_feedback("a" * 32, "k", "p1", True, "that is them, call 555-0100")
    one_face = await store.erase_person("p1", face_id=1)
    assert (one_face["searches_redacted"], one_face["images"]) == (2, set())
    search = await store.get_search("a" * 32)
    assert search["result"]["matches"][0]["name"] == "N"  # one photo gone, not the person
    assert search["result"]["matches"][0]["thumbnail_url"] is None and search["image_sha"] == "shared"
    assert await store.erase_person("p1", face_id=1) == one_face  # the same again: nothing new
    await store.add_search(_search("d" * 32, "p1", now - 100, "only-old"))  # shown with face 1 again
    erased = await store.erase_person("p1")
    assert erased == {
        "searches_redacted": 3,
        "searches_deleted": 0,
        "feedback_removed": 1,
        "images": {"only-old"},
    }
    a = await store.get_search("a" * 32)
    assert a["result"]["matches"][0] == {
        "person_id": "p1",
        "face_id": 1,
        "name": None,
        "metadata": {},
        "thumbnail_url": None,
        "deleted": True,
    }
    assert (a["image_sha"], a["heatmap_sha"], a["feedback"]) == ("", None, [])  # the photo may show them
    assert (await store.get_search("b" * 32))["result"]["matches"][0]["name"] == "N"
    assert (await store.erase_person("p1"))["searches_redacted"] == 0  # nothing left to do
    assert await store.purge_searches(now - 10) == set()  # their photos were erased already
    assert await store.get_search("a" * 32) is None and (await store.list_searches(None, 0, 10))[1] == 1
    await store.add_search(_search("e" * 32, "p3", now - 100, "old-photo"))
    assert await store.purge_photos(now - 10) == {"old-photo"}
    assert (await store.get_search("e" * 32))["image_sha"] == ""  # the record stays, the photo goes
    deleted = await store.delete_search("b" * 32)
    assert deleted == {
        "searches_redacted": 0,
        "searches_deleted": 1,
        "feedback_removed": 0,
        "images": {"shared"},
    }
    assert await store.compact()
    await store.close()


def test_keys_roles_expiry_revocation_and_last_use(store_url):
    async def check():
        async with store_for(store_url) as store:
            search_id, search = await store.create_key("app", "search")
            enrol_id, enrol = await store.create_key("case worker", "enrol", expires_at=time.time() + 60)
            _, expired = await store.create_key("old", "search", expires_at=time.time() - 1)
            found = await store.check_key(enrol)
            assert found.may("search") and found.may("enrol") and not found.may("admin")
            assert not (await store.check_key(search)).may("enrol")
            assert await store.check_key(expired) is None
            listed = {k["id"]: k for k in await store.list_keys()}
            assert listed[enrol_id]["last_used_at"] is not None and listed[enrol_id]["active"]
            assert not any(key.get("hash") for key in listed.values())
            revoked = await store.revoke_key(search_id)
            assert revoked["revoked_at"] is not None and not revoked["active"]
            assert await store.check_key(search) is None and await store.revoke_key("nope") is None
            assert await store.count_keys("search") == 2  # revoked and expired keys still count

    asyncio.run(check())


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
    assert {"aiohttp", "pillow", "prometheus-client", "pydantic-settings", "python-json-logger"} <= set(
        service
    )
    for name, version in service.items():
        assert lock.get(name) == version, f"{name}: {version} in the gateway, {lock.get(name)} in the lock"
        assert metadata.version(name) == version, f"{name}: the venv has {metadata.version(name)}"
    project = tomllib.loads((REPO / "gateway/pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, sep, version = requirement.partition("==")
        assert sep, f"pyproject.toml: {requirement!r} is not pinned to an exact version"
        assert service.get(name.lower().replace("_", "-")) == version, f"pyproject.toml: {requirement}"


def test_the_gateway_tests_never_import_the_ai_server():
    """The gateway is a separate deployable (.importlinter keeps its code apart): its tests start the
    ai-server as a process and take their photos from testkit, never from the ai-server's code."""
    for path in sorted(Path(__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {n for n in names if n.split(".")[0] in ("ai_server", "torch")}, path.name


def test_the_built_package_carries_its_data_files(tmp_path):
    """What the image installs is a build, not the checkout: the OpenAPI file and the migrations (alembic's
    environment, template and revisions) must come along, and `python -m gateway` must work from it."""
    source, build = tmp_path / "source", tmp_path / "build"
    shutil.copytree(REPO / "gateway", source, ignore=shutil.ignore_patterns("tests", "*.egg-info", "build"))
    command = [sys.executable, "-c", "import setuptools; setuptools.setup()", "build_py", "-d", str(build)]
    subprocess.run(command, cwd=source, check=True, capture_output=True)
    shipped = {p.name for p in build.rglob("*") if p.is_file()}
    assert {"openapi.json", "env.py", "script.py.mako", "0001_baseline.py"} <= shipped
    env = {**os.environ, "PYTHONPATH": str(build), "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    probe = "import gateway, gateway.http.routes.operations as o; print(gateway.__file__, len(o.spec_text()))"
    where = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(build))
    created = [sys.executable, "-m", "gateway", "keys", "create", "--role", "admin"]
    token = subprocess.run(created, env=env, capture_output=True, text=True, check=True).stdout
    assert token.startswith("gw_") and (tmp_path / "data" / "gateway.sqlite3").is_file()
