"""The gateway's only data access: `Store` (base.py) says what a backend must do, `SqliteStore` (sqlite.py)
does it; `store_for(url)` picks the backend from the URL's scheme. A PostgreSQL backend is one more class
and one more entry in BACKENDS; nothing outside this package touches a database."""

from collections.abc import Callable
from pathlib import Path

from .base import Erased, Failure, Feedback, KeyInfo, Search, Store
from .keys import ROLES, ApiKey
from .sqlite import SqliteStore


def _sqlite(location: str) -> Store:
    # sqlite:///relative/x.db and sqlite:////absolute/x.db
    return SqliteStore(Path(location.removeprefix("/")))


BACKENDS: dict[str, Callable[[str], Store]] = {"sqlite": _sqlite}


def store_for(url: str) -> Store:
    """The store for a database URL, not yet open: `await store.open()`, or `async with`."""
    scheme, sep, location = url.partition("://")
    if scheme not in BACKENDS or not sep:
        raise ValueError(f"unsupported database URL {url!r}: this gateway implements {', '.join(BACKENDS)}")
    return BACKENDS[scheme](location)


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
]
