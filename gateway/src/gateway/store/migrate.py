"""Schema migrations at `open()`, run in a short-lived child process so that a serving gateway never
imports alembic and SQLAlchemy: they would stay in its memory (about 23 MiB, a tenth of its budget under
60 parallel 10 MiB uploads) for the life of the process, for something it needs once.

A store first reads its database's revision with its own driver; a database already at `HEAD` starts
nothing. Otherwise the child (`python -m gateway.store.migrate`) runs `schema.upgrade`. The URL travels
in the child's environment, never in its argv, where `ps` would show a password to every user. The child
reports a failure as one JSON line, so the store raises what it raised before: OSError (ENOSPC for a full
disk) and ConnectionError for a database it cannot reach."""

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

HEAD = "0002"  # the newest revision under migrations/versions (test_store checks it is alembic's head)
URL_VARIABLE = "GATEWAY_MIGRATE_URL"


def sqlite_revision(path: Path) -> str | None:
    """The revision a SQLite file is at, read-only (a missing file stays missing); None before any."""
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no alembic_version: a new or a pre-migration database
        return None
    return row[0] if row else None


def upgrade_in_child(url: str) -> None:
    """Bring the database at `url` to HEAD in a child process; its failure raised here, typed."""
    env = {**os.environ, URL_VARIABLE: url}
    done = subprocess.run([sys.executable, "-m", __name__], env=env, capture_output=True, text=True)
    if done.returncode == 0:
        return
    try:
        failure = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the schema migration failed: {done.stderr.strip()[-2000:]}") from None
    if failure["kind"] == "unreachable":
        raise ConnectionError(failure["message"])
    if failure["kind"] == "os":
        raise OSError(failure["errno"], failure["message"])
    raise RuntimeError(f"the schema migration failed: {failure['message']}")


def _failure(err: BaseException) -> dict:
    """What went wrong, in the terms the parent raises: a full disk, an unreachable server, or else."""
    import psycopg  # the child only; a SQLite-only install has it too (it is in the lock)

    cause = getattr(err, "orig", None) or err  # SQLAlchemy wraps the driver's error
    full = isinstance(cause, psycopg.errors.DiskFull) or (
        isinstance(cause, sqlite3.OperationalError)
        and (cause.sqlite_errorcode == sqlite3.SQLITE_FULL or "full" in str(cause))
    )
    if full:
        return {"kind": "os", "errno": errno.ENOSPC, "message": f"the database is full: {cause}"}
    if isinstance(cause, OSError):
        return {"kind": "os", "errno": cause.errno, "message": str(cause)}
    if isinstance(cause, psycopg.OperationalError):
        return {"kind": "unreachable", "message": str(cause)}
    return {"kind": "other", "message": f"{type(cause).__name__}: {cause}"}


def main() -> None:
    from . import schema  # imported here only: the child is the one process that loads alembic

    try:
        schema.upgrade(os.environ[URL_VARIABLE])
    except Exception as err:  # every failure goes back to the parent, typed
        print(json.dumps(_failure(err)))
        sys.exit(1)


if __name__ == "__main__":
    main()
