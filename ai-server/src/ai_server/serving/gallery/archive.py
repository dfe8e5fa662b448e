"""Backups of a gallery as one `.tar.gz`: a consistent SQLite snapshot plus the files it refers to."""

import os
import re
import sqlite3
import tarfile
import tempfile
from pathlib import Path

from .files import FOLDERS
from .metadata import DATABASE_FILE

MEMBERS = re.compile(r"^(gallery\.sqlite3|faces/[0-9a-f]{32}\.png|thumbs/[0-9a-f]{32}\.jpg)$")


class ArchiveError(Exception):
    """The archive cannot be imported (no database in it, or the target already holds a gallery)."""


def export_archive(data_dir: str | os.PathLike, archive: str | os.PathLike) -> dict:
    """A consistent snapshot of a gallery (SQLite online backup + the files it refers to) as .tar.gz,
    taken while the server keeps running."""
    data_dir = Path(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / DATABASE_FILE
        source = sqlite3.connect(data_dir / DATABASE_FILE)
        target = sqlite3.connect(snapshot)
        with target:
            source.backup(target)
        tokens = [r[0] for r in target.execute("SELECT token FROM faces")]
        persons = target.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
        source.close()
        target.close()
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(snapshot, DATABASE_FILE)
            for token in tokens:
                for name in (f"faces/{token}.png", f"thumbs/{token}.jpg"):
                    if (data_dir / name).exists():
                        tar.add(data_dir / name, name)
    return {"persons": persons, "faces": len(tokens)}


def import_archive(archive: str | os.PathLike, data_dir: str | os.PathLike) -> None:
    """Restore an exported gallery into an empty data directory. Only the expected files are
    extracted (no links, no paths outside the folder)."""
    data_dir = Path(data_dir)
    if (data_dir / DATABASE_FILE).exists():
        raise ArchiveError(f"{data_dir} already holds a gallery; import into an empty folder")
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and MEMBERS.match(m.name)]
        if not any(m.name == DATABASE_FILE for m in members):
            raise ArchiveError("the archive has no gallery.sqlite3")
        for folder in FOLDERS:
            (data_dir / folder).mkdir(parents=True, exist_ok=True)
        tar.extractall(data_dir, members=members, filter="data")
