"""Schema migrations, the same for every backend: alembic runs `migrations/` (one history, SQLAlchemy
operations that both SQLite and PostgreSQL understand). Each store calls `upgrade(url)` when it opens,
on a worker thread (alembic is synchronous); operators run it themselves with `gateway db upgrade`, and
see where a database stands with `gateway db current`.

A SQLite database from before migrations (tables, no alembic_version) is adopted in place: the baseline
revision is idempotent, so it only adds what such a database lacks and then records itself."""

import contextlib
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool


def sqlalchemy_url(url: str) -> str:
    """The store's URL as SQLAlchemy spells it: PostgreSQL through psycopg 3, the one driver we ship."""
    scheme, _, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files(__package__) / "migrations"))
    return config


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def engine(url: str) -> Engine:
    """One connection at a time, none kept. SQLite: BEGIN IMMEDIATE ourselves, so that the DDL is inside
    the transaction (Python's driver would leave it outside) and concurrent upgraders queue on the lock."""
    made = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    if made.dialect.name == "sqlite":
        owner_only_file(Path(made.url.database))
        event.listen(made, "connect", _driver_leaves_transactions_to_us)
        event.listen(made, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return made


@contextlib.contextmanager
def connection(url: str) -> Iterator[Connection]:
    """A connection inside one transaction, committed when the block ends without an error."""
    made = engine(url)
    try:
        with made.begin() as db:
            yield db
    finally:
        made.dispose()


def owner_only_file(path: Path) -> None:
    """A SQLite file readable by its owner only from the first byte (its -wal and -shm get the same mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _driver_leaves_transactions_to_us(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None


def upgrade(url: str, to: str = "head") -> str:
    """Bring the database at `url` to the newest revision, or to `to` (nothing to do: nothing changes);
    the revision it is at then."""
    with connection(url) as db:
        config = _config()
        config.attributes["connection"] = db
        command.upgrade(config, to)
    return head() if to == "head" else to


def current(url: str) -> str | None:
    """The revision the database at `url` is at; None before any migration ran."""
    with connection(url) as db:
        return MigrationContext.configure(db).get_current_revision()
