"""What each role may see of a match: the one place that decides, for fresh answers and stored searches
alike (and so for which thumbnails a search key may fetch).

A search key is what every app user holds, so it gets the least that answers "is this the person?":
at most GATEWAY_SEARCH_MAX_K candidates; of their metadata only the fields the operator lists in
GATEWAY_SEARCH_METADATA_FIELDS (contact details are not among them unless the operator says so); and
when the answer is `no_match` (nobody reaches the confidence the operator set), no candidate at all,
unless GATEWAY_SEARCH_SHOW_NO_MATCH is set. Enrol and admin keys can read the gallery anyway: they
see everything.
"""

from dataclasses import dataclass

from .settings import Settings
from .store import ApiKey


@dataclass(frozen=True)
class Disclosure:
    search_max_k: int
    max_k: int
    metadata_fields: frozenset[str]
    show_no_match: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> "Disclosure":
        return cls(
            settings.search_max_k,
            settings.max_k,
            settings.metadata_fields,
            settings.search_show_no_match,
        )

    def max_k_for(self, caller: ApiKey) -> int:
        return self.max_k if caller.may("enrol") else self.search_max_k

    def result_for(self, caller: ApiKey, result: dict) -> dict:
        """A match result (fresh or stored) as this caller may see it."""
        if caller.may("enrol"):
            return result
        if result.get("no_match") and not self.show_no_match:
            return {**result, "matches": []}
        return {**result, "matches": [self._match(m) for m in result["matches"]]}

    def _match(self, match: dict) -> dict:
        metadata = match.get("metadata") or {}
        return {**match, "metadata": {k: v for k, v in metadata.items() if k in self.metadata_fields}}

    def shows_face(self, caller: ApiKey, result: dict, person_id: str, face_id: int) -> bool:
        """Whether this caller saw this face in this result (a search key's thumbnail rule)."""
        matches = self.result_for(caller, result)["matches"]
        return any(
            m["person_id"] == person_id and m["face_id"] == face_id and m.get("thumbnail_url")
            for m in matches
        )
