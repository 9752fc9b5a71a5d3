"""Bearer tokens for a tenant's SCIM endpoint: minted once, stored as a hash with a lookup id.

A token reads ``scimroles_<lookup id>_<secret>``: the lookup id finds the
stored row (and is what ``tokens list`` and ``tokens revoke`` name), the
secret is 32 bytes from :mod:`secrets` and is stored only as its SHA-256.
A fast hash is enough for a secret of 256 random bits (there is no word
list to try); the comparison of hashes is constant-time. Part of the
``serve`` layer: it draws random numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = ["PREFIX", "digest", "matches", "mint", "split"]

PREFIX = "scimroles"
_LOOKUP = re.compile(r"[0-9a-f]{12}\Z")
_DUMMY = hashlib.sha256(b"no such token").hexdigest()


def mint() -> tuple[str, str, str]:
    """A new token: its lookup id, the token itself (shown once), and the hash to store."""
    lookup = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return lookup, f"{PREFIX}_{lookup}_{secret}", digest(secret)


def split(token: str) -> tuple[str, str] | None:
    """The lookup id and secret of a presented token; ``None`` when it has not the shape of one."""
    prefix, _, rest = token.partition("_")
    lookup, _, secret = rest.partition("_")
    if prefix != PREFIX or not _LOOKUP.match(lookup) or not secret:
        return None
    return lookup, secret


def digest(secret: str) -> str:
    """The stored form of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()  # a header is latin-1 text: never a lone surrogate


def matches(secret: str, stored: str | None) -> bool:
    """Whether ``secret`` hashes to ``stored``, in constant time; with no stored hash, the same work, ``False``."""
    same = hmac.compare_digest(digest(secret), stored if stored is not None else _DUMMY)
    return same and stored is not None
