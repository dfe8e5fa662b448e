"""The gateway's configuration: `GATEWAY_*` environment variables, typed and checked once, at start.

A value that cannot be used (not a number, out of range, an unknown log level or database scheme) stops
the gateway before it serves anything, with a message that names the variable; an empty variable means
its default. GATEWAY_DATABASE_URL takes sqlite:///<path> (embedded, one gateway) or
postgresql://<user>:<password>@<host>:<port>/<database> (several gateways on one database). `gateway
serve` also needs the ai-server's shared secret (GATEWAY_AI_SERVER_SECRET_FILE or GATEWAY_AI_SERVER_SECRET).

Shared or per instance, when several gateways run: what lives in the database holds across all of them
(API keys and their revocation, stored searches and feedback, the daily and stored-bytes quotas, the
failure log); the token buckets (GATEWAY_RATE_*, GATEWAY_AUTH_FAILURES_PER_MINUTE), the concurrency and
queue limits, the body budget, the result cache and the circuit breaker are per instance: N gateways
allow N times those rates (a load balancer with sticky keys, or a rate limit in front, makes them global).

| variable | default | meaning |
|---|---|---|
| GATEWAY_HOST | 127.0.0.1 | address to bind (0.0.0.0 in a container) |
| GATEWAY_PORT | 8080 | the public port (1-65535) |
| GATEWAY_AI_SERVER_URL | http://127.0.0.1:5000 | the ai-server (http/https, not exposed); replicas: a,b |
| GATEWAY_DATA_DIR | data/gateway | database and stored images |
| GATEWAY_DATABASE_URL | sqlite:///<data dir>/gateway.sqlite3 | searches, feedback, keys; or postgresql:// |
| GATEWAY_DATABASE_PASSWORD_FILE | (none) | file with the PostgreSQL password (instead of in the URL) |
| GATEWAY_WEB_DIR | mobile-app/dist of the checkout, if present | static web app served at / |
| GATEWAY_CORS_ORIGINS | (none) | comma-separated origins allowed to call the API, or * |
| GATEWAY_AI_SERVER_SECRET_FILE | (none) | file with the secret shared with the ai-server (`serve` needs it) |
| GATEWAY_AI_SERVER_SECRET | (none) | the shared secret itself, instead of the file (at least 32 characters) |
| GATEWAY_MAX_IMAGE_BYTES | 10485760 | upload size limit per image (413 above; >= 1) |
| GATEWAY_MAX_PIXELS | 12000000 | width x height limit (413 above; >= 1) |
| GATEWAY_MAX_K | 50 | largest k an enrol or admin key may ask for (>= 1) |
| GATEWAY_SEARCH_MAX_K | 5 | largest k a search key may ask for (1 to GATEWAY_MAX_K) |
| GATEWAY_SEARCH_METADATA_FIELDS | (none) | comma-separated metadata fields a search key sees (no others) |
| GATEWAY_SEARCH_SHOW_NO_MATCH | false | a search key sees the candidates of a no-match answer too |
| GATEWAY_BODY_BUDGET_BYTES | 67108864 | bytes of request bodies in memory at once (more wait, then 503) |
| GATEWAY_BODY_TIMEOUT_S | 20 | a request body must arrive within this (408 after; > 0) |
| GATEWAY_TIMEOUT_S | 30 | total timeout of one upstream inference call (> 0) |
| GATEWAY_CONNECT_TIMEOUT_S | 1 | timeout to connect to the ai-server (> 0) |
| GATEWAY_RETRIES | 2 | extra attempts for failed upstream calls (see upstream.py: which, where; >= 0) |
| GATEWAY_BREAKER_FAILURES | 3 | consecutive failures, no replica left, that open the circuit (>= 1) |
| GATEWAY_BREAKER_RESET_S | 5 | how long the circuit stays open before one trial call (>= 0) |
| GATEWAY_MAX_INFLIGHT | 8 | matches/enrolments sent to the ai-server at once (>= 1; per instance) |
| GATEWAY_MAX_QUEUE | 64 | requests allowed to wait for a slot (503 + Retry-After above; >= 0) |
| GATEWAY_QUEUE_TIMEOUT_S | 10 | longest wait for a slot (503 + Retry-After after; > 0) |
| GATEWAY_RATE_PER_MINUTE | 300 | requests per minute per API key, per instance (429 + Retry-After; >= 1) |
| GATEWAY_RATE_BURST | 60 | requests a key may make at once, per instance, before the rate applies (>= 1) |
| GATEWAY_CACHE_ENTRIES | 512 | match results kept in memory (0: no cache) |
| GATEWAY_RETENTION_DAYS | 30 | searches (and their images) older than this are purged (> 0, e.g. 0.5) |
| GATEWAY_PHOTO_RETENTION_DAYS | 7 | stored query photos and heatmaps go sooner (> 0; at most the retention) |
| GATEWAY_QUOTA_SEARCHES_PER_DAY | 2000 | matches one key may make per UTC day, all instances (429) |
| GATEWAY_QUOTA_STORED_BYTES | 104857600 | bytes of photos and heatmaps one key's searches keep (429 above) |
| GATEWAY_AUTH_FAILURES_PER_MINUTE | 30 | refused keys per client address, per instance (429, not logged) |
| GATEWAY_HSTS_MAX_AGE_S | 0 | Strict-Transport-Security max-age; set it when served over HTTPS (0: off) |
| GATEWAY_PURGE_INTERVAL_S | 3600 | how often the retention purge runs (> 0) |
| GATEWAY_LOG_LEVEL | info | debug, info, warning, error |
"""

from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .store import url_problem

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = Path("data/gateway")
MIN_SECRET_LENGTH = 32
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
    database_password_file: Path | None = None
    web_dir: str = ""  # empty: mobile-app/dist of the checkout when it exists
    cors_origins: str = ""
    ai_server_secret_file: Path | None = None
    ai_server_secret: str | None = Field(None, repr=False)  # never in a repr or a log line
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_pixels: int = Field(12_000_000, ge=1)
    max_k: int = Field(50, ge=1)
    search_max_k: int = Field(5, ge=1)
    search_metadata_fields: str = ""
    search_show_no_match: bool = False
    body_budget_bytes: int = Field(64 * 1024 * 1024, ge=1)
    body_timeout_s: float = Field(20.0, gt=0)
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
    photo_retention_days: float = Field(7.0, gt=0)
    quota_searches_per_day: int = Field(2000, ge=1)
    quota_stored_bytes: int = Field(100 * 1024 * 1024, ge=1)
    auth_failures_per_minute: float = Field(30.0, ge=1)
    hsts_max_age_s: int = Field(0, ge=0)
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

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        """Limits that only make sense together (each message names the variable to change)."""
        if self.search_max_k > self.max_k:
            raise ValueError(f"GATEWAY_SEARCH_MAX_K ({self.search_max_k}) must be <= GATEWAY_MAX_K")
        if self.body_budget_bytes < self.max_image_bytes:
            raise ValueError("GATEWAY_BODY_BUDGET_BYTES must be >= GATEWAY_MAX_IMAGE_BYTES")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("ai_server_url")
    @classmethod
    def _http_urls(cls, value: str) -> str:
        """Refused here rather than on the first match: a wrong URL would otherwise look like an outage."""
        urls = [u.strip() for u in value.split(",")]
        if not all(_http_url(u) for u in urls):
            raise ValueError("must be an http:// or https:// URL, or several separated by commas")
        return ",".join(urls)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def ai_server_urls(self) -> list[str]:
        """The ai-server replicas, in the order given (one, or several behind one gateway)."""
        return [u.rstrip("/") for u in self.ai_server_url.split(",")]

    @property
    def web_root(self) -> Path | None:
        if self.web_dir:
            return Path(self.web_dir) if Path(self.web_dir).is_dir() else None
        web = REPO / "mobile-app" / "dist"
        return web if web.is_dir() else None

    @property
    def origins(self) -> set[str]:
        return {o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()}

    @property
    def photo_days(self) -> float:
        """How long a search's photo and heatmap are kept: never longer than the search itself."""
        return min(self.photo_retention_days, self.retention_days)

    @property
    def metadata_fields(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.search_metadata_fields.split(",") if f.strip())

    def store_url(self) -> str:
        """GATEWAY_DATABASE_URL with the password of GATEWAY_DATABASE_PASSWORD_FILE put in (read now), so
        that the password lives in a secret file rather than in the environment."""
        if self.database_password_file is None:
            return self.database_url
        try:
            password = quote(self.database_password_file.read_text().strip(), safe="")
        except OSError as err:
            name = str(self.database_password_file)
            raise SettingsError([f"GATEWAY_DATABASE_PASSWORD_FILE {err.strerror} (got {name!r})"]) from None
        scheme, _, rest = self.database_url.partition("://")
        user, at, place = rest.rpartition("@")
        if not at:
            raise SettingsError(["GATEWAY_DATABASE_PASSWORD_FILE needs a user in GATEWAY_DATABASE_URL"])
        return f"{scheme}://{user.partition(':')[0]}:{password}@{place}"

    def upstream_secret(self) -> str:
        """The secret the ai-server expects on every call; a SettingsError when it is missing, doubled or
        too short (`gateway serve` refuses to start without it)."""
        if (self.ai_server_secret_file is None) == (self.ai_server_secret is None):
            raise SettingsError(
                [
                    "set exactly one of GATEWAY_AI_SERVER_SECRET_FILE or GATEWAY_AI_SERVER_SECRET: the "
                    "ai-server answers only callers with its shared secret (make run and compose make it)"
                ]
            )
        if self.ai_server_secret_file is not None:
            try:
                value = self.ai_server_secret_file.read_text().strip()
            except OSError as err:
                name = str(self.ai_server_secret_file)
                raise SettingsError(
                    [f"GATEWAY_AI_SERVER_SECRET_FILE {err.strerror} (got {name!r})"]
                ) from None
        else:
            value = self.ai_server_secret.strip()
        if len(value) < MIN_SECRET_LENGTH:
            source = "GATEWAY_AI_SERVER_SECRET" + ("_FILE" if self.ai_server_secret_file is not None else "")
            raise SettingsError([f"{source}: the secret must be at least {MIN_SECRET_LENGTH} characters"])
        return value


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bad port or IPv6 literal
        return False


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
    "bool_parsing": lambda ctx: "must be true or false",
    "extra_forbidden": lambda ctx: "is not a setting",
}


def _describe(problem: dict) -> str:
    """One pydantic error as `GATEWAY_NAME must be ... (got '...')`: what an operator can act on."""
    if not problem["loc"]:  # a check across settings: its message names the variables
        return str(problem.get("ctx", {}).get("error", problem["msg"]))
    field = str(problem["loc"][0])
    phrase = PHRASES.get(problem["type"])
    said = phrase(problem.get("ctx", {})) if phrase else problem["msg"][:1].lower() + problem["msg"][1:]
    return f"GATEWAY_{field.upper()} {said} (got {problem['input']!r})"
