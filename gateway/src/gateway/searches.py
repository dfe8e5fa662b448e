"""Stored searches and the image files they refer to, kept consistent with each other.

What is kept of a query photo is `media.for_storage`'s copy (upright, small, no metadata), prepared and
written while the ai-server works (in a thread, fsynced, which hides the fsync) and marked in use until
its request ends; if no stored search refers to it by then, it is removed again. Retention deletes old
searches, their images and old failure records (GATEWAY_RETENTION_DAYS), and the photos and heatmaps of
searches sooner (GATEWAY_PHOTO_RETENTION_DAYS); it sweeps images no search refers to (a crash between
writing a file and storing its search). Recording a search, a purge and an erasure take turns (a lock),
so a purge never deletes a file that a search stored while it ran refers to.

Erasure (`erase_person`, `delete_search`) removes the records, then the files no search uses any more,
then has the store compact itself, and reports what it removed.
"""

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from . import media
from .store import Erased, Search, Store

log = logging.getLogger("gateway")
ORPHAN_AGE_S = (
    3600  # an image no search refers to is swept only after this long (a request may be writing it)
)


@dataclass
class Kept:
    """An image on disk for a search being made: its name and size, and whether a stored search refers
    to it now (then it stays without asking the database)."""

    sha: str
    size: int
    stored: bool = False


def thumbnail_url(match: dict) -> str:
    return f"/v1/persons/{match['person_id']}/faces/{match['face_id']}/thumbnail"


def new_search(key_id: str, photo: Kept, k: int, result: dict, cached: bool) -> Search:
    """The stored record of one match: the ai-server's result, with links the gateway serves."""
    return {
        "id": uuid.uuid4().hex,
        "key_id": key_id,
        "created_at": time.time(),
        "image_sha": photo.sha,
        "image_type": "image/jpeg",  # what for_storage writes, whatever was uploaded
        "heatmap_sha": None,
        "k": k,
        "cached": cached,
        "bytes": photo.size,
        "result": {
            "matches": [{**m, "thumbnail_url": thumbnail_url(m)} for m in result["matches"]],
            **{key: result[key] for key in ("no_match", "threshold", "face", "model", "gallery")},
            "min_confidence": result.get("min_confidence"),  # the level no_match was decided by
        },
    }


class SearchArchive:
    def __init__(self, store: Store, images: media.ImageStore):
        self.store, self.images = store, images
        self.in_use: Counter[str] = Counter()  # images being written for a search not yet stored
        self._turns = asyncio.Lock()  # recording a search vs. a purge or an erasure

    @contextlib.asynccontextmanager
    async def holding(
        self, data: bytes, prepare: Callable[[bytes], bytes] = media.for_storage
    ) -> AsyncIterator[asyncio.Future[Kept]]:
        """Starts preparing and writing an image and yields that work (await it for the Kept image); the
        image stays in use, safe from the purge, until the block ends, and is removed then unless a
        stored search refers to it."""
        held: list[str] = []
        keeping = asyncio.ensure_future(self._keep(data, prepare, held))
        try:
            yield keeping
        finally:
            await asyncio.gather(keeping, return_exceptions=True)  # its error is the caller's to see
            stored = not keeping.exception() and keeping.result().stored
            for sha in held:
                self.in_use[sha] -= 1
                if not self.in_use[sha]:
                    del self.in_use[sha]
                    if not stored:  # (a stored search's image goes only with it: erasure, retention)
                        await self._remove_unless_referenced(sha)

    async def _keep(self, data: bytes, prepare: Callable[[bytes], bytes], held: list[str]) -> Kept:
        prepared = await asyncio.to_thread(prepare, data)
        sha = media.sha256(prepared)
        self.in_use[sha] += 1  # before the file exists: a purge running meanwhile leaves it alone
        held.append(sha)
        await asyncio.to_thread(self.images.put, prepared)
        return Kept(sha, len(prepared))

    async def _remove_unless_referenced(self, sha: str) -> None:
        referenced = await self.store.image_referenced(sha)
        if not referenced and sha not in self.in_use:  # in use again: another request sent the same photo
            self.images.delete(sha)

    async def record(
        self, key_id: str, photo: asyncio.Future[Kept], k: int, result: dict, cached: bool
    ) -> Search:
        """Stores the search once its photo (and the heatmap, when there is one) is on disk."""
        kept_photo = await photo
        search = new_search(key_id, kept_photo, k, result, cached)
        if not result.get("explanation"):
            await self._store(search)
            kept_photo.stored = True
            return search
        png = base64.b64decode(result["explanation"]["heatmap_png"])
        async with self.holding(png, prepare=bytes) as heatmap:  # made by the ai-server: kept as it is
            kept = await heatmap
            search["heatmap_sha"], search["bytes"] = kept.sha, search["bytes"] + kept.size
            await self._store(search)
            kept_photo.stored = kept.stored = True
        return search

    async def _store(self, search: Search) -> None:
        async with self._turns:
            await self.store.add_search(search)

    async def erase_person(self, person_id: str, face_id: int | None = None) -> dict:
        """Stored searches forget the person (or one face); the photos and heatmaps of the searches
        that showed the person are deleted; the report of what was removed."""
        async with self._turns:
            erased = await self.store.erase_person(person_id, face_id)
            return await self._finish(erased)

    async def delete_search(self, search_id: str) -> dict:
        async with self._turns:
            return await self._finish(await self.store.delete_search(search_id))

    async def _finish(self, erased: Erased) -> dict:
        """Files no search uses any more go, whatever request may be using them: erasure comes first."""
        removed = sum(self.images.delete(sha) for sha in erased["images"])
        compacted = await self.store.compact()
        report = {k: v for k, v in erased.items() if k != "images"}
        return {**report, "images_removed": removed, "database_compacted": compacted}

    async def purge(self, retention_days: float, photo_retention_days: float | None = None) -> None:
        """Retention: searches, their images and failure records older than the retention period; the
        photos and heatmaps of searches older than the photo retention; and images no search refers to,
        once they are ORPHAN_AGE_S old. File deletions run on the event loop right after the database
        answered, so no request can start using a file in between."""
        now = time.time()
        cutoff = now - retention_days * 86400
        async with self._turns:
            expired = await self.store.purge_searches(cutoff)
            if photo_retention_days is not None:
                expired |= await self.store.purge_photos(now - photo_retention_days * 86400)
            for sha in expired:
                if sha not in self.in_use:
                    self.images.delete(sha)
            if expired:
                await self.store.compact()
        stale = await asyncio.to_thread(self.images.stale, ORPHAN_AGE_S)
        async with self._turns:
            keep = await self.store.referenced_images()  # read after the listing: includes newer searches
            orphans = [p for p in stale if p.name not in keep and p.name not in self.in_use]
            for path in orphans:
                path.unlink(missing_ok=True)
        log.info("retention purge", extra={"cutoff": cutoff, "orphans_removed": len(orphans)})


async def keep_purging(
    archive: SearchArchive, retention_days: float, every_s: float, photo_retention_days: float | None = None
) -> None:
    """The retention task: a purge now and then every `every_s`; a failed purge is logged, not fatal."""
    while True:
        try:
            await archive.purge(retention_days, photo_retention_days)
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(every_s)
