"""The pieces without a network: the contract covers every route, keys, the store, the circuit breaker."""

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
from conftest import REPO, SPEC
from gateway.http.app import create_app
from gateway.settings import Settings
from gateway.store import store_for
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
    async def check():
        async with store_for(f"sqlite:///{tmp_path}/g.sqlite3") as store:
            key_id, token = await store.create_key("t", "search")
            found = await store.check_key(token)
            assert (found.key_id, found.role) == (key_id, "search")
            assert token.split("_", 2)[2] not in (tmp_path / "g.sqlite3").read_bytes().decode(
                errors="replace"
            )
            for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), f"gw_{key_id}_", "gw__x", "x", ""):
                assert await store.check_key(wrong) is None
            with pytest.raises(ValueError):
                await store.create_key("t", "root")

    asyncio.run(check())
    with pytest.raises(ValueError):
        store_for("postgresql://db/gateway")


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
    asyncio.run(_redaction_and_retention(tmp_path))


async def _redaction_and_retention(tmp_path):
    store = store_for(f"sqlite:///{tmp_path}/g.sqlite3")
    await store.open()
    now = time.time()
    await store.add_search(_search("a" * 32, "p1", now - 100, "shared"))
    await store.add_search(_search("b" * 32, "p2", now, "shared"))
    await store.add_search(_search("c" * 32, "p1", now - 100, "only-old"))
    assert await store.redact_person("p1", face_id=1) == 2
    search = await store.get_search("a" * 32)
    assert search["result"]["matches"][0]["name"] == "N"  # one photo gone, not the person
    assert await store.redact_person("p1") == 2
    match = (await store.get_search("a" * 32))["result"]["matches"][0]
    assert match == {
        "person_id": "p1",
        "face_id": 1,
        "name": None,
        "metadata": {},
        "thumbnail_url": None,
        "deleted": True,
    }
    assert (await store.get_search("b" * 32))["result"]["matches"][0]["name"] == "N"
    assert await store.purge_searches(now - 10) == {"only-old"}  # "shared" is still used by a newer search
    assert await store.get_search("a" * 32) is None and (await store.list_searches(None, 0, 10))[1] == 1
    await store.close()


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
    """What the image installs is a build, not the checkout: the OpenAPI file and the SQLite schema must
    come along, and `python -m gateway` must work from it."""
    source, build = tmp_path / "source", tmp_path / "build"
    shutil.copytree(REPO / "gateway", source, ignore=shutil.ignore_patterns("tests", "*.egg-info", "build"))
    command = [sys.executable, "-c", "import setuptools; setuptools.setup()", "build_py", "-d", str(build)]
    subprocess.run(command, cwd=source, check=True, capture_output=True)
    assert {"openapi.json", "schema.sql"} <= {p.name for p in build.rglob("*") if p.is_file()}
    env = {**os.environ, "PYTHONPATH": str(build), "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    probe = "import gateway, gateway.http.routes.operations as o; print(gateway.__file__, len(o.spec_text()))"
    where = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(build))
    created = [sys.executable, "-m", "gateway", "keys", "create", "--role", "admin"]
    token = subprocess.run(created, env=env, capture_output=True, text=True, check=True).stdout
    assert token.startswith("gw_") and (tmp_path / "data" / "gateway.sqlite3").is_file()
