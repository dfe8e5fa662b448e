"""Match results by (API key, sha256 of the image bytes, k, explain), each stored with the (model version,
gallery version) it was computed at; a result counts only while the ai-server still reports those
versions.

Per key: a hit (`cached: true`) tells a caller only that it sent this photo before, never that someone
else did. The gallery version grows with every enrolment and deletion (whoever makes it), so a result can
never be served after the gallery changed; the gateway also empties the cache itself when it enrols or
deletes, and a key's deleted search takes that key's entries along. A photo never seen costs no version
check at all. Least recently used entries go first."""

from collections import OrderedDict

Key = tuple[str, str, int, bool]  # key id, image sha256, k, explain
Versions = tuple[str, int]


class ResultCache:
    def __init__(self, entries: int):
        self.entries = entries
        self.items: OrderedDict[Key, tuple[Versions, dict]] = OrderedDict()

    def get(self, key: Key) -> tuple[Versions, dict] | None:
        entry = self.items.get(key)
        if entry is not None:
            self.items.move_to_end(key)
        return entry

    def put(self, key: Key, versions: Versions, result: dict) -> None:
        if self.entries <= 0:
            return
        self.items[key] = (versions, result)
        self.items.move_to_end(key)
        while len(self.items) > self.entries:
            self.items.popitem(last=False)

    def forget_key(self, key_id: str) -> int:
        """Every entry of this API key (a search it deleted may be among them); how many there were."""
        doomed = [key for key in self.items if key[0] == key_id]
        for key in doomed:
            del self.items[key]
        return len(doomed)

    def clear(self) -> int:
        """Everything; how many entries there were."""
        count = len(self.items)
        self.items.clear()
        return count
