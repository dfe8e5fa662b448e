"""The gallery's files: each face's aligned crop (`faces/<token>.png`) and thumbnail (`thumbs/<token>.jpg`).

A token is random and stored in the face's row, so a file exists before the row that refers to it and
outlives it briefly; `sweep` removes the files no row refers to (after a crash between the two). Folders
and files are readable by their owner only: these are faces of real people.
"""

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from ..pipeline.render import png
from .records import NewFace

FOLDERS = ("faces", "thumbs")


class FileStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        for folder in FOLDERS:
            (self.root / folder).mkdir(mode=0o700, parents=True, exist_ok=True)

    def crop(self, token: str) -> Path:
        return self.root / "faces" / f"{token}.png"

    def thumbnail(self, token: str) -> Path:
        return self.root / "thumbs" / f"{token}.jpg"

    def read(self, token: str, kind: str) -> bytes | None:
        """A face's thumbnail (`kind="thumbnail"`) or aligned crop (`"crop"`) bytes, if the file exists."""
        path = self.thumbnail(token) if kind == "thumbnail" else self.crop(token)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, faces: list[NewFace]) -> list[str]:
        """Write every face's crop and thumbnail durably; their new tokens, in order. All or nothing: when
        one write fails (a full disk, an interrupted worker), the files already written are removed."""
        tokens = []
        try:
            for face in faces:
                tokens.append(secrets.token_hex(16))
                atomic_write(self.crop(tokens[-1]), png(face.crop))
                atomic_write(self.thumbnail(tokens[-1]), face.thumbnail)
        except BaseException:
            self.remove(tokens)
            raise
        return tokens

    def remove(self, tokens: list[str]) -> dict[str, int]:
        """Unlink each token's crop and thumbnail; how many of each were there."""
        removed = {"crops": 0, "thumbnails": 0}
        for token in tokens:
            for kind, path in (("crops", self.crop(token)), ("thumbnails", self.thumbnail(token))):
                try:
                    path.unlink()
                    removed[kind] += 1
                except FileNotFoundError:
                    pass
        return removed

    def sweep(self, referenced: Callable[[], set[str]], min_age_s: float) -> int:
        """Delete files whose token is not in `referenced()` and that are older than `min_age_s` (younger
        ones may belong to an enrolment in progress in another process). How many were deleted."""
        referenced, removed = referenced(), 0
        now = time.time()
        for folder in FOLDERS:
            for path in (self.root / folder).iterdir():
                token = path.name.split(".")[0]
                if token not in referenced and now - path.stat().st_mtime >= min_age_s:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def atomic_write(path: Path, data: bytes) -> None:
    """Write, fsync, rename: after a crash the file is either complete or absent, and after a failed write
    (a full disk, or any other error, an interrupt included) no partial temporary file is left behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
