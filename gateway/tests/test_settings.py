"""Settings are refused at start, with the variable named: in load_settings, and from the real command line
(`gateway`, `python -m gateway`, and `make run`'s scripts/run.py), which exit 2 without a traceback."""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, REPO
from gateway.settings import SettingsError, load_settings

REFUSED = {
    "GATEWAY_RATE_PER_MINUTE": ("0", "GATEWAY_RATE_PER_MINUTE must be >= 1 (got '0')"),
    "GATEWAY_RATE_BURST": ("0", "GATEWAY_RATE_BURST must be >= 1 (got '0')"),
    "GATEWAY_MAX_INFLIGHT": ("0", "GATEWAY_MAX_INFLIGHT must be >= 1 (got '0')"),
    "GATEWAY_PURGE_INTERVAL_S": ("0", "GATEWAY_PURGE_INTERVAL_S must be > 0 (got '0')"),
    "GATEWAY_RETRIES": ("-1", "GATEWAY_RETRIES must be >= 0 (got '-1')"),
    "GATEWAY_PORT": ("80a0", "GATEWAY_PORT must be a whole number (got '80a0')"),
    "GATEWAY_MAX_K": ("5.5", "GATEWAY_MAX_K must be a whole number (got '5.5')"),
    "GATEWAY_TIMEOUT_S": ("fast", "GATEWAY_TIMEOUT_S must be a number (got 'fast')"),
    "GATEWAY_QUEUE_TIMEOUT_S": ("inf", "GATEWAY_QUEUE_TIMEOUT_S must be a finite number (got 'inf')"),
    "GATEWAY_LOG_LEVEL": (
        "loud",
        "GATEWAY_LOG_LEVEL must be one of 'debug', 'info', 'warning' or 'error' (got 'loud')",
    ),
    "GATEWAY_DATABASE_URL": (
        "postgresql://db",
        "GATEWAY_DATABASE_URL must be sqlite:///<path> or postgresql://<user>:<password>@<host>:<port>/"
        "<database> (got 'postgresql://db')",
    ),
    "GATEWAY_AI_SERVER_URL": (
        "ai-server:5000",
        "GATEWAY_AI_SERVER_URL must be an http:// or https:// URL, or several separated by commas"
        " (got 'ai-server:5000')",
    ),
}


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_bad_value_is_refused_with_the_variable_named(clean_env, name):
    value, message = REFUSED[name]
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert refused.value.problems == [message]


def test_every_bad_value_is_reported_at_once(clean_env):
    for name in ("GATEWAY_RATE_PER_MINUTE", "GATEWAY_LOG_LEVEL", "GATEWAY_PORT"):
        clean_env.setenv(name, REFUSED[name][0])
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert sorted(refused.value.problems) == sorted(
        REFUSED[n][1] for n in ("GATEWAY_RATE_PER_MINUTE", "GATEWAY_LOG_LEVEL", "GATEWAY_PORT")
    )


def test_good_values_empty_values_and_the_derived_database(clean_env, tmp_path):
    clean_env.setenv("GATEWAY_LOG_LEVEL", "WARNING")
    clean_env.setenv("GATEWAY_RETENTION_DAYS", "0.5")
    clean_env.setenv("GATEWAY_PORT", "")  # empty: the default
    clean_env.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert (settings.log_level, settings.retention_days, settings.port) == ("warning", 0.5, 8080)
    assert settings.database_url == f"sqlite:///{tmp_path}/gateway.sqlite3"
    assert load_settings(data_dir=Path("rel")).database_url == "sqlite:///rel/gateway.sqlite3"
    replicas = load_settings(ai_server_url="http://a:5000, https://b/ ")
    assert replicas.ai_server_urls == ["http://a:5000", "https://b"]
    assert load_settings().ai_server_urls == ["http://127.0.0.1:5000"]  # one URL: the same as before
    with pytest.raises(SettingsError):
        load_settings(ai_server_url="http://a:5000,ai-server:5000")  # every one must be a URL
    shared = "postgresql://gateway:secret@postgres:5432/gateway"
    assert load_settings(database_url=shared).database_url == shared
    secret = tmp_path / "password"
    secret.write_text("p@ss:w/rd\n")
    with_file = load_settings(database_url="postgresql://gw@db:5432/g", database_password_file=secret)
    assert with_file.store_url() == "postgresql://gw:p%40ss%3Aw%2Frd@db:5432/g"  # quoted, from the file
    with pytest.raises(SettingsError):  # no user to give the password to
        load_settings(database_url="postgresql://db:5432/g", database_password_file=secret).store_url()
    for wrong in ("mysql://db/gateway", "postgresql:///gateway", "postgresql://db:0/gateway"):
        with pytest.raises(SettingsError):
            load_settings(database_url=wrong)
    with pytest.raises(SettingsError) as refused:
        load_settings(rate_per_minit=5)  # a typo in code is caught too
    assert refused.value.problems == ["GATEWAY_RATE_PER_MINIT is not a setting (got 5)"]


def run(command: list, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env = {**clean, "GATEWAY_DATA_DIR": str(tmp_path / "gateway"), **env}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize(
    "command",
    [
        [BIN / "gateway", "serve"],
        [BIN / "gateway", "keys", "create", "--role", "search"],
        [BIN / "python", "-m", "gateway", "serve"],
        [BIN / "python", "-m", "gateway.cli", "keys", "ensure-admin", "--file", "admin.key"],
    ],
    ids=["gateway serve", "gateway keys create", "python -m gateway", "python -m gateway.cli"],
)
def test_the_command_line_exits_with_the_message_not_a_traceback(command, tmp_path):
    done = run(command, tmp_path, GATEWAY_RATE_PER_MINUTE="0", GATEWAY_LOG_LEVEL="loud")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "gateway: GATEWAY_RATE_PER_MINUTE must be >= 1 (got '0')",
        "gateway: GATEWAY_LOG_LEVEL must be one of 'debug', 'info', 'warning' or 'error' (got 'loud')",
    ]
    assert done.stdout == "" and not (tmp_path / "gateway").exists()  # refused before touching anything


def test_make_run_stops_with_the_message(tmp_path):
    """scripts/run.py (what `make run` runs) asks the gateway for its admin key first: a bad setting stops
    it there, with the gateway's message, before the ai-server is started."""
    done = run(
        [BIN / "python", REPO / "scripts/run.py"], tmp_path, GATEWAY_PORT="eighty", DATA_DIR=str(tmp_path)
    )
    assert done.returncode == 2
    assert "gateway: GATEWAY_PORT must be a whole number (got 'eighty')" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_serve_needs_the_ai_servers_secret_and_consistent_limits(tmp_path):
    """Without the shared secret the ai-server would refuse every call: refused at start instead."""
    done = run([BIN / "gateway", "serve"], tmp_path)
    assert done.returncode == 2 and "GATEWAY_AI_SERVER_SECRET_FILE" in done.stderr, done.stderr
    short = run([BIN / "gateway", "serve"], tmp_path, GATEWAY_AI_SERVER_SECRET="too short")
    assert short.returncode == 2 and "at least 32 characters" in short.stderr, short.stderr
    assert "Traceback" not in done.stderr + short.stderr
    with pytest.raises(SettingsError) as refused:
        load_settings(search_max_k=60)
    assert refused.value.problems == ["GATEWAY_SEARCH_MAX_K (60) must be <= GATEWAY_MAX_K"]
    assert load_settings(retention_days=1, photo_retention_days=7).photo_days == 1  # never past the search


def test_python_dash_m_runs_the_same_command_line(tmp_path):
    done = run([BIN / "python", "-m", "gateway", "keys", "create", "--role", "search"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gw_") and (tmp_path / "gateway" / "gateway.sqlite3").is_file()
