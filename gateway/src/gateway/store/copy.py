"""`gateway db copy --from URL --to URL`: everything a store holds, moved to another store (typically from
the embedded SQLite file to PostgreSQL when a second gateway is added): API keys (their hashes: tokens are
never stored, so every issued key keeps working), searches with the faces they listed, feedback, daily
usage and the failure log, with their ids.

Both databases are first brought to the newest revision, so their tables are the same alembic-made ones
and the copy is table by table, row by row, without translating anything. A target that holds any row is
refused (nothing is merged or overwritten), so running the command twice cannot duplicate anything; the
target's writes are one transaction, all or nothing. The stored photos are files under
GATEWAY_DATA_DIR/images, not in the database: they stay where they are (see docs/operations.md)."""

from pathlib import Path

from sqlalchemy import Connection, MetaData, func, select, text

from . import schema

TABLES = ("api_keys", "searches", "search_faces", "feedback", "key_usage", "failures")  # parents first
SERIAL = ("feedback", "failures")  # PostgreSQL's sequences must continue after the copied ids
BATCH = 1000


class TargetNotEmpty(RuntimeError):
    """The target store already holds data: copying into it would merge two stores."""


def copy_store(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row; {table: rows copied}. Synchronous: a command's whole job, never on an event loop."""
    if schema.sqlalchemy_url(source_url) == schema.sqlalchemy_url(target_url):
        raise ValueError("the source and the target are the same database")
    source_file = Path(source_url.partition("://")[2].removeprefix("/"))
    if source_url.startswith("sqlite:") and not source_file.is_file():
        raise ValueError(f"there is no SQLite database at {source_file}")
    schema.upgrade(source_url)
    schema.upgrade(target_url)
    with schema.connection(source_url) as source, schema.connection(target_url) as target:
        tables = _tables(source)
        filled = [name for name in TABLES if target.scalar(select(func.count()).select_from(tables[name]))]
        if filled:
            raise TargetNotEmpty(f"the target database already has rows in {', '.join(filled)}")
        copied = {name: _copy_table(source, target, tables[name]) for name in TABLES}
        if target.dialect.name == "postgresql":
            for name in SERIAL:
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                target.execute(
                    text(f"SELECT setval({sequence}, COALESCE(MAX(id), 0) + 1, false) FROM {name}")
                )
    return copied


def _tables(connection: Connection):
    metadata = MetaData()
    metadata.reflect(connection, only=TABLES)
    return metadata.tables


def _copy_table(source: Connection, target: Connection, table) -> int:
    order = list(table.primary_key.columns)
    rows = source.execute(select(table).order_by(*order)).mappings()
    count = 0
    while batch := rows.fetchmany(BATCH):
        target.execute(table.insert(), [dict(row) for row in batch])
        count += len(batch)
    return count
