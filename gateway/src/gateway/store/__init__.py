"""The gateway's only data access: `Store` (base.py) says what a backend must do; `SqliteStore` (sqlite.py,
the embedded default: one file, one gateway) and `PostgresStore` (postgres.py: several gateways on one
database) do it; `store_for(url)` picks the backend from the URL's scheme (BACKENDS). Both get their
tables from one history of alembic migrations (schema.py, migrations/), run when a store opens (in a
child process, migrate.py) and by `gateway db upgrade`; what a row means is computed once for both
(records.py). `copy.py` moves everything from one store to another (`gateway db copy`). Nothing outside
this package touches a database."""

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .base import Erased, Failure, Feedback, KeyInfo, Search, Store
from .keys import ROLES, ApiKey
from .sqlite import SqliteStore


def _sqlite(url: str) -> Store:
    # sqlite:///relative/x.db and sqlite:////absolute/x.db
    return SqliteStore(Path(url.partition("://")[2].removeprefix("/")))


def _postgresql(url: str) -> Store:
    from .postgres import PostgresStore  # psycopg and its pool (about 12 MiB) only where they are used

    return PostgresStore(url)


BACKENDS: dict[str, Callable[[str], Store]] = {"sqlite": _sqlite, "postgresql": _postgresql}
URL_FORMS = {
    "sqlite": "sqlite:///<path>",
    "postgresql": "postgresql://<user>:<password>@<host>:<port>/<database>",
}


def url_problem(url: str) -> str | None:
    """Why `url` names no database this gateway can use, or None (for the settings' message)."""
    scheme, sep, rest = url.partition("://")
    usable = scheme in BACKENDS and bool(sep) and bool(rest.strip("/"))
    if usable and scheme == "postgresql":
        try:
            parts = urlsplit(url)
            usable = bool(parts.hostname) and bool(parts.path.strip("/")) and parts.port != 0
        except ValueError:  # a bad port
            usable = False
    return None if usable else f"must be {' or '.join(URL_FORMS.values())}"


def store_for(url: str) -> Store:
    """The store for a database URL, not yet open: `await store.open()`, or `async with`."""
    if url_problem(url):
        raise ValueError(
            f"unsupported database URL {url!r}: this gateway takes {' or '.join(URL_FORMS.values())}"
        )
    return BACKENDS[url.partition("://")[0]](url)


__all__ = [
    "BACKENDS",
    "ROLES",
    "ApiKey",
    "Erased",
    "Failure",
    "Feedback",
    "KeyInfo",
    "Search",
    "SqliteStore",
    "Store",
    "store_for",
    "url_problem",
]
