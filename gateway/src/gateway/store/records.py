"""What every backend computes the same way, in plain Python: the columns, a key as an admin sees it, a
search's row values and the faces it listed, a redacted result, the summary of an erasure. The SQL and
the transactions stay in each backend; what a row means lives here once."""

import json
import time
from typing import Any

from .base import Erased, KeyInfo, Search

FAILURE_COLUMNS = ("ts", "request_id", "kind", "method", "path", "status", "code", "reason", "ms", "key_id")
KEY_COLUMNS = "id, name, role, created_at, expires_at, revoked_at, last_used_at"
SEARCH_COLUMNS = (
    "id",
    "key_id",
    "created_at",
    "image_sha",
    "image_type",
    "heatmap_sha",
    "k",
    "cached",
    "result",
    "bytes",
)
TOUCH_EVERY_S = 60.0  # a key's last use is written at most this often


def key_info(row: dict[str, Any]) -> KeyInfo:
    info = dict(row)
    expired = info["expires_at"] is not None and info["expires_at"] <= time.time()
    return {**info, "active": info["revoked_at"] is None and not expired}


def key_usable(row: dict[str, Any], now: float) -> bool:
    return row["revoked_at"] is None and (row["expires_at"] is None or row["expires_at"] > now)


def search_values(search: Search) -> tuple:
    """The row of `searches`, in SEARCH_COLUMNS order (result as JSON text, cached as 0/1)."""
    row = {**search, "cached": int(search["cached"]), "result": json.dumps(search["result"])}
    row["bytes"] = search.get("bytes", 0)
    return tuple(row[c] for c in SEARCH_COLUMNS)


def listed_faces(search: Search) -> set[tuple[str, int]]:
    """(person id, face id) of every match the search showed."""
    return {(m["person_id"], m["face_id"]) for m in search["result"]["matches"]}


def usage_day(created_at: float) -> int:
    return int(created_at // 86400)


def search_record(row: dict[str, Any]) -> Search:
    out = dict(row)
    out["result"] = json.loads(out["result"])
    out["cached"] = bool(out["cached"])
    return out


def redacted(result: dict, person_id: str, face_id: int | None) -> dict:
    """The result without the person's name, metadata and thumbnail (with face_id: without that face's
    thumbnail link only)."""
    for match in result["matches"]:
        if match["person_id"] != person_id:
            continue
        if face_id is None:
            match.update(name=None, metadata={}, thumbnail_url=None, deleted=True)
        elif match["face_id"] == face_id:
            match["thumbnail_url"] = None
    return result


def erased(redacted: int = 0, deleted: int = 0, feedback: int = 0, images: set | None = None) -> Erased:
    return {
        "searches_redacted": redacted,
        "searches_deleted": deleted,
        "feedback_removed": feedback,
        "images": images or set(),
    }
