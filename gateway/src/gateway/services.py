"""Every long-lived part of one gateway, built from the settings in one place (the composition root), so a
handler, a test or a later second front end gets the same wiring."""

from dataclasses import dataclass
from pathlib import Path

from .cache import ResultCache
from .limits import RateLimiter, Slots
from .matching import Matcher
from .media import ImageStore
from .searches import SearchArchive
from .settings import Settings
from .store import Store, store_for
from .upstream import Upstream


@dataclass
class Services:
    settings: Settings
    store: Store
    images: ImageStore
    upstream: Upstream
    cache: ResultCache
    slots: Slots
    limiter: RateLimiter
    matcher: Matcher
    archive: SearchArchive
    web_root: Path | None  # the web app's files, or None: no web app

    @classmethod
    def from_settings(cls, settings: Settings) -> "Services":
        """Everything made, nothing connected yet: `await start()` opens the database and the HTTP client."""
        store = store_for(settings.database_url)
        images = ImageStore(settings.data_dir / "images")
        upstream = Upstream(settings, store.add_failure)
        cache = ResultCache(settings.cache_entries)
        slots = Slots(settings.max_inflight, settings.max_queue, settings.queue_timeout_s)
        return cls(
            settings=settings,
            store=store,
            images=images,
            upstream=upstream,
            cache=cache,
            slots=slots,
            limiter=RateLimiter(settings.rate_per_minute, settings.rate_burst),
            matcher=Matcher(upstream, cache, slots),
            archive=SearchArchive(store, images),
            web_root=settings.web_root.resolve() if settings.web_root else None,
        )

    async def start(self) -> None:
        await self.store.open()
        await self.upstream.start()

    async def close(self) -> None:
        await self.upstream.close()
        await self.store.close()
