"""The gateway's configuration: `GATEWAY_*` environment variables, typed and checked once, at start.

A value that cannot be used (not a number, out of range, an unknown log level or database scheme) stops
the gateway before it serves anything, with a message that names the variable; an empty variable means
its default. GATEWAY_DATABASE_URL takes sqlite:///<path> (the one store implemented so far).

| variable | default | meaning |
|---|---|---|
| GATEWAY_HOST | 127.0.0.1 | address to bind (0.0.0.0 in a container) |
| GATEWAY_PORT | 8080 | the public port (1-65535) |
| GATEWAY_AI_SERVER_URL | http://127.0.0.1:5000 | the ai-server, http:// or https:// (never exposed itself) |
| GATEWAY_DATA_DIR | data/gateway | database and stored images |
| GATEWAY_DATABASE_URL | sqlite:///<data dir>/gateway.sqlite3 | searches, feedback, keys, failure log |
| GATEWAY_WEB_DIR | mobile-app/dist of the checkout, if present | static web app served at / |
| GATEWAY_CORS_ORIGINS | (none) | comma-separated origins allowed to call the API, or * |
| GATEWAY_MAX_IMAGE_BYTES | 10485760 | upload size limit per image (413 above; >= 1) |
| GATEWAY_MAX_PIXELS | 40000000 | width x height limit (413 above; >= 1) |
| GATEWAY_MAX_K | 50 | largest k a match may ask for (>= 1) |
| GATEWAY_TIMEOUT_S | 30 | total timeout of one upstream inference call (> 0) |
| GATEWAY_CONNECT_TIMEOUT_S | 1 | timeout to connect to the ai-server (> 0) |
| GATEWAY_RETRIES | 2 | extra attempts for idempotent upstream calls (GET, DELETE; >= 0) |
| GATEWAY_BREAKER_FAILURES | 3 | consecutive upstream failures that open the circuit (>= 1) |
| GATEWAY_BREAKER_RESET_S | 5 | how long the circuit stays open before one trial call (>= 0) |
| GATEWAY_MAX_INFLIGHT | 8 | matches/enrolments sent to the ai-server at once (>= 1) |
| GATEWAY_MAX_QUEUE | 64 | requests allowed to wait for a slot (503 + Retry-After above; >= 0) |
| GATEWAY_QUEUE_TIMEOUT_S | 10 | longest wait for a slot (503 + Retry-After after; > 0) |
| GATEWAY_RATE_PER_MINUTE | 300 | requests per minute per API key (429 + Retry-After above; >= 1) |
| GATEWAY_RATE_BURST | 60 | requests a key may make at once before the per-minute rate applies (>= 1) |
| GATEWAY_CACHE_ENTRIES | 512 | match results kept in memory (0: no cache) |
| GATEWAY_RETENTION_DAYS | 30 | searches (and their images) older than this are purged (> 0, e.g. 0.5) |
| GATEWAY_PURGE_INTERVAL_S | 3600 | how often the retention purge runs (> 0) |
| GATEWAY_LOG_LEVEL | info | debug, info, warning, error |
"""

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .store import BACKENDS

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = Path("data/gateway")
LogLevel = Literal["debug", "info", "warning", "error"]


class SettingsError(ValueError):
    """Settings the gateway refuses to start with; `problems` has one line per variable."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """Every setting, typed; read with `load_settings()` so that a bad value becomes a SettingsError."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_ignore_empty=True, frozen=True, extra="forbid", allow_inf_nan=False
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    ai_server_url: str = "http://127.0.0.1:5000"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # empty: sqlite under data_dir (filled in below)
    web_dir: str = ""  # empty: mobile-app/dist of the checkout when it exists
    cors_origins: str = ""
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_pixels: int = Field(40_000_000, ge=1)
    max_k: int = Field(50, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    connect_timeout_s: float = Field(1.0, gt=0)
    retries: int = Field(2, ge=0)
    breaker_failures: int = Field(3, ge=1)
    breaker_reset_s: float = Field(5.0, ge=0)
    max_inflight: int = Field(8, ge=1)
    max_queue: int = Field(64, ge=0)
    queue_timeout_s: float = Field(10.0, gt=0)
    rate_per_minute: float = Field(300.0, ge=1)
    rate_burst: int = Field(60, ge=1)
    cache_entries: int = Field(512, ge=0)
    retention_days: float = Field(30.0, gt=0)
    purge_interval_s: float = Field(3600.0, gt=0)
    log_level: LogLevel = "info"

    @model_validator(mode="before")
    @classmethod
    def _database_under_data_dir(cls, values: Any) -> Any:
        """No GATEWAY_DATABASE_URL: the SQLite file lives in the data directory, wherever that is."""
        if isinstance(values, dict) and not values.get("database_url"):
            data_dir = values.get("data_dir") or DEFAULT_DATA_DIR
            if isinstance(data_dir, str | Path):
                values = {**values, "database_url": f"sqlite:///{Path(data_dir) / 'gateway.sqlite3'}"}
        return values

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("ai_server_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        """Refused here rather than on the first match: a wrong URL would otherwise look like an outage."""
        try:
            parts = urlsplit(value)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a bad port or IPv6 literal
            usable = False
        if not usable:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        scheme, sep, path = value.partition("://")
        if scheme not in BACKENDS or not sep or not path.strip("/"):
            raise ValueError(f"must be one of {', '.join(f'{s}:///<path>' for s in BACKENDS)}")
        return value

    @property
    def web_root(self) -> Path | None:
        if self.web_dir:
            return Path(self.web_dir) if Path(self.web_dir).is_dir() else None
        web = REPO / "mobile-app" / "dist"
        return web if web.is_dir() else None

    @property
    def origins(self) -> set[str]:
        return {o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()}


def load_settings(**overrides: Any) -> Settings:
    """The environment (and overrides, which win), or a SettingsError naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise SettingsError([_describe(problem) for problem in err.errors()]) from None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


PHRASES = {
    "greater_than_equal": lambda ctx: f"must be >= {_number(ctx['ge'])}",
    "greater_than": lambda ctx: f"must be > {_number(ctx['gt'])}",
    "less_than_equal": lambda ctx: f"must be <= {_number(ctx['le'])}",
    "int_parsing": lambda ctx: "must be a whole number",
    "int_from_float": lambda ctx: "must be a whole number",
    "float_parsing": lambda ctx: "must be a number",
    "finite_number": lambda ctx: "must be a finite number",
    "literal_error": lambda ctx: f"must be one of {ctx['expected']}",
    "value_error": lambda ctx: str(ctx["error"]),
    "extra_forbidden": lambda ctx: "is not a setting",
}


def _describe(problem: dict) -> str:
    """One pydantic error as `GATEWAY_NAME must be ... (got '...')`: what an operator can act on."""
    field = str(problem["loc"][0]) if problem["loc"] else "settings"
    phrase = PHRASES.get(problem["type"])
    said = phrase(problem.get("ctx", {})) if phrase else problem["msg"][:1].lower() + problem["msg"][1:]
    return f"GATEWAY_{field.upper()} {said} (got {problem['input']!r})"
