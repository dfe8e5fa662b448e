"""What the gateway needs from a database, whatever the backend: API keys, stored searches with feedback,
and the failure log. Every method is a coroutine and none may block the event loop; each write is one
transaction (all of its rows or none). A full disk is raised as OSError(ENOSPC), whatever the backend
calls it, so that the HTTP layer answers 507 for files and databases alike.

Erasure: what a deletion removes must not stay readable in the backend's files as far as the backend can
ensure it, and each backend says how far that is (SQLite: secure_delete zeroes it, then `compact()`
truncates the WAL; PostgreSQL: `compact()` vacuums the erased tables, which does not reach its WAL
archives and backups: see postgres.py); `compact()` is called after every erasure.

Retention and erasure mean the same on every backend: the docstrings below are the contract, and
gateway/tests run the same tests against each backend.

A backend subclasses Store, registers its URL scheme in `store/__init__.py` (BACKENDS) and takes its
tables from the shared migrations (schema.py): `open()` runs them (migrate.py).
"""

from abc import ABC, abstractmethod
from typing import Any, NotRequired, Self, TypedDict

from .keys import ApiKey


class Feedback(TypedDict):
    id: int
    search_id: NotRequired[str]
    person_id: str
    correct: bool
    comment: str
    created_at: float
    key_id: str


class Search(TypedDict):
    id: str
    key_id: str
    created_at: float
    image_sha: str  # "" once the photo is gone (photo retention, erasure)
    image_type: str
    heatmap_sha: str | None
    k: int
    cached: bool
    result: dict[str, Any]  # the ai-server's matches (thumbnail links added), threshold, face, versions
    bytes: NotRequired[int]  # of the stored photo and heatmap, counted against the key's quota
    feedback: NotRequired[list[Feedback]]  # only from get_search


class KeyInfo(TypedDict):
    """An API key as an admin sees it (never its secret or hash)."""

    id: str
    name: str
    role: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None  # to the minute: a key's use is written at most once a minute
    active: bool


class Erased(TypedDict):
    """What erasing a person (or one search) removed from the store; `images` are the photo and heatmap
    hashes no remaining search uses, for the caller to delete from disk."""

    searches_redacted: int
    searches_deleted: int
    feedback_removed: int
    images: set[str]


class Failure(TypedDict, total=False):
    id: int
    ts: float
    request_id: str
    kind: str  # "upstream" (an ai-server call failed) or "rejected" (the gateway answered >= 400)
    method: str
    path: str  # the route, never the URL: no ids
    status: int
    code: str
    reason: str
    ms: float
    key_id: str | None


class Store(ABC):
    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema to the newest revision; called once before any other method."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def writable(self) -> bool:
        """Whether a write could be made now (for /readyz)."""

    @abstractmethod
    async def compact(self) -> bool:
        """After an erasure: make sure deleted content is gone from the backend's files; whether it was."""

    # -- API keys ------------------------------------------------------------------------------------------
    @abstractmethod
    async def create_key(self, name: str, role: str, expires_at: float | None = None) -> tuple[str, str]:
        """(key id, token); the token is returned once and never stored."""

    @abstractmethod
    async def check_key(self, token: str) -> ApiKey | None:
        """The key, if the token is one that is neither revoked nor expired; records its use (last_used_at,
        at most once a minute)."""

    @abstractmethod
    async def count_keys(self, role: str) -> int:
        """Keys of this role ever created, revoked and expired ones included."""

    @abstractmethod
    async def list_keys(self) -> list[KeyInfo]:
        """Every key, newest first."""

    @abstractmethod
    async def revoke_key(self, key_id: str) -> KeyInfo | None:
        """Revoke a key at once (idempotent); None when there is no such key."""

    # -- searches and feedback -----------------------------------------------------------------------------
    @abstractmethod
    async def add_search(self, search: Search) -> None:
        """The search and, for redaction, which persons it showed."""

    @abstractmethod
    async def get_search(self, search_id: str) -> Search | None:
        """The search with its feedback, oldest first."""

    @abstractmethod
    async def list_searches(self, key_id: str | None, offset: int, limit: int) -> tuple[list[Search], int]:
        """Newest first; one key's searches, or everyone's when key_id is None; and how many there are."""

    @abstractmethod
    async def add_feedback(
        self, search_id: str, key_id: str, person_id: str, correct: bool, comment: str
    ) -> Feedback: ...

    @abstractmethod
    async def searches_showing(self, key_id: str, person_id: str, face_id: int) -> list[Search]:
        """This key's searches whose results listed this face of this person (at most a few)."""

    @abstractmethod
    async def key_usage(self, key_id: str, day: int) -> tuple[int, int]:
        """(matches this key made on this UTC day, bytes its stored searches keep): for its quotas."""

    @abstractmethod
    async def erase_person(self, person_id: str, face_id: int | None = None) -> Erased:
        """Stored searches keep the match (its rank and similarity) but lose the deleted person's name,
        metadata and thumbnail link, and the searches that showed the person lose their photo and heatmap
        (it may well be a photo of them); feedback about the person is deleted. With face_id, only matches
        shown with that face lose the link, and nothing else changes."""

    @abstractmethod
    async def delete_search(self, search_id: str) -> Erased:
        """The search, its feedback and its links to persons."""

    @abstractmethod
    async def purge_searches(self, before: float) -> set[str]:
        """Delete searches (and their feedback) created before `before`, and failures logged before it.
        Returns the image hashes no remaining search refers to."""

    @abstractmethod
    async def purge_photos(self, before: float) -> set[str]:
        """Searches created before `before` keep their record but lose their photo and heatmap. Returns
        the image hashes no remaining search refers to."""

    @abstractmethod
    async def image_referenced(self, sha: str) -> bool: ...

    @abstractmethod
    async def referenced_images(self) -> set[str]: ...

    # -- failure log ---------------------------------------------------------------------------------------
    @abstractmethod
    async def add_failure(self, entry: Failure) -> None: ...

    @abstractmethod
    async def list_failures(
        self, offset: int, limit: int, request_id: str | None = None
    ) -> tuple[list[Failure], int]:
        """Newest first, optionally only one request's."""
