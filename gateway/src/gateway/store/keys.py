"""API keys, the same for every store: `gw_<id>_<secret>`, of which only the sha256 of the secret is kept,
compared in constant time (also for an unknown id, so timing does not tell which ids exist)."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

ROLES = ("search", "admin")
_UNKNOWN = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """Who is calling: the key's id (in logs and stored searches, never the secret) and its role."""

    key_id: str
    role: str


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
