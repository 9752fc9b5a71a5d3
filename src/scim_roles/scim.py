"""SCIM 2.0 in: turn the requests an IdP sends into model changes — pure and atomic.

A host's SCIM endpoint decodes each request's JSON and hands it here with
the current :class:`Directory`; it gets back the new directory, the
membership changes the request caused, and the status to answer — or a
:class:`ScimError` whose :meth:`ScimError.to_scim` is the RFC 7644 error
body. The directory given is never changed. See ``docs/scim.md`` for every
decision.

>>> from scim_roles import IdpGroup, Org, Role, Team
>>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER,
...           groups=[IdpGroup("okta-eng", ["eng"], Role.TEAM_ADMIN)])
>>> d = Directory(org)
>>> out = apply_request(d, ScimRequest("POST", "/Users", {"userName": "ann@example.com"}))
>>> out.status, [c.describe() for c in out.changes]
(201, ['ann@example.com: added to eng as Member'])
>>> out = apply_request(out.directory, ScimRequest("PATCH", "/Groups/okta-eng", {
...     "Operations": [{"op": "Add", "path": "members", "value": [{"value": "ANN@example.com"}]}]}))
>>> [c.describe() for c in out.changes]
['ann@example.com: eng Member -> Team Admin']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._bulk import Change, diff
from ._errors import InvalidUser, Problem, ScimRolesError
from ._model import IdpGroup, Org, User
from ._pmap import PMap
from ._resolve import index_of, resolve_indexed, user_problems
from ._result import Resolution

__all__ = ["Directory", "Outcome", "ScimError", "ScimRequest", "apply_request"]

_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"([^"]*)"\s*\]$', re.IGNORECASE)
_NO_MEMBERS: PMap[str, None] = PMap()


class ScimError(ScimRolesError):
    """A refused SCIM request, with what the endpoint should answer.

    Attributes:
        status: The HTTP status: 400, 404, 409 or 501.
        scim_type: The RFC 7644 ``scimType`` (``invalidValue``,
            ``uniqueness``, ``mutability``, ``invalidSyntax``,
            ``invalidPath``, ``noTarget``), or ``None``.
        detail: What is wrong, for a person to read.
    """

    status: int
    scim_type: str | None
    detail: str

    def __init__(self, status: int, scim_type: str | None, detail: str, *, subject: str = "request") -> None:
        self.status, self.scim_type, self.detail = status, scim_type, detail
        super().__init__(Problem(subject, f"status {status}", detail))

    def to_scim(self) -> dict[str, Any]:
        """The RFC 7644 section 3.12 error body."""
        body: dict[str, Any] = {"schemas": [_ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type is not None:
            body["scimType"] = self.scim_type
        return body

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.status, self.scim_type, self.detail, self.problems[0].subject))


def _rebuild_error(status: int, scim_type: str | None, detail: str, subject: str) -> ScimError:
    return ScimError(status, scim_type, detail, subject=subject)


ScimError.__module__ = "scim_roles.scim"


@attrs.frozen
class ScimRequest:
    """What the host's SCIM endpoint received.

    Attributes:
        method: ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` (any case).
        path: The path below the SCIM base URL, e.g. ``/Users`` or ``/Groups/g1``.
        body: The decoded JSON body, if any.
        new_id: For ``POST /Groups``: the id to give the group (the IdP's
            stable group id); without it, the group's ``displayName``.
    """

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    new_id: str | None = None


def _user_map(users: Iterable[User]) -> PMap[str, User]:
    return PMap((u.id, u) for u in users)


@attrs.frozen
class Directory:
    """An org and its users, as the SCIM layer sees them. Frozen.

    Attributes:
        org: The org.
        users: Every user by id, deprovisioned ones included. A hash map:
            its iteration order can differ between interpreter runs, so sort
            the ids when order matters.

    Raises:
        InvalidUser: two user ids differ only in letter case, or a user is
            invalid for the org. Problems come in user id order; of two ids
            that differ only in case, the later one in that order is named.
    """

    org: Org
    users: PMap[str, User] = attrs.field(default=(), converter=_user_map)
    _keys: PMap[str, str] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _members: PMap[str, PMap[str, None]] = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        index = index_of(self.org)
        problems: list[Problem] = []
        keys: dict[str, str] = {}
        members: dict[str, dict[str, None]] = {}
        # By id (unique, so users are never compared): problems come in the same order whatever the hash seed.
        for _, user in sorted(self.users.items()):
            problems += user_problems(index, user)
            key = user.id.casefold()
            if key in keys:
                problems.append(
                    Problem(f"user {user.id!r}", "id", f"differs from {keys[key]!r} only in letter case", user.id)
                )
            keys[key] = user.id
            for gid in user.groups:
                members.setdefault(gid, {})[user.id] = None
        if problems:
            raise InvalidUser(*problems)
        object.__setattr__(self, "_keys", PMap(keys))
        object.__setattr__(self, "_members", PMap((g, PMap(m)) for g, m in members.items()))

    def user(self, user_name: str) -> User | None:
        """The user with this id or SCIM ``userName``, in any letter case."""
        uid = self._keys.get(user_name.casefold())
        return None if uid is None else self.users[uid]

    def members(self, group_id: str) -> frozenset[str]:
        """The ids of the users in a group."""
        return frozenset(self._members.get(group_id, _NO_MEMBERS))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Directory, (self.org, tuple(self.users.values())))


@attrs.frozen
class Outcome:
    """What a SCIM request did.

    Attributes:
        directory: The new state (the old one is untouched).
        changes: The membership changes the request caused, sorted by
            (user id, team).
        status: What the endpoint should answer: 200, 201 or 204.
    """

    directory: Directory
    changes: tuple[Change, ...]
    status: int


def apply_request(directory: Directory, request: ScimRequest) -> Outcome:
    """Apply one SCIM request, all or nothing.

    Args:
        directory: The current state.
        request: The request as received.

    Returns:
        The new directory, the membership changes and the status to answer.

    Raises:
        ScimError: the request is refused (its ``status``, ``scim_type``
            and ``detail`` say how to answer); nothing of it was applied.
    """
    method = request.method.upper()
    parts = [p for p in request.path.split("?")[0].strip("/").split("/") if p]
    if not parts:
        raise ScimError(404, None, "no resource at the SCIM base URL; use /Users or /Groups")
    resource, rest = parts[0], parts[1:]
    if resource.lower() == "bulk":
        raise ScimError(501, None, "bulk operations are not supported; send one request per change")
    if resource.lower() == "teams":
        raise ScimError(404, None, "teams are created and deleted in the app only, never by the IdP")
    if resource not in ("Users", "Groups") or len(rest) > 1:
        raise ScimError(404, None, f"no such resource: {request.path}")
    if method == "GET":
        raise ScimError(501, None, "this endpoint applies changes only; reads are served from the host's own store")
    work = _Work(directory)
    if resource == "Users":
        status = _users(work, method, rest[0] if rest else None, request)
    else:
        status = _groups(work, method, rest[0] if rest else None, request)
    return work.outcome(status)


class _Work:
    """A request's working copy: the new maps, and the users it touched."""

    def __init__(self, directory: Directory) -> None:
        self.old = directory
        self.org = directory.org
        self.users = directory.users
        self.keys = directory._keys  # noqa: SLF001 -- this module's own index
        self.members = directory._members  # noqa: SLF001
        self.touched: set[str] = set()

    def put_user(self, user: User) -> None:
        old = self.users.get(user.id)
        old_groups = old.groups if old is not None else frozenset()
        for gid in old_groups - user.groups:
            self.members = self.members.set(gid, self.members.get(gid, _NO_MEMBERS).delete(user.id))
        for gid in user.groups - old_groups:
            self.members = self.members.set(gid, self.members.get(gid, _NO_MEMBERS).set(user.id, None))
        self.users = self.users.set(user.id, user)
        self.keys = self.keys.set(user.id.casefold(), user.id)
        self.touched.add(user.id)

    def outcome(self, status: int) -> Outcome:
        new = Directory.__new__(Directory)
        for name, value in (("org", self.org), ("users", self.users), ("_keys", self.keys), ("_members", self.members)):
            object.__setattr__(new, name, value)
        old_index, new_index = index_of(self.old.org), index_of(self.org)
        changes: list[Change] = []
        for uid in sorted(self.touched):
            before = self.old.users.get(uid)
            old_res = resolve_indexed(old_index, before) if before is not None else Resolution(uid, ())
            changes += diff(old_res, resolve_indexed(new_index, self.users[uid]))
        return Outcome(new, tuple(changes), status)


# -- values as IdPs send them


def _body(request: ScimRequest) -> Mapping[str, Any]:
    if not isinstance(request.body, Mapping):
        raise ScimError(400, "invalidSyntax", "the request needs a JSON object body")
    return request.body


def _flag(value: object, what: str) -> bool:
    """A SCIM boolean: true/false, or the strings "True"/"False" in any case (Entra ID)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, "invalidValue", f"{what} must be true or false, got {value!r}")


def _refuse_password(attributes: Iterable[object]) -> None:
    if any(isinstance(k, str) and k.lower() == "password" for k in attributes):
        raise ScimError(400, "invalidValue", "password sync is not supported; passwords stay with the IdP")


def _operations(body: Mapping[str, Any]) -> list[tuple[str, str | None, Any]]:
    ops = body.get("Operations")
    if not isinstance(ops, list) or not ops:
        raise ScimError(400, "invalidSyntax", "a PATCH needs a non-empty 'Operations' list")
    out = []
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping) or not isinstance(op.get("op"), str):
            raise ScimError(400, "invalidSyntax", f"Operations[{i}] needs an 'op'")
        kind = op["op"].lower()
        if kind not in ("add", "remove", "replace"):
            raise ScimError(400, "invalidSyntax", f"Operations[{i}]: unknown op {op['op']!r}")
        path = op.get("path")
        if path is not None and not isinstance(path, str):
            raise ScimError(400, "invalidPath", f"Operations[{i}]: path must be a string")
        out.append((kind, path, op.get("value")))
    return out


# -- /Users


def _users(work: _Work, method: str, name: str | None, request: ScimRequest) -> int:
    if name is None:
        if method != "POST":
            raise ScimError(404, None, f"{method} /Users needs a user: /Users/{{userName}}")
        return _create_user(work, _body(request))
    if method == "POST":
        raise ScimError(404, None, "POST goes to /Users, not to a user")
    user = work.old.user(name)
    if user is None or not user.scim:
        raise ScimError(404, None, f"no SCIM user {name!r}", subject=f"user {name!r}")
    if method == "DELETE":
        if user.deprovisioned:
            raise ScimError(404, None, f"user {user.id!r} was already deprovisioned", subject=f"user {user.id!r}")
        work.put_user(attrs.evolve(user, deprovisioned=True))
        return 204
    return _update_user(work, user, method, request)


def _update_user(work: _Work, user: User, method: str, request: ScimRequest) -> int:
    if method not in ("PUT", "PATCH"):
        raise ScimError(501, None, f"{method} is not supported on /Users/{{id}}")
    body = _body(request)
    if method == "PUT":
        _refuse_password(body)
        _check_user_name(user, body.get("userName"))
        if "active" in body:
            _set_active(work, user, _flag(body["active"], "active"))
        return 200
    for kind, path, value in _operations(body):
        _patch_user(work, work.users[user.id], kind, path, value)
    return 200


def _create_user(work: _Work, body: Mapping[str, Any]) -> int:
    _refuse_password(body)
    user_name = body.get("userName")
    if not isinstance(user_name, str) or not user_name:
        raise ScimError(400, "invalidValue", "userName is required and must be a non-empty string")
    active = _flag(body.get("active", True), "active")
    existing = work.old.user(user_name)
    if existing is not None and existing.scim and not existing.deprovisioned:
        raise ScimError(409, "uniqueness", f"a SCIM user {existing.id!r} already exists", subject=f"user {user_name!r}")
    if existing is None or existing.deprovisioned:  # a returning user is a new user: nothing carried over
        user = User(existing.id if existing else user_name, scim=True)
    else:  # a SAML or manual user, now managed by SCIM (R5, R8, R9)
        user = attrs.evolve(existing, scim=True)
    work.put_user(attrs.evolve(user, deprovisioned=not active) if not active else user)
    return 201


def _check_user_name(user: User, user_name: object) -> None:
    if user_name is not None and (not isinstance(user_name, str) or user_name.casefold() != user.id.casefold()):
        raise ScimError(
            400,
            "mutability",
            f"userName is the user's identity and cannot change from {user.id!r}",
            subject=f"user {user.id!r}",
        )


def _set_active(work: _Work, user: User, active: bool) -> None:  # noqa: FBT001 -- the SCIM attribute's value
    if active and user.deprovisioned:
        raise ScimError(
            400,
            "invalidValue",
            f"user {user.id!r} was deprovisioned and cannot be reactivated; provision a new user",
            subject=f"user {user.id!r}",
        )
    if not active and not user.deprovisioned:
        work.put_user(attrs.evolve(user, deprovisioned=True))


def _patch_user(work: _Work, user: User, kind: str, path: str | None, value: Any) -> None:  # noqa: ANN401
    if path is None:
        if not isinstance(value, Mapping):
            raise ScimError(400, "invalidSyntax", "an operation without a path needs an object value")
        _refuse_password(value)
        _check_user_name(user, value.get("userName"))
        if "active" in value:
            _set_active(work, user, _flag(value["active"], "active"))
        return
    attribute = path.split("[")[0].split(".")[0].lower()
    if attribute == "password":
        _refuse_password({"password": None})
    if attribute == "username":
        _check_user_name(user, value)
    if attribute == "active":
        if kind == "remove":
            raise ScimError(400, "mutability", "active cannot be removed; replace it with true or false")
        _set_active(work, user, _flag(value, "active"))


# -- /Groups


def _groups(work: _Work, method: str, gid: str | None, request: ScimRequest) -> int:
    if gid is None:
        if method != "POST":
            raise ScimError(404, None, f"{method} /Groups needs a group: /Groups/{{id}}")
        return _create_group(work, _body(request), request.new_id)
    if method == "POST":
        raise ScimError(404, None, "POST goes to /Groups, not to a group")
    if gid not in index_of(work.org).group_ids:
        raise ScimError(404, None, f"no IdP group {gid!r}", subject=f"group {gid!r}")
    if method == "DELETE":
        for uid in work.members.get(gid, _NO_MEMBERS):
            user = work.users[uid]
            work.put_user(attrs.evolve(user, groups=user.groups - {gid}))
        work.members = work.members.delete(gid)
        work.org = attrs.evolve(work.org, groups=[g for g in work.org.groups if g.id != gid])
        return 204
    if method not in ("PUT", "PATCH"):
        raise ScimError(501, None, f"{method} is not supported on /Groups/{{id}}")
    body = _body(request)
    if method == "PUT":
        _set_members(work, gid, _member_ids(work, body.get("members")))
        return 200
    for kind, path, value in _operations(body):
        _patch_group(work, gid, kind, path, value)
    return 200


def _create_group(work: _Work, body: Mapping[str, Any], new_id: str | None) -> int:
    name = body.get("displayName")
    if not isinstance(name, str) or not name:
        raise ScimError(400, "invalidValue", "displayName is required and must be a non-empty string")
    gid: object = new_id if new_id is not None else name
    if not isinstance(gid, str) or not gid:
        raise ScimError(400, "invalidValue", "the group id must be a non-empty string")
    if gid in index_of(work.org).group_ids:
        raise ScimError(409, "uniqueness", f"an IdP group {gid!r} is already synced", subject=f"group {gid!r}")
    members = _member_ids(work, body.get("members"))
    work.org = attrs.evolve(work.org, groups=[*work.org.groups, IdpGroup(gid)])  # blank mapping: R2 applies
    _set_members(work, gid, members)
    return 201


def _removed_ids(work: _Work, value: object) -> set[str]:
    """The user ids of a members list to remove; unknown users and non-members are no-ops."""
    refs = value if isinstance(value, list) else [value]
    out = set()
    for member in refs:
        ref = member.get("value") if isinstance(member, Mapping) else None
        if not isinstance(ref, str):
            raise ScimError(400, "invalidValue", f"a member needs a string 'value', got {member!r}")
        uid = work.keys.get(ref.casefold())
        if uid is not None:
            out.add(uid)
    return out


def _member_ids(work: _Work, value: object) -> list[str]:
    """The user ids of a SCIM members list to add; each must be an active SCIM user."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise ScimError(400, "invalidValue", "members must be a list of {'value': userName}")
    ids, unknown, inactive = [], [], []
    for member in value:
        ref = member.get("value") if isinstance(member, Mapping) else None
        if not isinstance(ref, str):
            raise ScimError(400, "invalidValue", f"a member needs a string 'value', got {member!r}")
        uid = work.keys.get(ref.casefold())
        user = work.users[uid] if uid is not None else None
        if user is None:
            unknown.append(ref)
        elif not user.scim or user.deprovisioned:
            inactive.append(user.id)
        else:
            ids.append(user.id)
    if unknown:
        raise ScimError(404, None, f"no such users: {', '.join(map(repr, unknown))}")
    if inactive:
        raise ScimError(
            400, "invalidValue", f"not provisioned SCIM users, so not members: {', '.join(map(repr, inactive))}"
        )
    return ids


def _members_op(work: _Work, gid: str, kind: str, value: object) -> None:
    """add, remove or replace members; a remove with no value removes them all.

    Adding or removing costs what the listed members cost, whatever the
    group's size; replacing costs the old and the new members.
    """
    if kind == "replace":
        _set_members(work, gid, _member_ids(work, value))
        return
    current = work.members.get(gid, _NO_MEMBERS)
    if kind == "add":
        for uid in _member_ids(work, value):
            if uid not in current:
                user = work.users[uid]
                work.put_user(attrs.evolve(user, groups=user.groups | {gid}))
    elif value is None:
        _set_members(work, gid, ())
    else:
        for uid in _removed_ids(work, value):
            if uid in current:
                user = work.users[uid]
                work.put_user(attrs.evolve(user, groups=user.groups - {gid}))


def _set_members(work: _Work, gid: str, ids: Iterable[str]) -> None:
    wanted = set(ids)
    current = set(work.members.get(gid, _NO_MEMBERS))
    for uid in current - wanted:
        user = work.users[uid]
        work.put_user(attrs.evolve(user, groups=user.groups - {gid}))
    for uid in wanted - current:
        user = work.users[uid]
        work.put_user(attrs.evolve(user, groups=user.groups | {gid}))


def _patch_group(work: _Work, gid: str, kind: str, path: str | None, value: Any) -> None:  # noqa: ANN401
    if path is None:  # Okta: {"op": "replace", "value": {"id": ..., "displayName": ..., "members": [...]}}
        if not isinstance(value, Mapping):
            raise ScimError(400, "invalidSyntax", "an operation without a path needs an object value")
        if "members" in value:
            _members_op(work, gid, kind, value["members"])
        return  # displayName and other attributes: accepted, no change to the group's id or mapping
    match = _MEMBER_FILTER.match(path.strip())
    if match is not None:
        if kind != "remove":
            raise ScimError(400, "invalidPath", f"only remove may target {path!r}")
        _members_op(work, gid, kind, [{"value": match.group(1)}])
        return
    if path.lower() == "members":
        _members_op(work, gid, kind, value)
        return
    if path.lower() in ("displayname", "externalid"):
        return  # accepted; the group's id and mapping do not change
    raise ScimError(400, "invalidPath", f"unsupported path {path!r} on a group")
