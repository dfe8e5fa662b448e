"""API keys, the same for every store: `gw_<id>_<secret>`, of which only the sha256 of the secret is kept,
compared in constant time (also for an unknown id, so timing does not tell which ids exist).

Roles, least privilege first; each may do what the ones before it may:
- `search`: match (k <= GATEWAY_SEARCH_MAX_K, names and only the allowed metadata, nothing when there is
  no match), its own searches, feedback, and thumbnails of faces its own searches showed;
- `enrol`: enrol, list, read and delete persons, and every face's thumbnail;
- `admin`: API keys, the failure log, everyone's searches.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

ROLES = ("search", "enrol", "admin")
_UNKNOWN = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """Who is calling: the key's id (in logs and stored searches, never the secret) and its role."""

    key_id: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this key has `role` or a role above it."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class NewKey:
    key_id: str
    token: str  # shown once, to whoever created it
    hash: str  # what is stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(role: str) -> NewKey:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return NewKey(key_id, f"gw_{key_id}_{secret}", hash_secret(secret))


def split_token(token: str) -> tuple[str, str]:
    """(key id, secret) of a well-formed token, else ("", "")."""
    parts = token.split("_", 2)
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == "gw" else ("", "")


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash or _UNKNOWN) and stored_hash is not None
