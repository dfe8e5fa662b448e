"""The ai-server's configuration: `AI_SERVER_*` environment variables, typed and checked in one place.

| variable | default | meaning |
|---|---|---|
| AI_SERVER_HOST | 127.0.0.1 | address to bind (0.0.0.0 in a container) |
| AI_SERVER_PORT | 5000 | port (1-65535) |
| AI_SERVER_DATA_DIR | data/ai-server | gallery: SQLite, aligned crops, thumbnails |
| AI_SERVER_WEIGHTS_DIR | model-weights of the checkout | the manifest and weights |
| AI_SERVER_MODEL | the manifest's default | model to serve |
| AI_SERVER_VECTOR | embedding | or heatmap_vector (the paper's 16,384-d map) |
| AI_SERVER_MAX_IMAGE_BYTES | 10485760 | upload size limit (413 above) |
| AI_SERVER_MAX_PIXELS | 12000000 | width x height limit, from the header before decoding (413 above) |
| AI_SERVER_MAX_K | 50 | largest k a match may ask for |
| AI_SERVER_MIN_CONFIDENCE | 0.5 | "no_match" unless a candidate's confidence reaches this probability |
| AI_SERVER_ENROLLED_PRIOR | fitted: 0.5 | share of searches whose person is enrolled (shifts confidences) |
| AI_SERVER_WORKERS | 2 | gunicorn worker processes; /readyz is 200 once all of them have loaded |
| AI_SERVER_THREADS | 4 | threads per worker (concurrent requests are batched) |
| AI_SERVER_ONNX_THREADS | all cores | ONNX Runtime threads per worker (0: default; was ..._TORCH_THREADS) |
| AI_SERVER_MAX_BATCH | 8 | faces per batched pass |
| AI_SERVER_BATCH_WAIT_MS | 2 | the longest a request waits for others still decoding, to batch with |
| AI_SERVER_FLIP_TTA | 1 | embed the face and its mirror (as calibration was measured); 1/0, true/false |
| AI_SERVER_INDEX | auto | flat, hnsw, or auto (hnsw from AI_SERVER_HNSW_THRESHOLD faces) |
| AI_SERVER_HNSW_THRESHOLD | 50000 | gallery size where auto switches to HNSW |
| AI_SERVER_POSTGRES_URL | (none) | postgresql://user:pw@host/db: the shared gallery's truth (with the next) |
| AI_SERVER_POSTGRES_PASSWORD_FILE | (none) | file holding the password for that URL (compose: a secret) |
| AI_SERVER_MILVUS_URI | (none) | http://host:19530: the shared gallery's search index |
| AI_SERVER_LOG_LEVEL | info | debug, info, warning, error |
| AI_SERVER_SECRET_FILE | (none) | file holding the secret the gateway sends (serve needs this or the next) |
| AI_SERVER_SECRET | (none) | the shared secret itself (at least 32 characters); prefer the file |
| AI_SERVER_ALLOWED_HOSTS | 127.0.0.1,localhost,::1,ai-server | Host header names served (403 otherwise) |
| AI_SERVER_REQUEST_TIMEOUT_S | 25 | work past this is abandoned (503 timeout); keep it < GATEWAY_TIMEOUT_S |
| AI_SERVER_DECODE_CONCURRENCY | 2 | photos decoded at once per worker (others wait, within their time) |

The secret: `ai-server serve` refuses to start without AI_SERVER_SECRET_FILE or AI_SERVER_SECRET, and
every request but /healthz and /readyz must carry it as `Authorization: Bearer <secret>` (401 otherwise):
the gateway is the only caller. `make run` generates it (data/secrets/ai_server_secret); compose passes it as
the `ai_server_secret` secret (`make secrets`, docs/security.md).

The gallery: without AI_SERVER_POSTGRES_URL it is embedded (SQLite, crop files and FAISS in
AI_SERVER_DATA_DIR; one machine); with it and AI_SERVER_MILVUS_URI it is shared by every replica (PostgreSQL
holds everything, Milvus the search index; AI_SERVER_INDEX picks Milvus's index: auto is Milvus's AUTOINDEX).
See `serving/gallery/__init__.py` and docs/operations.md.

An empty variable means its default. Any other value that does not fit (a word where a number belongs, a
boolean spelt `ture`, `AI_SERVER_VECTOR=bogus`) is refused when the server starts, with a message that names
the variable: `ai-server serve` and the gunicorn config exit with status 2 and that message, before a worker
loads a model, rather than later inside a loader thread where it would only leave /readyz at 503.

Not settings, and not to be set by hand: the gunicorn config gives its workers `PROMETHEUS_MULTIPROC_DIR`
(metrics of all workers, summed by /metrics) and `AI_SERVER_RUNTIME_DIR` (one readiness file per loaded
worker, counted by /readyz); see `serving/workers.py`.
"""

import os
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..core.weights import default_weights_dir

ENV_PREFIX = "AI_SERVER_"
MIN_SECRET_LENGTH = 32


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SettingsError(ValueError):
    """One or more variables have values the server cannot run with; the message names each."""


class Settings(BaseSettings):
    """Read from the environment when constructed; keyword arguments override it (tests, the CLI)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid", validate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(5000, ge=1, le=65535)
    data_dir: Path = Path("data/ai-server")
    weights_dir: Path = Field(default_factory=default_weights_dir)
    model: str | None = None
    vector: Literal["embedding", "heatmap_vector"] = "embedding"
    max_image_bytes: PositiveInt = 10 * 1024 * 1024
    max_pixels: PositiveInt = 12_000_000
    max_k: PositiveInt = 50
    min_confidence: float = Field(0.5, gt=0, lt=1)
    enrolled_prior: float | None = Field(None, gt=0, lt=1)
    workers: PositiveInt = 2
    threads: PositiveInt = 4
    onnx_threads: NonNegativeInt = Field(
        0,
        validate_default=True,
        # the new name first, so that it wins and that an error names it
        validation_alias=AliasChoices(ENV_PREFIX + "ONNX_THREADS", ENV_PREFIX + "TORCH_THREADS"),
    )
    max_batch: PositiveInt = 8
    batch_wait_ms: float = Field(2.0, ge=0)
    flip_tta: bool = True
    index: Literal["auto", "flat", "hnsw"] = "auto"
    hnsw_threshold: PositiveInt = 50_000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    secret_file: Path | None = None
    secret: str | None = Field(None, repr=False)  # never in a repr or log line
    allowed_hosts: str = "127.0.0.1,localhost,::1,ai-server"
    request_timeout_s: float = Field(25.0, gt=0, le=3600)
    decode_concurrency: PositiveInt = 2
    postgres_url: str | None = Field(None, repr=False)  # may hold a password
    postgres_password_file: Path | None = None
    milvus_uri: str | None = None

    @field_validator("onnx_threads")
    @classmethod
    def _all_the_cores(cls, value: int) -> int:
        """0 means every core: a lone request then uses them all, and the graphs run without spinning,
        so busy workers share the cores instead of fighting over them (docs/benchmarks.md section 4)."""
        return value or available_cores()

    @field_validator("log_level", "vector", "index", mode="before")
    @classmethod
    def _lower_case(cls, value):
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _shared_gallery_needs_both(self):
        """PostgreSQL without Milvus (or the other way round) would be a gallery that cannot search or
        has no truth: refuse it at start, naming both variables."""
        if (self.postgres_url is None) != (self.milvus_uri is None):
            raise ValueError("set both AI_SERVER_POSTGRES_URL and AI_SERVER_MILVUS_URI, or neither")
        if self.postgres_url is not None and not self.postgres_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("AI_SERVER_POSTGRES_URL must start with postgresql://")
        if self.milvus_uri is not None and not self.milvus_uri.startswith(("http://", "https://")):
            raise ValueError("AI_SERVER_MILVUS_URI must start with http:// or https://")
        return self

    def postgres_conninfo(self) -> str | None:
        """AI_SERVER_POSTGRES_URL with the password of AI_SERVER_POSTGRES_PASSWORD_FILE, if one is set."""
        if self.postgres_url is None or self.postgres_password_file is None:
            return self.postgres_url
        from psycopg.conninfo import make_conninfo

        try:
            password = self.postgres_password_file.read_text().strip()
        except OSError as err:
            raise SettingsError(
                f"AI_SERVER_POSTGRES_PASSWORD_FILE={str(self.postgres_password_file)!r}: {err.strerror}"
            ) from None
        return make_conninfo(self.postgres_url, password=password)

    def internal_secret(self) -> str:
        """The shared secret of the gateway and this server, from AI_SERVER_SECRET_FILE or AI_SERVER_SECRET;
        a SettingsError when neither (or both) is set or it is too short to be a secret."""
        if (self.secret_file is None) == (self.secret is None):
            raise SettingsError(
                "set exactly one of AI_SERVER_SECRET_FILE or AI_SERVER_SECRET: the server answers only the "
                "gateway, which sends this shared secret (make run and docker compose generate it)"
            )
        if self.secret_file is not None:
            try:
                value = self.secret_file.read_text().strip()
            except OSError as err:
                problem = f"AI_SERVER_SECRET_FILE={str(self.secret_file)!r}: {err.strerror}"
                raise SettingsError(problem) from None
        else:
            value = self.secret.strip()
        if len(value) < MIN_SECRET_LENGTH:
            source = "AI_SERVER_SECRET_FILE" if self.secret_file is not None else "AI_SERVER_SECRET"
            raise SettingsError(f"{source}: the secret must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @property
    def hosts(self) -> set[str]:
        """The allowed Host names, lower case, without ports or IPv6 brackets."""
        return {h.strip().lower().strip("[]") for h in self.allowed_hosts.split(",") if h.strip()}


def load_settings(**overrides) -> Settings:
    """The settings from the environment (and `overrides`), or a `SettingsError` naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise SettingsError(describe(err)) from None


def describe(err: ValidationError) -> str:
    """`AI_SERVER_VECTOR='bogus': Input should be 'embedding' or 'heatmap_vector'`, one line per problem."""
    problems = []
    for problem in err.errors():
        if not problem["loc"]:  # a check of several variables (the shared gallery): its message names them
            problems.append(problem["msg"].removeprefix("Value error, "))
            continue
        field = str(problem["loc"][0]).upper()
        name = field if field.startswith(ENV_PREFIX) else ENV_PREFIX + field  # an alias is the whole name
        problems.append(f"{name}={problem.get('input')!r}: {problem['msg']}")
    return "invalid configuration: " + "; ".join(problems)
