"""The service: one request in, one :class:`Outcome` out (S1-S12), sans I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import unquote

import attrs

from scim_roles._errors import InvalidArgument, Problem

from ._directory import Directory
from ._discovery import discovery
from ._errors import ScimError
from ._messages import Outcome, ScimRequest, ScimResponse, response
from ._reads import get_group, get_user, list_groups, list_users, search
from ._render import GROUPS, USERS, Kind
from ._work import Work
from ._writes import (
    create_group,
    create_user,
    delete_group,
    delete_user,
    patch_group,
    patch_user,
    replace_group,
    replace_user,
)

H = TypeVar("H")

CollectionHandler = Callable[[Work, object], ScimResponse]
"""Answers a method on ``/Users`` or ``/Groups``: the request's working copy, its body."""
ResourceHandler = Callable[[Work, str, object], ScimResponse]
"""Answers a method on ``/Users/{id}`` or ``/Groups/{id}``: the working copy, the id, the body."""


@attrs.frozen
class _Endpoint:
    """One resource type's routes: the methods of its collection, and of one resource."""

    kind: Kind
    collection: Mapping[str, CollectionHandler]
    resource: Mapping[str, ResourceHandler]


_ENDPOINTS = {
    "users": _Endpoint(
        USERS,
        collection={"GET": list_users, "POST": create_user},
        resource={"GET": get_user, "PUT": replace_user, "PATCH": patch_user, "DELETE": delete_user},
    ),
    "groups": _Endpoint(
        GROUPS,
        collection={"GET": list_groups, "POST": create_group},
        resource={"GET": get_group, "PUT": replace_group, "PATCH": patch_group, "DELETE": delete_group},
    ),
}
_REFUSED = {
    "bulk": ScimError(501, None, "bulk operations are not supported: send one request per change"),
    "teams": ScimError(404, None, "teams are created and deleted in the app only, never by the IdP"),
    ".search": ScimError(501, None, "search each resource type: POST /Users/.search or /Groups/.search"),
}


def handle(directory: Directory, request: ScimRequest) -> Outcome:
    """Answer one SCIM request: the new state, the response, the membership changes.

    Pure and atomic (S12): the request applies wholly or not at all, the
    directory given is never changed, and the same request on the same state
    gives the same outcome. A refused request is a response (RFC 7644
    §3.12 error body, with a ``scimType`` where one applies) and leaves the
    state as it was; it never raises.

    Args:
        directory: The current state.
        request: The request, with the host's ``new_id``, ``now`` and ``base_url``.

    Returns:
        The :class:`Outcome`.

    Raises:
        InvalidArgument: the host's part is wrong: not a :class:`Directory` or
            a :class:`ScimRequest`, a creating request without ``new_id`` (or
            with one in use), ``now`` not an aware datetime.

    >>> from datetime import datetime, timezone
    >>> from scim_roles import IdpGroup, Org, Role, Team
    >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER, domains=["example.com"])
    >>> out = handle(Directory(org), ScimRequest("POST", "/Users", {"userName": "ann@example.com"}, new_id="u1"))
    >>> out.response.status, out.response.data["id"], [c.describe() for c in out.changes]
    (201, 'u1', ['u1: added to eng as Member'])
    >>> out = handle(out.directory, ScimRequest("PATCH", "/Users/u1", {"Operations": [
    ...     {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": "False"}]}))
    >>> out.response.status, [c.describe() for c in out.changes], out.touched["u1"].deprovisioned
    (200, ['u1: removed from eng (was Member)'], True)
    """
    if not isinstance(directory, Directory):
        raise InvalidArgument(Problem("handle", "directory", f"must be a Directory, got {directory!r}"))
    if not isinstance(request, ScimRequest):
        raise InvalidArgument(Problem("handle", "request", f"must be a ScimRequest, got {request!r}"))
    _check_request(request)
    work = Work(directory, request)
    try:
        answer = _route(work, request)
    except ScimError as err:
        return Outcome(directory, response(err.status, err.body(), *_allow(err)))
    return work.outcome(answer)


def _check_request(request: ScimRequest) -> None:
    for name in ("method", "path", "query", "base_url"):
        value = getattr(request, name)
        if not isinstance(value, str):
            raise InvalidArgument(Problem("ScimRequest", name, f"must be a string, got {value!r}"))


def _allow(err: ScimError) -> tuple[tuple[str, str], ...]:
    return (("Allow", err.allow),) if err.allow else ()


def _route(work: Work, request: ScimRequest) -> ScimResponse:
    method = request.method.upper()
    raw = request.path.split("?", 1)[0].strip("/")
    try:
        parts = [unquote(part, errors="strict") for part in raw.split("/")] if raw else []
    except UnicodeDecodeError:
        raise ScimError(404, None, "no such resource: the path is not valid UTF-8") from None
    if not parts or any(not part for part in parts):
        raise ScimError(404, None, "no resource here: use /Users, /Groups or the discovery endpoints")
    head = parts[0].lower()
    if head in _REFUSED:
        raise _REFUSED[head]
    if head in ("serviceproviderconfig", "schemas", "resourcetypes"):
        return discovery(work, method, head, parts[1:])
    endpoint = _ENDPOINTS.get(head)
    if endpoint is None or len(parts) > 2:
        raise ScimError(404, None, f"no such resource: {'/'.join(parts)!r}")
    if len(parts) == 1:
        return _method(endpoint.collection, method)(work, request.body)
    if parts[1] == ".search":
        if method != "POST":
            raise _not_allowed(method, "POST")
        return search(work, endpoint.kind, request.body if request.body is not None else {})
    return _method(endpoint.resource, method)(work, parts[1], request.body)


def _method(table: Mapping[str, H], method: str) -> H:
    handler = table.get(method)
    if handler is None:
        raise _not_allowed(method, ", ".join(table))
    return handler


def _not_allowed(method: str, allowed: str) -> ScimError:
    return ScimError(405, None, f"{method} is not allowed here; allowed: {allowed}", allow=allowed)
