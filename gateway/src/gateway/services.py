"""Every long-lived part of one gateway, built from the settings in one place (the composition root), so a
handler, a test or a later second front end gets the same wiring."""

from dataclasses import dataclass
from pathlib import Path

from .cache import ResultCache
from .limits import BodyBudget, RateLimiter, Slots
from .matching import Matcher
from .media import ImageStore
from .policy import Disclosure
from .searches import SearchArchive
from .settings import Settings, SettingsError
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
    bodies: BodyBudget
    limiter: RateLimiter
    refusals: RateLimiter  # per client address: refused API keys
    disclosure: Disclosure
    matcher: Matcher
    archive: SearchArchive
    web_root: Path | None  # the web app's files, or None: no web app

    @classmethod
    def from_settings(cls, settings: Settings) -> "Services":
        """Everything made, nothing connected yet: `await start()` opens the database and the HTTP client.
        Without the ai-server's secret (only `gateway serve` insists on it) calls go without it."""
        store = store_for(settings.store_url())
        images = ImageStore(settings.data_dir / "images")
        upstream = Upstream(settings, store.add_failure, _secret_if_set(settings))
        cache = ResultCache(settings.cache_entries)
        slots = Slots(settings.max_inflight, settings.max_queue, settings.queue_timeout_s)
        bodies = BodyBudget(settings.body_budget_bytes, settings.max_queue, settings.queue_timeout_s)
        per_address = settings.auth_failures_per_minute
        return cls(
            settings=settings,
            store=store,
            images=images,
            upstream=upstream,
            cache=cache,
            slots=slots,
            bodies=bodies,
            limiter=RateLimiter(settings.rate_per_minute, settings.rate_burst),
            refusals=RateLimiter(per_address, max(1, round(per_address / 3))),
            disclosure=Disclosure.from_settings(settings),
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


def _secret_if_set(settings: Settings) -> str | None:
    try:
        return settings.upstream_secret()
    except SettingsError:
        return None
