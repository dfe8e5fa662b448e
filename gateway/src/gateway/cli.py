"""`gateway` command line: serve the API, and create API keys (shown once; only their hash is stored)."""

import argparse
import os
import sys
from pathlib import Path

from .settings import Settings
from .store import ROLES, Store


def write_secret(path: Path, text: str) -> None:
    """A file only its owner can read, created with that mode (never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def _create_key(args: argparse.Namespace) -> None:
    store = Store(Settings.from_env().database_url)
    key_id, token = store.create_key(args.name, args.role)
    if args.file:
        write_secret(Path(args.file), token)
        print(f"{args.role} key {key_id} written to {args.file}")
    else:
        print(token)


def _ensure_admin(args: argparse.Namespace) -> None:
    """For `make run`: a local admin key on first start, in a file only the owner can read."""
    store = Store(Settings.from_env().database_url)
    path = Path(args.file)
    if store.count_keys("admin") == 0 or not path.exists():
        key_id, token = store.create_key("local admin", "admin")
        write_secret(path, token)
        print(f"created admin API key {key_id}: {path.resolve()}")
    else:
        print(f"admin API key: {path.resolve()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the API (GATEWAY_* environment variables)")
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it (or write it to --file)")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", default="")
    create.add_argument("--file", help="write the key to this file (mode 0600) instead of printing it")
    ensure = keys.add_parser("ensure-admin", help="create an admin key in FILE unless one is there")
    ensure.add_argument("--file", required=True)
    args = parser.parse_args(argv)
    if args.command == "serve":
        from .app import serve

        serve()
    elif args.keys_command == "create":
        _create_key(args)
    else:
        _ensure_admin(args)


if __name__ == "__main__":
    main(sys.argv[1:])
