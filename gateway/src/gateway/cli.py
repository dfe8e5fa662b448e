"""`gateway` command line: serve the API, and create API keys (shown once; only their hash is stored).

Settings are read before any command runs: a bad GATEWAY_* value stops it with one line per problem on
stderr and exit status 2, never a traceback."""

import argparse
import asyncio
import os
import sys
from pathlib import Path

from .settings import Settings, SettingsError, load_settings
from .store import ROLES, store_for

BAD_SETTINGS = 2


def write_secret(path: Path, text: str) -> None:
    """A file only its owner can read, created with that mode (never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


async def create_key(settings: Settings, args: argparse.Namespace) -> None:
    async with store_for(settings.database_url) as store:
        key_id, token = await store.create_key(args.name, args.role)
    if args.file:
        write_secret(Path(args.file), token)
        print(f"{args.role} key {key_id} written to {args.file}")
    else:
        print(token)


async def ensure_admin(settings: Settings, args: argparse.Namespace) -> None:
    """For `make run` and compose: a local admin key on first start, in a file only the owner can read."""
    path = Path(args.file)
    async with store_for(settings.database_url) as store:
        if await store.count_keys("admin") == 0 or not path.exists():
            key_id, token = await store.create_key("local admin", "admin")
            write_secret(path, token)
            print(f"created admin API key {key_id}: {path.resolve()}")
        else:
            print(f"admin API key: {path.resolve()}")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the API (GATEWAY_* environment variables)")
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it (or write it to --file)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", default="")
    create.add_argument("--file", help="write the key to this file (mode 0600) instead of printing it")
    ensure = keys.add_parser("ensure-admin", help="create an admin key in FILE unless one is there")
    ensure.add_argument("--file", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as err:
        for problem in err.problems:
            print(f"gateway: {problem}", file=sys.stderr)
        return BAD_SETTINGS
    if args.command == "serve":
        from .http.app import serve  # only the server needs aiohttp's server side

        serve(settings)
    elif args.keys_command == "create":
        asyncio.run(create_key(settings, args))
    else:
        asyncio.run(ensure_admin(settings, args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
