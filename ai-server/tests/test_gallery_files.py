"""The gallery's file store after a failed write: no partial temporary file and no file of a half-written
enrolment left behind, whatever the error (the reliability suite checks the same after a real ENOSPC)."""

import errno

import numpy as np
import pytest

from ai_server.serving.gallery import NewFace, files
from ai_server.serving.gallery.files import FileStore, atomic_write


def _faces(n: int) -> list[NewFace]:
    crop = np.zeros((112, 112, 3), dtype=np.uint8)
    return [NewFace(crop, b"jpeg" * 10, {"a@1/embedding": np.ones(8)}) for _ in range(n)]


def _left(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("bug"), KeyboardInterrupt()]
)
def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch, error):
    def fail(fd):
        raise error

    monkeypatch.setattr(files.os, "fsync", fail)  # after the data went into the temporary file
    with pytest.raises(type(error)):
        atomic_write(tmp_path / "face.png", b"x" * 100_000)
    assert _left(tmp_path) == []


def test_an_enrolment_failing_half_way_leaves_no_file(tmp_path, monkeypatch):
    store, written = FileStore(tmp_path), []

    def write_three_then_fail(path, data):
        if len(written) == 3:  # the second face's thumbnail
            raise OSError(errno.ENOSPC, "No space left on device")
        atomic_write(path, data)
        written.append(path.name)

    monkeypatch.setattr(files, "atomic_write", write_three_then_fail)
    with pytest.raises(OSError):
        store.write(_faces(3))
    assert len(written) == 3 and _left(tmp_path) == []
    monkeypatch.undo()
    tokens = store.write(_faces(2))
    assert len(_left(tmp_path)) == 4 and all(store.crop(t).is_file() for t in tokens)
