"""What goes in and out of the service: a request, a response, and the outcome of handling one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from scim_roles._changes import Change
from scim_roles._result import Resolution

from ._directory import Directory
from ._pmap import PMap

CONTENT_TYPE = "application/scim+json"


@attrs.frozen
class ScimRequest:
    """What the host's SCIM endpoint received, and what the host decided for it.

    Attributes:
        method: The HTTP method, any case.
        path: The path below the SCIM base URL, percent-encoded as received:
            ``/Users/2819c223``, ``/Groups``, ``/Users/.search``, ``/Schemas``.
            A query may follow a ``?``.
        body: The decoded JSON body, if any.
        query: The query string (``filter=...&startIndex=1``), without ``?``.
        new_id: The id the host minted for the resource this request
            creates (``POST /Users``, ``POST /Groups``): stable, opaque,
            never reused (S1). Needed only when a request creates one.
        now: The time of the request, an aware ``datetime``, for
            ``meta.created`` and ``meta.lastModified``; without it they are
            left as they were.
        base_url: The SCIM base URL (``https://app.example.com/scim/v2``),
            for ``meta.location`` and the ``Location`` header.
    """

    method: str
    path: str
    body: Any = None
    query: str = attrs.field(default="", kw_only=True)
    new_id: str | None = attrs.field(default=None, kw_only=True)
    now: datetime | None = attrs.field(default=None, kw_only=True)
    base_url: str = attrs.field(default="", kw_only=True)


@attrs.frozen
class ScimResponse:
    """What to answer: an HTTP status, headers and the JSON body as bytes.

    Attributes:
        status: The HTTP status.
        headers: ``(name, value)`` pairs: ``Content-Type``, and ``Location``
            on a 201, ``ETag`` on a single resource.
        body: The UTF-8 JSON document; empty for a 204.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def data(self) -> Any:  # noqa: ANN401 -- a decoded JSON document
        """The body decoded from JSON (``None`` when it is empty)."""
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        """The value of a header, by name in any case."""
        folded = name.lower()
        return next((v for k, v in self.headers if k.lower() == folded), None)


def response(status: int, data: Mapping[str, Any] | None, *headers: tuple[str, str]) -> ScimResponse:
    """A response with a JSON body (or none)."""
    if data is None:
        return ScimResponse(status, headers, b"")
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return ScimResponse(status, (("Content-Type", CONTENT_TYPE), *headers), body)


@attrs.frozen
class Outcome:
    """What one request did.

    Attributes:
        directory: The new state; the directory given is untouched, and is
            returned as it was when the request is refused.
        response: What to answer.
        changes: The membership changes the request caused, sorted by
            (user id, team): what to apply to the app's tables.
        touched: Every user whose record changed (access, userName, profile,
            state, a group membership or its ``display``), with their new
            resolution; ``None``: the user was deleted.
        touched_groups: The ids of the groups whose own record changed
            (created, renamed, deleted): with ``touched``, all a store
            writes.
    """

    directory: Directory
    response: ScimResponse
    changes: tuple[Change, ...] = ()
    touched: Mapping[str, Resolution | None] = attrs.field(factory=PMap)
    touched_groups: frozenset[str] = frozenset()

    @property
    def status(self) -> int:
        """The response's HTTP status."""
        return self.response.status
