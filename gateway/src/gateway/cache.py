"""Match results by (sha256 of the image bytes, k, explain, model version, gallery version).

The gallery version grows with every enrolment and deletion and is read from the ai-server for each
lookup, so an entry can never be served after the gallery changed (whoever changed it); the gateway
also empties the cache itself when it enrols or deletes. Least recently used entries go first."""

from collections import OrderedDict

from . import telemetry

Key = tuple[str, int, bool, str, int]


class ResultCache:
    def __init__(self, entries: int):
        self.entries = entries
        self.items: OrderedDict[Key, dict] = OrderedDict()

    def get(self, key: Key) -> dict | None:
        result = self.items.get(key)
        telemetry.CACHE.labels("hit" if result is not None else "miss").inc()
        if result is not None:
            self.items.move_to_end(key)
        return result

    def put(self, key: Key, result: dict) -> None:
        if self.entries <= 0:
            return
        self.items[key] = result
        self.items.move_to_end(key)
        while len(self.items) > self.entries:
            self.items.popitem(last=False)

    def clear(self) -> None:
        self.items.clear()
