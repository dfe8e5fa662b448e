"""Settings are typed (pydantic-settings): a value that does not fit is refused when the server starts,
with a message naming the variable, never later in a loader thread or as a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ai_server.serving.http.app import create_app
from ai_server.serving.settings import Settings, SettingsError, available_cores, load_settings

BIN = Path(sys.executable).parent
BAD = [
    ("AI_SERVER_VECTOR", "bogus"),
    ("AI_SERVER_FLIP_TTA", "ture"),
    ("AI_SERVER_PORT", "80a"),
    ("AI_SERVER_WORKERS", "0"),
    ("AI_SERVER_INDEX", "ivf"),
    ("AI_SERVER_BATCH_WAIT_MS", "-1"),
    ("AI_SERVER_ONNX_THREADS", "two"),
]


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AI_SERVER_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_and_values_from_the_environment(clean_env):
    defaults = load_settings()
    assert defaults.vector == "embedding" and defaults.flip_tta is True and defaults.workers == 2
    assert defaults.onnx_threads == available_cores()  # every core, for each of the 2 workers
    for name, value in {
        "AI_SERVER_FLIP_TTA": "off",
        "AI_SERVER_VECTOR": "heatmap_vector",
        "AI_SERVER_WORKERS": "1",
        "AI_SERVER_LOG_LEVEL": "WARNING",
        "AI_SERVER_MODEL": "",  # empty: the default
    }.items():
        clean_env.setenv(name, value)
    s = load_settings(data_dir="/tmp/g")
    assert (s.flip_tta, s.vector, s.workers, s.log_level, s.model) == (
        False,
        "heatmap_vector",
        1,
        "warning",
        None,
    )
    assert s.onnx_threads == available_cores() and str(s.data_dir) == "/tmp/g"
    with pytest.raises(ValueError):
        s.port = 1  # frozen: one configuration per process


def test_the_old_name_of_the_onnx_threads_is_still_read_and_the_new_one_wins(clean_env):
    """Deployments written when the server ran torch set AI_SERVER_TORCH_THREADS: it must not be dropped."""
    clean_env.setenv("AI_SERVER_TORCH_THREADS", "3")
    assert load_settings().onnx_threads == 3
    clean_env.setenv("AI_SERVER_ONNX_THREADS", "1")
    assert load_settings().onnx_threads == 1
    assert load_settings(onnx_threads=2).onnx_threads == 2  # a keyword (tests, the CLI) over both
    clean_env.setenv("AI_SERVER_TORCH_THREADS", "-1")
    clean_env.delenv("AI_SERVER_ONNX_THREADS")
    with pytest.raises(SettingsError, match="AI_SERVER_ONNX_THREADS='-1'"):  # once, not AI_SERVER_AI_SERVER_
        load_settings()


def test_every_setting_is_in_the_documented_table():
    """The settings module's docstring is the one reference (and .env.example is checked against it)."""
    table = sys.modules[Settings.__module__].__doc__
    documented = {row.split("|")[1].strip() for row in table.splitlines() if row.startswith("| AI_SERVER_")}
    assert documented == {"AI_SERVER_" + name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_value_is_refused_naming_the_variable(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()
    with pytest.raises(SettingsError, match=name):  # at once: no loader thread is started
        create_app()


def _start(command: list, name: str, value: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_SERVER_")} | {name: value}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("name", "value"), [("AI_SERVER_VECTOR", "bogus"), ("AI_SERVER_FLIP_TTA", "ture")])
def test_serve_exits_with_the_message_not_a_traceback(name, value):
    for command in (
        [BIN / "ai-server", "serve"],
        [BIN / "gunicorn", "--config", "python:ai_server.serving.gunicorn_conf"],  # the config alone, too
    ):
        result = _start(command, name, value)
        assert result.returncode == 2, (command, result.returncode, result.stderr[-2000:])
        assert f"{name}={value!r}" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_serve_refuses_a_model_the_manifest_does_not_have():
    result = _start([BIN / "ai-server", "serve"], "AI_SERVER_MODEL", "no-such-model")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "AI_SERVER_MODEL='no-such-model'" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_to_start_without_the_gateways_secret(tmp_path):
    """The ai-server answers only the gateway: without a shared secret it would answer anyone."""
    for name, value in (("AI_SERVER_LOG_LEVEL", "info"), ("AI_SERVER_SECRET", "short")):
        result = _start([BIN / "ai-server", "serve"], name, value)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "AI_SERVER_SECRET" in result.stderr and "Traceback" not in result.stderr
    missing = tmp_path / "nope"
    result = _start([BIN / "ai-server", "serve"], "AI_SERVER_SECRET_FILE", str(missing))
    assert result.returncode == 2 and str(missing) in result.stderr, result.stderr[-2000:]
    with pytest.raises(SettingsError):
        create_app(Settings(data_dir=tmp_path))  # the WSGI app itself refuses too


@pytest.mark.parametrize(
    "variables, problem",
    [
        ({"AI_SERVER_POSTGRES_URL": "postgresql://g@db/gallery"}, "set both AI_SERVER_POSTGRES_URL and"),
        ({"AI_SERVER_MILVUS_URI": "http://milvus:19530"}, "set both AI_SERVER_POSTGRES_URL and"),
        (
            {"AI_SERVER_POSTGRES_URL": "mysql://db/g", "AI_SERVER_MILVUS_URI": "http://m:19530"},
            "AI_SERVER_POSTGRES_URL must start with postgresql://",
        ),
        (
            {"AI_SERVER_POSTGRES_URL": "postgresql://db/g", "AI_SERVER_MILVUS_URI": "milvus:19530"},
            "AI_SERVER_MILVUS_URI must start with http://",
        ),
    ],
)
def test_a_half_configured_shared_gallery_is_refused(clean_env, variables, problem):
    """PostgreSQL without Milvus (or a URL of the wrong kind) is refused at start, never a password shown."""
    for name, value in {**variables, "AI_SERVER_SECRET": "s" * 40}.items():
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert problem in str(refused.value) and "s" * 40 not in str(refused.value)


def test_the_postgres_password_comes_from_its_file(clean_env, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("pa ss'word\n")
    settings = load_settings(
        postgres_url="postgresql://gallery@db:5432/gallery",
        milvus_uri="http://m:19530",
        postgres_password_file=secret,
    )
    assert "pa ss'word" not in repr(settings)
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(settings.postgres_conninfo())["password"] == "pa ss'word"
    missing = load_settings(
        postgres_url="postgresql://db/g", milvus_uri="http://m:1", postgres_password_file=tmp_path / "no"
    )
    with pytest.raises(SettingsError, match="AI_SERVER_POSTGRES_PASSWORD_FILE"):
        missing.postgres_conninfo()
