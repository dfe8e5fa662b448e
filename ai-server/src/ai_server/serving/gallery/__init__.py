"""The gallery of enrolled people, on one of two backends (`backends.py`, chosen by the settings):

Embedded (the default; one machine): SQLite (WAL) is the truth, FAISS indexes are per-process caches of it.
- `persons` and `faces` rows, each face's vectors (one per vector space: a model and the kind of vector it
  makes) and an append-only `changes` log live in SQLite (`metadata.py`). Aligned crops and thumbnails
  are files under the data directory, named by a random token stored in the face's row (`files.py`).
- An enrolment writes its files first, then one SQLite transaction. A crash before the commit leaves only
  unreferenced files (removed by `remove_orphans` when a server starts), never a half-visible person;
  after the commit everything is there. Deletion commits first, then removes the files.
- Every process (gunicorn worker) builds its FAISS index from SQLite when it opens the gallery and, before
  each search, replays the `changes` written since, by any process (`index.py`). Writers serialise on
  SQLite's lock; readers never wait for them.

Shared (AI_SERVER_POSTGRES_URL + AI_SERVER_MILVUS_URI; any number of replicas): PostgreSQL is the truth,
Milvus the search index.
- PostgreSQL (`pg.py`) holds what SQLite holds, and the crops and thumbnails too (bytea in the face's
  row: every replica reaches them, and they commit in the same transaction as the face, so there are no
  orphan files and no half-written person), plus Milvus's watermark in the log.
- An enrolment or deletion commits in PostgreSQL first (with its `changes` rows), then is replayed into
  Milvus (`milvus.py`: upsert or delete, one collection per space), searched with Strong consistency:
  what one replica acknowledged, every other finds at once. Search results are checked against
  PostgreSQL, so a deleted face is never returned even if a crash left its vector in Milvus; any
  replica's next replay (before a search, every few seconds, at start) fills such a gap, and
  `ai-server gallery repair` rebuilds Milvus from PostgreSQL. `ai-server gallery migrate` copies an
  embedded gallery into a shared one (`maintenance.py`).

On both, vectors from one model are never compared with another's: a space whose vectors are missing for
some faces (enrolled with another model) is refused until `ai-server reembed` has filled it.

`Gallery` (`facade.py`) is the only way in for the service and the command line, and the one place that
orders those steps, whichever the backend; `archive.py` exports and imports whole embedded galleries.
"""

from . import backends
from .archive import ArchiveError, export_archive, import_archive
from .facade import Gallery
from .records import Match, NewFace

__all__ = ["ArchiveError", "Gallery", "Match", "NewFace", "backends", "export_archive", "import_archive"]
