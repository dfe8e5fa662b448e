"""`gateway` command line: serve the API, manage API keys (a key is shown once; only its hash is stored):
create (with a role and an expiry), list, revoke, and the local admin key of a first start; and the
database: upgrade it to the newest schema (`db upgrade`, which every start also does), say which revision
it is at (`db current`), copy one store into another (`db copy --from sqlite:///... --to postgresql://...`).

Settings are read before any command runs: a bad GATEWAY_* value stops it with one line per problem on
stderr and exit status 2, never a traceback."""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from .settings import Settings, SettingsError, load_settings
from .store import ROLES, store_for, url_problem

BAD_SETTINGS = 2
NOT_FOUND = 1


def write_secret(path: Path, text: str) -> None:
    """A file only its owner can read, created with that mode (never world-readable for a moment)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def expiry(days: float | None) -> float | None:
    return None if days is None else time.time() + days * 86400


def positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of days") from None
    if not 0 < days < 1e6:
        raise argparse.ArgumentTypeError("more than 0 days")
    return days


async def create_key(settings: Settings, args: argparse.Namespace) -> int:
    async with store_for(settings.store_url()) as store:
        key_id, token = await store.create_key(args.name, args.role, expiry(args.expires_days))
    if args.file:
        write_secret(Path(args.file), token)
        print(f"{args.role} key {key_id} written to {args.file}")
    else:
        print(token)
    return 0


async def list_keys(settings: Settings, args: argparse.Namespace) -> int:
    """One JSON object per key (id, name, role, dates, active): for people and scripts alike."""
    async with store_for(settings.store_url()) as store:
        for key in await store.list_keys():
            print(json.dumps(key))
    return 0


async def revoke_key(settings: Settings, args: argparse.Namespace) -> int:
    async with store_for(settings.store_url()) as store:
        key = await store.revoke_key(args.key_id)
    if key is None:
        print(f"gateway: no API key {args.key_id}", file=sys.stderr)
        return NOT_FOUND
    print(f"revoked {key['role']} key {key['id']}")
    return 0


async def ensure_admin(settings: Settings, args: argparse.Namespace) -> int:
    """For `make run` and compose: one local admin key, made on the very first start only, in a file only
    the owner can read. Once any admin key exists (revoked ones included) nothing is made again, so a
    revoked key stays revoked and a lost file does not mint a new key behind anyone's back."""
    path = Path(args.file)
    async with store_for(settings.store_url()) as store:
        if await store.count_keys("admin") == 0:
            key_id, token = await store.create_key("local admin", "admin")
            write_secret(path, token)
            print(f"created admin API key {key_id}: {path.resolve()}")
        elif path.exists():
            print(f"admin API key: {path.resolve()}")
        else:
            print(
                f"no admin key file at {path.resolve()}; admin keys exist already, so none is made. "
                "An operator makes one with: gateway keys create --role admin --file FILE",
                file=sys.stderr,
            )
    return 0


async def db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    """What every start does, for an operator to run first (a deployment step, or to see it fail)."""
    from .store import schema  # alembic: for the db commands only, never in a serving gateway

    await asyncio.to_thread(schema.upgrade, settings.store_url())
    print(f"database at revision {schema.head()} (newest)")
    return 0


async def db_current(settings: Settings, args: argparse.Namespace) -> int:
    from .store import schema

    print(await asyncio.to_thread(schema.current, settings.store_url()) or "none")
    return 0


async def db_copy(settings: Settings, args: argparse.Namespace) -> int:
    """Every key, search, feedback and failure from --from into the empty database --to."""
    from .store.copy import TargetNotEmpty, copy_store  # SQLAlchemy: as for db_upgrade

    for url in (args.source, args.target):
        if problem := url_problem(url):
            print(f"gateway: {url!r} {problem}", file=sys.stderr)
            return BAD_SETTINGS
    try:
        copied = await asyncio.to_thread(copy_store, args.source, args.target)
    except (TargetNotEmpty, ValueError) as err:
        print(f"gateway: {err}; nothing was copied", file=sys.stderr)
        return NOT_FOUND
    print(json.dumps({"copied": copied}))
    return 0


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the API (GATEWAY_* environment variables)")
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it (or write it to --file)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", default="")
    create.add_argument("--file", help="write the key to this file (mode 0600) instead of printing it")
    create.add_argument("--expires-days", type=positive_days, help="it stops working after this many days")
    keys.add_parser("list", help="every key (never its secret), one JSON object a line")
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    ensure = keys.add_parser("ensure-admin", help="on a first start: an admin key in FILE")
    ensure.add_argument("--file", required=True)
    db = commands.add_parser("db", help="the database (GATEWAY_DATABASE_URL)")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="migrate it to the newest schema (every start does this too)")
    db_commands.add_parser("current", help="print the schema revision it is at ('none': not made yet)")
    copy = db_commands.add_parser("copy", help="copy every row of one store into an empty other")
    copy.add_argument(
        "--from", dest="source", required=True, help="e.g. sqlite:///data/gateway/gateway.sqlite3"
    )
    copy.add_argument(
        "--to", dest="target", required=True, help="e.g. postgresql://user:pass@host:5432/gateway"
    )
    return parser


COMMANDS = {
    "keys": {"create": create_key, "list": list_keys, "revoke": revoke_key, "ensure-admin": ensure_admin},
    "db": {"upgrade": db_upgrade, "current": db_current, "copy": db_copy},
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        settings.store_url()  # a password file that cannot be read stops every command
        if args.command == "serve":
            settings.upstream_secret()  # the server alone needs it
    except SettingsError as err:
        for problem in err.problems:
            print(f"gateway: {problem}", file=sys.stderr)
        return BAD_SETTINGS
    if args.command == "serve":
        from .http.app import serve  # only the server needs aiohttp's server side

        serve(settings)
        return 0
    command = COMMANDS[args.command][args.keys_command if args.command == "keys" else args.db_command]
    return asyncio.run(command(settings, args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
