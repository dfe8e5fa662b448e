"""A real PostgreSQL for tests: its own cluster in a temporary folder on a free loopback port (never a
server of the machine), one database per test or module made and dropped through `database()`.

`initdb` refuses to run as root, so as root the cluster belongs to the `postgres` user (`runuser`); as
anyone else it is the caller's own. Connections need the superuser's password (scram-sha-256 on TCP), so
the URLs the tests hand to the gateway carry user and password like a deployment's would. Durability is
off (fsync, synchronous_commit): a test cluster trades crash safety for speed."""

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .processes import free_port

SEARCH_PATH = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"


def binaries() -> Path | None:
    """The folder with initdb and pg_ctl, or None when PostgreSQL is not installed here."""
    for folder in [*(Path(p) for p in SEARCH_PATH), *(Path(p) for p in os.get_exec_path())]:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here (for testkit.require), or None."""
    if binaries() is None:
        return "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: initdb refuses root"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return "running as root and there is no postgres user to own the cluster"
    return None


class PostgresCluster:
    """initdb + pg_ctl start on a free port; `url(name)` for the gateway, `database()` per test."""

    def __init__(self) -> None:
        self.bin = binaries()
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.root = Path(tempfile.mkdtemp(prefix="testkit-postgres-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.log = self.root / "postgres.log"
        self._count = 0

    def _as_owner(self, *command: str) -> list[str]:
        as_root = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        return [*as_root, *command]

    def start(self) -> "PostgresCluster":
        self.sockets.mkdir(parents=True)
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SUPERUSER)
            for path in (self.root, self.sockets, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--no-sync"]
        initdb += [f"--pwfile={password_file}", "--auth-host=scram-sha-256", "--auth-local=trust"]
        subprocess.run(self._as_owner(*initdb), check=True, capture_output=True)
        password_file.unlink()
        return self.start_server()

    def start_server(self) -> "PostgresCluster":
        """The server of the initialised cluster (again, after `stop_server`: an outage that ends)."""
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        start = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options]
        done = subprocess.run(self._as_owner(*start, "-w", "start"), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr}{self.log_tail()}")
        return self

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""

    def stop_server(self) -> None:
        """The server down, its data kept (fast shutdown: open connections are cut, as in an outage)."""
        if (self.data / "postmaster.pid").is_file():
            stop = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            subprocess.run(self._as_owner(*stop), capture_output=True)

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        """postgresql://user:password@127.0.0.1:port/database, as GATEWAY_DATABASE_URL takes it."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """One statement outside a transaction (CREATE and DROP DATABASE need that)."""
        import psycopg  # development venv only; imported here so that testkit imports without it

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            connection.execute(sql)

    def create_database(self, prefix: str = "test") -> str:
        self._count += 1
        name = f"{prefix}_{self._count}_{secrets.token_hex(3)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def database(self, prefix: str = "test") -> Iterator[str]:
        """A new empty database's URL, dropped afterwards (connections still open are ended)."""
        name = self.create_database(prefix)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)
