"""The gateway's configuration: environment variables with embedded defaults, read in one place.

| variable | default | meaning |
|---|---|---|
| GATEWAY_HOST | 127.0.0.1 | address to bind (0.0.0.0 in a container) |
| GATEWAY_PORT | 8080 | the public port |
| GATEWAY_AI_SERVER_URL | http://127.0.0.1:5000 | the ai-server (never exposed itself) |
| GATEWAY_DATA_DIR | data/gateway | database and stored images |
| GATEWAY_DATABASE_URL | sqlite:///<data dir>/gateway.sqlite3 | searches, feedback, keys, failure log |
| GATEWAY_WEB_DIR | mobile-app/dist of the checkout, if present | static web app served at / |
| GATEWAY_CORS_ORIGINS | (none) | comma-separated origins allowed to call the API, or * |
| GATEWAY_MAX_IMAGE_BYTES | 10485760 | upload size limit per image (413 above) |
| GATEWAY_MAX_PIXELS | 40000000 | width x height limit (413 above) |
| GATEWAY_MAX_K | 50 | largest k a match may ask for |
| GATEWAY_TIMEOUT_S | 30 | total timeout of one upstream inference call |
| GATEWAY_CONNECT_TIMEOUT_S | 1 | timeout to connect to the ai-server |
| GATEWAY_RETRIES | 2 | extra attempts for idempotent upstream calls (GET, DELETE) |
| GATEWAY_BREAKER_FAILURES | 3 | consecutive upstream failures that open the circuit |
| GATEWAY_BREAKER_RESET_S | 5 | how long the circuit stays open before one trial call |
| GATEWAY_MAX_INFLIGHT | 8 | matches/enrolments sent to the ai-server at once |
| GATEWAY_MAX_QUEUE | 64 | requests allowed to wait for a slot (503 + Retry-After above) |
| GATEWAY_QUEUE_TIMEOUT_S | 10 | longest wait for a slot (503 + Retry-After after) |
| GATEWAY_RATE_PER_MINUTE | 300 | requests per minute per API key (429 + Retry-After above) |
| GATEWAY_RATE_BURST | 60 | requests a key may make at once before the per-minute rate applies |
| GATEWAY_CACHE_ENTRIES | 512 | match results kept in memory |
| GATEWAY_RETENTION_DAYS | 30 | stored searches (and their images) older than this are purged |
| GATEWAY_PURGE_INTERVAL_S | 3600 | how often the retention purge runs |
| GATEWAY_LOG_LEVEL | info | debug, info, warning, error |
"""

import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _default_web_dir() -> Path | None:
    web = REPO / "mobile-app" / "dist"
    return web if web.is_dir() else None


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    ai_server_url: str = "http://127.0.0.1:5000"
    data_dir: Path = Path("data/gateway")
    database_url: str = ""  # empty: sqlite under data_dir
    web_dir: str = ""  # empty: mobile-app/dist of the checkout when it exists
    cors_origins: str = ""
    max_image_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_k: int = 50
    timeout_s: float = 30.0
    connect_timeout_s: float = 1.0
    retries: int = 2
    breaker_failures: int = 3
    breaker_reset_s: float = 5.0
    max_inflight: int = 8
    max_queue: int = 64
    queue_timeout_s: float = 10.0
    rate_per_minute: float = 300.0
    rate_burst: int = 60
    cache_entries: int = 512
    retention_days: float = 30.0
    purge_interval_s: float = 3600.0
    log_level: str = "info"

    @classmethod
    def from_env(cls, env=os.environ, **overrides) -> "Settings":
        values = {}
        for f in fields(cls):
            raw = env.get(f"GATEWAY_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            values[f.name] = Path(raw) if issubclass(kind, Path) else kind(raw)
        return cls(**{**values, **overrides})

    def __post_init__(self):
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'gateway.sqlite3'}")

    @property
    def web_root(self) -> Path | None:
        if self.web_dir:
            return Path(self.web_dir) if Path(self.web_dir).is_dir() else None
        return _default_web_dir()

    @property
    def origins(self) -> set[str]:
        return {o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()}
