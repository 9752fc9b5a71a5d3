"""Reads (S10): one resource, or a list found by filter, sorted and paged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from scim2_models.path.expressions import Comparison, FilterNode, LogicalExpr, Not, Present, ValuePath

from ._messages import ScimResponse, response
from ._names import user_name_key
from ._render import GROUPS, LIST_RESPONSE, USERS, Kind, group_data, parameters, resource_response, selected, user_data
from ._resources import CORE_GROUP, CORE_USER, MAX_RESULTS, POLICY, ScimGroup, ScimUser, stored_model
from ._work import Work

if TYPE_CHECKING:
    from scim2_models import SearchRequest


def get_one(work: Work, kind: Kind, rid: str) -> ScimResponse:
    """``GET /Users/{id}`` or ``/Groups/{id}``, with ``attributes``/``excludedAttributes``."""
    params = parameters(work, kind, None)
    data = selected(work, kind, rid, params)
    return resource_response(200, data)


def list_users(work: Work, _body: object) -> ScimResponse:
    """``GET /Users``: a GET has no body."""
    return search(work, USERS, None)


def list_groups(work: Work, _body: object) -> ScimResponse:
    """``GET /Groups``: a GET has no body."""
    return search(work, GROUPS, None)


def get_user(work: Work, uid: str, _body: object) -> ScimResponse:
    """``GET /Users/{id}`` of a SCIM user."""
    return get_one(work, USERS, work.scim_user(uid).id)


def get_group(work: Work, gid: str, _body: object) -> ScimResponse:
    """``GET /Groups/{id}`` of a synced group."""
    return get_one(work, GROUPS, work.synced_group(gid))


def search(work: Work, kind: Kind, body: object | None) -> ScimResponse:
    """A list: ``GET /Users?filter=...`` or ``POST /Users/.search``."""
    params = parameters(work, kind, body)
    found = list(_matching(work, kind, params))
    if params.sort_by is not None:
        with POLICY:
            found = [m.id for m in params.sort([_model(work, kind, rid) for rid in found])]
    start = params.start_index_0 or 0
    count = MAX_RESULTS if params.count is None else min(params.count, MAX_RESULTS)
    page = found[start : start + count]
    resources = [selected(work, kind, rid, params) for rid in page]
    return response(
        200,
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": len(found),
            "startIndex": start + 1,
            "itemsPerPage": len(resources),
            "Resources": resources,
        },
    )


def _model(work: Work, kind: Kind, rid: str) -> Any:  # noqa: ANN401
    if kind is USERS:
        return stored_model(ScimUser, user_data(work, rid))
    return stored_model(ScimGroup, group_data(work, rid, members=False))


def _matching(work: Work, kind: Kind, params: SearchRequest[Any]) -> Iterator[str]:
    """The ids of the resources the filter matches, sorted by id."""
    ids = sorted(uid for uid, user in work.users.items() if user.scim) if kind is USERS else sorted(work.groups)
    if params.filter is None:
        yield from ids
        return
    node = params.filter.ast
    fast = _by_index(work, kind, node)
    if fast is not None:
        yield from fast
        return
    needs_members = kind is GROUPS and "members" in _attributes(node)
    with POLICY:
        for rid in ids:
            if kind is USERS:
                resource = stored_model(ScimUser, user_data(work, rid))
            else:
                resource = stored_model(ScimGroup, group_data(work, rid, members=needs_members))
            if params.filter.match(resource):
                yield rid


def _by_index(work: Work, kind: Kind, node: FilterNode) -> list[str] | None:
    """``userName eq "..."`` and ``id eq "..."`` through the indexes, not a scan."""
    if not (isinstance(node, Comparison) and node.op == "eq" and isinstance(node.value, str)):
        return None
    path = node.attr_path
    if path.sub_attr is not None or (
        path.uri is not None and path.uri.lower() not in (CORE_USER.lower(), CORE_GROUP.lower())
    ):
        return None
    attr = path.attr.lower()
    if attr == "id":
        exists = (
            node.value in work.users and work.users[node.value].scim if kind is USERS else node.value in work.groups
        )
        return [node.value] if exists else []
    if attr == "username" and kind is USERS:
        try:
            uid = work.keys.get(user_name_key(node.value))
        except ValueError:
            return []
        return [uid] if uid is not None and work.users[uid].scim else []
    return None


def _attributes(node: FilterNode) -> set[str]:
    """The lower-cased attribute names a filter reads."""
    if isinstance(node, (Comparison, Present)):
        return {node.attr_path.attr.lower()}
    if isinstance(node, ValuePath):
        return {node.attr_path.attr.lower()}
    if isinstance(node, Not):
        return _attributes(node.expr)
    assert isinstance(node, LogicalExpr)  # noqa: S101 -- the filter grammar's last kind of node
    return set().union(*(_attributes(term) for term in node.terms))
