"""The gallery of enrolled people: SQLite (WAL) is the truth, FAISS indexes are per-process caches of it.

- `persons` and `faces` rows, each face's vectors (one per vector space: a model and the kind of vector it
  makes) and an append-only `changes` log live in SQLite (`metadata.py`). Aligned crops and thumbnails
  are files under the data directory, named by a random token stored in the face's row (`files.py`).
- An enrolment writes its files first, then one SQLite transaction. A crash before the commit leaves only
  unreferenced files (removed by `remove_orphans` when a server starts), never a half-visible person;
  after the commit everything is there. Deletion commits first, then removes the files.
- Every process (gunicorn worker) builds its FAISS index from SQLite when it opens the gallery and, before
  each search, replays the `changes` written since, by any process (`index.py`). Writers serialise on
  SQLite's lock; readers never wait for them.
- Vectors from one model are never compared with another's: a space whose vectors are missing for some
  faces (enrolled with another model) is refused until `ai-server reembed` has filled it.

`Gallery` (`facade.py`) is the only way in for the service and the command line, and the one place that
orders those steps; `archive.py` exports and imports whole galleries.
"""

from .archive import ArchiveError, export_archive, import_archive
from .facade import Gallery
from .records import Match, NewFace

__all__ = ["ArchiveError", "Gallery", "Match", "NewFace", "export_archive", "import_archive"]
