"""Where a match result comes from: the cache, while the ai-server still reports the model and gallery
versions it was computed at, or else one ai-server call inside a bounded slot (back-pressure)."""

import time

from . import media, telemetry
from .cache import ResultCache
from .limits import Slots
from .upstream import Upstream


class Matcher:
    def __init__(self, upstream: Upstream, cache: ResultCache, slots: Slots):
        self.upstream, self.cache, self.slots = upstream, cache, slots

    async def versions(self, request_id: str) -> tuple[str, int]:
        """(model version, gallery version) the ai-server serves now."""
        reply = await self.upstream.call("GET", "/readyz", request_id, timeout_s=5)
        if reply.status != 200:
            raise reply.refusal()
        ready = reply.json()
        return ready["model"]["version"], ready["gallery"]["version"]

    async def match(
        self, key_id: str, request_id: str, data: bytes, k: int, explain: bool, timings: dict[str, float]
    ) -> tuple[dict, bool]:
        """(the ai-server's result, whether it came from this key's cache); adds its stages to `timings`."""
        result = None
        cache_key = (key_id, media.sha256(data), k, explain)
        cached = self.cache.get(cache_key)
        if cached is not None:  # seen before: still valid only at the same model and gallery versions
            started = time.perf_counter()
            if await self.versions(request_id) == cached[0]:
                result = cached[1]
            timings["versions"] = time.perf_counter() - started
        telemetry.CACHE.labels("miss" if result is None else "hit").inc()
        if result is not None:
            return result, True
        started = time.perf_counter()
        result = await self._infer(request_id, data, k, explain)
        timings["ai_server"] = time.perf_counter() - started
        versions = (result["model"]["version"], result["gallery"]["version"])
        self.cache.put(cache_key, versions, result)
        return result, False

    async def _infer(self, request_id: str, data: bytes, k: int, explain: bool) -> dict:
        """The photo as the body itself, the parameters in the query: no multipart built here or parsed
        there (a millisecond a match between the two)."""
        params = {"k": str(k), "explain": "true" if explain else "false"}
        content_type = media.TYPES[media.sniff(data)]
        async with self.slots.slot():
            reply = await self.upstream.call(
                "POST", "/v1/match", request_id, data=data, params=params, content_type=content_type
            )
        if reply.status != 200:
            raise reply.refusal()
        return reply.json()
