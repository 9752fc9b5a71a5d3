"""userName comparison: the RFC 8265 *UsernameCaseMapped* key (S2)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from precis_i18n import get_profile

from scim_roles._domains import is_email
from scim_roles._errors import InvalidUser, Problem

_PROFILE = get_profile("UsernameCaseMapped")


def user_name_key(user_name: str) -> str:
    """The form two userNames are compared in: equal keys, same user (S2).

    RFC 8265's *UsernameCaseMapped* profile, applied to each space-separated
    part (section 3.1): letter case, width and NFC/NFD spellings fold
    together; names it keeps apart stay apart (``maße`` is not ``MASSE``).
    Plain ASCII names take a fast path with the same result.

    Args:
        user_name: A SCIM ``userName``.

    Returns:
        Its comparison key.

    Raises:
        InvalidUser: the profile refuses the name (empty, control or
            compatibility characters such as ``ﬃ`` or the long ``ſ``).

    >>> user_name_key("Ann@Example.COM"), user_name_key("ＪＯＳＥ\u0301")
    ('ann@example.com', 'josé')
    >>> user_name_key("maße") == user_name_key("MASSE")
    False
    >>> user_name_key("oﬃce")
    Traceback (most recent call last):
    ...
    scim_roles.InvalidUser: userName 'oﬃce': userName: not a valid user name (RFC 8265): ...
    """
    if not isinstance(user_name, str):
        raise InvalidUser(Problem("userName", "userName", f"must be a string, got {user_name!r}"))
    # The fast path: printable ASCII with no empty part (no leading, trailing or double space).
    if (
        user_name.isascii()
        and user_name.isprintable()
        and ((" " not in user_name and user_name != "") or all(user_name.split(" ")))
    ):
        return user_name.lower()
    return _slow_key(user_name)


@lru_cache(maxsize=4096)
def _slow_key(user_name: str) -> str:
    try:
        return " ".join(_PROFILE.enforce(part) for part in user_name.split(" "))
    except UnicodeError as err:
        reason = getattr(err, "reason", str(err))
        raise InvalidUser(
            Problem(f"userName {user_name!r}", "userName", f"not a valid user name (RFC 8265): {reason}", user_name)
        ) from None


def display_name_key(display_name: str) -> str:
    """The form two groups' ``displayName`` are compared in: NFC, then case folded.

    RFC 7643 makes a group's ``displayName`` case-insensitive; it is unique
    in the org, so an IdP that creates a group under a taken name gets
    ``409 uniqueness`` (and links the group it finds by that name).

    >>> display_name_key("Sales EMEA") == display_name_key("SALES emea")
    True
    """
    return unicodedata.normalize("NFC", display_name).casefold()


def email_of(user_name: str, resource: Mapping[str, Any]) -> str | None:
    """A SCIM user's email (S13, R14): the userName when it is an email address, else the primary email.

    The primary email is the one marked ``primary``, else the first given;
    ``None`` when the resource gives none.

    >>> email_of("ann@example.com", {})
    'ann@example.com'
    >>> email_of("ann", {"emails": [{"value": "a@example.org"}, {"value": "ann@example.com", "primary": True}]})
    'ann@example.com'
    """
    if is_email(user_name):
        return user_name
    emails = [e for e in resource.get("emails") or () if isinstance(e, Mapping) and isinstance(e.get("value"), str)]
    emails.sort(key=lambda e: e.get("primary") is not True)  # stable: the primary first, else the first given
    return str(emails[0]["value"]) if emails else None
