"""A resource as the IdP reads it, for reads and writes alike.

Its data with ``id``, ``groups`` or ``members`` and ``meta``, cut down to the
attributes asked for, in a response with its headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

import attrs
from scim2_models import Context, ResponseParameters, SearchRequest

from ._directory import NO_MEMBERS
from ._errors import ScimError
from ._messages import ScimResponse, response
from ._resources import CORE_GROUP, CORE_USER, ScimGroup, ScimUser, stored_model, validate
from ._work import Work


@attrs.frozen
class Kind:
    """A resource type the service serves: its endpoint, and the model its resources are read through."""

    endpoint: str
    model: type[Any]


USERS = Kind("Users", ScimUser)
GROUPS = Kind("Groups", ScimGroup)

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


_PARAMETERS = {
    name.lower(): name
    for name in ("filter", "startIndex", "count", "attributes", "excludedAttributes", "sortBy", "sortOrder")
}


PATCH_ANSWER_MEMBERS = 100
"""A group PATCH answers ``200`` with the whole group up to this many members, ``204`` past it (RFC 7644 §3.5.2
allows both): a member add then costs the same at the 1,000th member as at the 10th."""

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")  # RFC 3986: what percent-encoding leaves as it is


def location(work: Work, kind: Kind, rid: str) -> str:
    """The URL of a resource: the base URL, its endpoint, its id percent-encoded."""
    return f"{work.request.base_url.rstrip('/')}/{kind.endpoint}/{_encoded(rid)}"


def _encoded(rid: str) -> str:
    """An id percent-encoded for a URL's path (most ids need nothing: one match instead of ``quote``)."""
    return rid if _UNRESERVED.fullmatch(rid) else quote(rid, safe="")


def user_data(work: Work, uid: str) -> dict[str, Any]:
    """A SCIM user as a resource: what the IdP sent, ``id``, its ``groups`` and ``meta``."""
    stored = work.resources.get(uid)
    user = work.users[uid]
    if stored is None:
        data: dict[str, Any] = {"schemas": [CORE_USER], "userName": work.names[uid], "active": not user.deprovisioned}
    else:
        data = json.loads(stored)
    meta = {"resourceType": "User", **data.pop("meta", {}), "location": location(work, USERS, uid)}
    out = {"schemas": data.pop("schemas", [CORE_USER]), "id": uid, **data}
    if user.groups:
        out["groups"] = [
            {"value": gid, "$ref": location(work, GROUPS, gid), "display": _group_name(work, gid), "type": "direct"}
            for gid in sorted(user.groups)
        ]
    out["meta"] = meta
    return out


def group_data(work: Work, gid: str, *, members: bool = True) -> dict[str, Any]:
    """A synced group as a resource: its name, ``id``, ``members`` (unless left out) and ``meta``."""
    data = json.loads(work.groups[gid])
    meta = {"resourceType": "Group", **data.pop("meta", {}), "location": location(work, GROUPS, gid)}
    out = {"schemas": data.pop("schemas", [CORE_GROUP]), "id": gid, **data}
    listed = work.members.get(gid, NO_MEMBERS)
    if members and listed:
        users = location(work, USERS, "")  # every member's $ref: this and its id
        out["members"] = [
            {"value": uid, "$ref": users + _encoded(uid), "type": "User"}
            | ({"display": display} if display is not None else {})
            for uid, display in sorted(listed.items())
        ]
    out["meta"] = meta
    return out


def _group_name(work: Work, gid: str) -> str:
    return str(json.loads(work.groups[gid]).get("displayName", gid))


def resource_response(status: int, data: dict[str, Any], *extra: tuple[str, str]) -> ScimResponse:
    """A single resource, with its ``ETag`` (and ``Location`` on a 201)."""
    headers = [*extra]
    if status == 201:
        headers.append(("Location", data["meta"]["location"]))  # a 201 always renders every attribute
    version = data.get("meta", {}).get("version")
    if version is not None:
        headers.append(("ETag", version))
    return response(status, data, *headers)


def parameters(work: Work, kind: Kind, body: object | None) -> SearchRequest[Any]:
    """The search parameters: from a ``.search`` body, else from the query string."""
    if body is None:
        given: dict[str, Any] = {}
        for name, value in query_pairs(work.request):
            key = _PARAMETERS.get(name.lower())
            if key is None:
                continue  # RFC 7644 §3.4.2: other query parameters are not ours to refuse
            if key in given:
                raise ScimError(400, "invalidSyntax", f"query parameter {name!r} is given more than once")
            given[key] = value
    elif isinstance(body, Mapping):
        given = dict(body)
    else:
        raise ScimError(400, "invalidSyntax", "a search needs a JSON object body")
    params: SearchRequest[Any] = validate(SearchRequest[kind.model], given, Context.SEARCH_REQUEST)  # type: ignore[name-defined]
    return params


def query_pairs(request: Any) -> list[tuple[str, str]]:  # noqa: ANN401 -- a ScimRequest
    """The query string's ``name=value`` pairs, percent-decoded."""
    query = request.query
    if "?" in request.path:
        query = "&".join(q for q in (request.path.split("?", 1)[1], query) if q)
    try:
        return parse_qsl(query, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise ScimError(400, "invalidSyntax", "the query string is not valid") from None


def patched_group(work: Work, gid: str) -> ScimResponse:
    """A group PATCH's answer (RFC 7644 §3.5.2), at a cost that does not grow with the group.

    ``200`` and the group, cut down to ``attributes`` / ``excludedAttributes``
    when the query asks; whole when it has at most
    :data:`PATCH_ANSWER_MEMBERS` members; past that, ``204 No Content``
    unless the query leaves the members out.
    """
    params = parameters(work, GROUPS, None)
    if wants_members(params) and len(work.members.get(gid, NO_MEMBERS)) > PATCH_ANSWER_MEMBERS:
        return response(204, None)
    return resource_response(200, selected(work, GROUPS, gid, params))


def selected(work: Work, kind: Kind, rid: str, params: ResponseParameters[Any]) -> dict[str, Any]:
    """A resource, cut down to the requested attributes (through the models when asked)."""
    data = user_data(work, rid) if kind is USERS else group_data(work, rid, members=wants_members(params))
    if not params.attributes and not params.excluded_attributes:
        return data
    shown = stored_model(kind.model, data)
    return dict(shown.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params))


def wants_members(params: ResponseParameters[Any]) -> bool:
    excluded = {a.lower() for a in params.excluded_attributes or ()}
    if excluded & {"members", CORE_GROUP.lower() + ":members"}:
        return False
    wanted = params.attributes
    return not wanted or any("members" in a.lower() for a in wanted)
