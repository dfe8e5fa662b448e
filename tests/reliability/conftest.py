"""One ai-server and one gateway for the whole reliability run, real processes on loopback, each with its
data directory on a small tmpfs of its own when this machine lets us mount one (root with CAP_SYS_ADMIN,
as on CI), so that "disk full" is a real ENOSPC from the kernel. The process helpers and the gateway's
OpenAPI contract check are testkit's (testing/), the same as the gateway tests use."""

import os
import subprocess
from pathlib import Path

import pytest
import testkit
from testkit.gateway_api import Api

TMPFS_MB = 64


def mount_tmpfs(path: Path, megabytes: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    command = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(path)]
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def volumes(tmp_path_factory):
    """Data roots of the two services: {"ai": Path, "gateway": Path, "tmpfs": bool}."""
    root = tmp_path_factory.mktemp("reliability")
    ai, gw = root / "ai-volume", root / "gateway-volume"
    mounted = [p for p in (ai, gw) if mount_tmpfs(p, TMPFS_MB)]
    yield {"ai": ai, "gateway": gw, "tmpfs": len(mounted) == 2, "root": root}
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(scope="session")
def ai_server(volumes):
    server = testkit.AiServer(
        volumes["ai"] / "gallery",
        log=volumes["root"] / "ai-server.log",  # logs off the small volume
        workers=1,
        threads=8,
        onnx_threads=1,
        log_level="info",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(ai_server, volumes):
    """The run's gateway. Its operator lets search keys see the candidates of a no-match answer (the
    corpus checks that a photo is decoded right by who comes first), and does not limit refused keys
    (the auth matrix sends hundreds); test_security.py starts gateways with the default policy."""
    gw = testkit.Gateway(
        volumes["gateway"] / "gateway",
        ai_server.url,
        log=volumes["root"] / "gateway.log",
        breaker_reset_s=1,
        rate_burst=10000,
        search_show_no_match="true",
        auth_failures_per_minute=1000000,
    )
    gw.keys = {role: gw.new_key(role, name=f"test {role}") for role in ("admin", "enrol", "search")}
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def admin(gateway):
    return Api(gateway.url, gateway.keys["admin"])


@pytest.fixture(scope="session")
def enrol(gateway):
    return Api(gateway.url, gateway.keys["enrol"])


@pytest.fixture(scope="session")
def search(gateway):
    return Api(gateway.url, gateway.keys["search"])


@pytest.fixture(scope="session")
def start_gateway(ai_server, volumes):
    """Starts another gateway in front of the run's ai-server, with its own data folder and `settings`
    (the default policy unless they say otherwise) and an admin, an enrol and a search key; all are
    stopped at the end of the run."""
    started = []

    def start(name: str, **settings) -> testkit.Gateway:
        root = volumes["root"] / name
        gw = testkit.Gateway(root / "gateway", ai_server.url, log=root / "gateway.log", **settings)
        gw.keys = {role: gw.new_key(role, name=f"{name} {role}") for role in ("admin", "enrol", "search")}
        gw.start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
