"""Stored searches and the image files they refer to, kept consistent with each other.

A photo is written while the ai-server works (in a thread, fsynced, which hides the fsync) and is marked
in use until its request ends; if no stored search refers to it by then, it is removed again. Retention
deletes old searches, their images and old failure records, and sweeps images no search refers to (a
crash between writing a file and storing its search). Recording a search and a purge take turns (a lock),
so a purge never deletes a file that a search stored while it ran refers to.
"""

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

from . import media
from .store import Search, Store

log = logging.getLogger("gateway")
ORPHAN_AGE_S = (
    3600  # an image no search refers to is swept only after this long (a request may be writing it)
)


def thumbnail_url(match: dict) -> str:
    return f"/v1/persons/{match['person_id']}/faces/{match['face_id']}/thumbnail"


def new_search(key_id: str, image_sha: str, kind: str, k: int, result: dict, cached: bool) -> Search:
    """The stored record of one match: the ai-server's result, with links the gateway serves."""
    return {
        "id": uuid.uuid4().hex,
        "key_id": key_id,
        "created_at": time.time(),
        "image_sha": image_sha,
        "image_type": media.TYPES[kind],
        "heatmap_sha": None,
        "k": k,
        "cached": cached,
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
        self._turns = asyncio.Lock()  # recording a search vs. a purge

    @contextlib.asynccontextmanager
    async def holding(self, data: bytes, sha: str) -> AsyncIterator[asyncio.Future[str]]:
        """Starts writing an image and yields the write (await it for the sha); the image stays in use,
        safe from the purge, until the block ends."""
        self.in_use[sha] += 1
        writing = asyncio.ensure_future(asyncio.to_thread(self.images.put, data))
        try:
            yield writing
        finally:
            try:
                await writing
            finally:
                self.in_use[sha] -= 1
                if not self.in_use[sha]:
                    del self.in_use[sha]
                    await self._remove_unless_referenced(sha)

    async def _remove_unless_referenced(self, sha: str) -> None:
        referenced = await self.store.image_referenced(sha)
        if not referenced and sha not in self.in_use:  # in use again: another request sent the same photo
            self.images.delete(sha)

    async def record(
        self, key_id: str, writing: asyncio.Future[str], kind: str, k: int, result: dict, cached: bool
    ) -> Search:
        """Stores the search once its photo (and the heatmap, when there is one) is on disk."""
        search = new_search(key_id, await writing, kind, k, result, cached)
        if not result.get("explanation"):
            await self._store(search)
            return search
        png = base64.b64decode(result["explanation"]["heatmap_png"])
        async with self.holding(png, media.sha256(png)) as heatmap:
            search["heatmap_sha"] = await heatmap
            await self._store(search)
        return search

    async def _store(self, search: Search) -> None:
        async with self._turns:
            await self.store.add_search(search)

    async def purge(self, retention_days: float) -> None:
        """Retention: searches, their images and failure records older than the retention period; and
        images no search refers to, once they are ORPHAN_AGE_S old. File deletions run on the event loop
        right after the database answered, so no request can start using a file in between."""
        cutoff = time.time() - retention_days * 86400
        async with self._turns:
            for sha in await self.store.purge_searches(cutoff):
                if sha not in self.in_use:
                    self.images.delete(sha)
        stale = await asyncio.to_thread(self.images.stale, ORPHAN_AGE_S)
        async with self._turns:
            keep = await self.store.referenced_images()  # read after the listing: includes newer searches
            orphans = [p for p in stale if p.name not in keep and p.name not in self.in_use]
            for path in orphans:
                path.unlink(missing_ok=True)
        log.info("retention purge", extra={"cutoff": cutoff, "orphans_removed": len(orphans)})


async def keep_purging(archive: SearchArchive, retention_days: float, every_s: float) -> None:
    """The retention task: a purge now and then every `every_s`; a failed purge is logged, not fatal."""
    while True:
        try:
            await archive.purge(retention_days)
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(every_s)
