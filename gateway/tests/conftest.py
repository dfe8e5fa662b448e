"""Real processes on loopback: one ai-server for the session (the shipped weights; models load once) and
gateways started per module with the configuration each test module needs. The store's tests and the
API suite run once per backend: `store_url` (per test) and `backend_url` (per module, a gateway's
GATEWAY_DATABASE_URL) are SQLite files and databases of the session's own PostgreSQL cluster. Every
response a test gets through `Api` is checked against the OpenAPI file: its status must be documented and
its body valid.
The process, photo and contract helpers are testkit's (testing/), shared with the other suites."""

from pathlib import Path

import pytest
import testkit
from testkit.gateway_api import SPEC, Api, check_contract, error_code  # noqa: F401 (the tests' imports)
from testkit.postgres import PostgresCluster, missing_reason

REPO, BIN = testkit.REPO, testkit.BIN


def pytest_sessionstart(session):
    if not (testkit.data_dir() / "faces112").is_dir():
        raise pytest.UsageError(f"face data not found at {testkit.data_dir()}; set FACE_DATA_DIR")


class AiServer(testkit.AiServer):
    """The session's ai-server: gallery and log under `root`, one worker with 8 request threads."""

    def __init__(self, root: Path):
        settings = {"workers": 1, "threads": 8, "onnx_threads": 1, "log_level": "info"}
        super().__init__(root / "gallery", log=root / "ai-server.log", **settings)


class Gateway(testkit.Gateway):
    """A gateway under test: data and log under `root`, `settings` as GATEWAY_* variables."""

    def __init__(self, root: Path, ai_url: str, **settings):
        super().__init__(root / "gateway", ai_url, log=root / "gateway.log", **settings)

    def new_key(self, role: str) -> str:
        return super().new_key(role, name=f"test {role}")


@pytest.fixture(scope="session")
def ai_server(tmp_path_factory):
    server = AiServer(tmp_path_factory.mktemp("ai-server"))
    server.start()
    yield server
    server.stop()


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL cluster, started on first use (a skip here, a failure under CI=true, when
    PostgreSQL is not installed)."""
    reason = missing_reason()
    testkit.require(reason is None, str(reason))
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


def _database(request, folder: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{folder}/gateway.sqlite3"
    else:
        with request.getfixturevalue("postgres").database() as url:
            yield url


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """An empty database of each backend, for one test."""
    yield from _database(request, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(request, tmp_path_factory):
    """An empty database of each backend for one module's gateway (the module runs once per backend)."""
    yield from _database(request, tmp_path_factory.mktemp(request.param))
