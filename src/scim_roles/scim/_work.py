"""A request's working copy of the state, and what it changed: the bridge to the rules.

The request handlers tell this module *facts* — a user's new record, a
member added, a user removed — and never how the request spelled them. The
rules themselves (who is locked, what a deprovisioned user keeps) are those
of :func:`scim_roles.resolve_memberships`; this module only turns S5-S7 into
the model: a deactivated user keeps nothing app-side, a reactivated one
starts afresh, a deleted one is gone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from datetime import datetime, timezone
from typing import Any

from scim_roles._changes import Change, diff
from scim_roles._errors import InvalidArgument, Problem
from scim_roles._model import Org, User
from scim_roles._resolve import index_of, resolve_indexed
from scim_roles._result import Resolution

from ._directory import Directory, without_title
from ._errors import ScimError
from ._messages import Outcome, ScimRequest, ScimResponse
from ._names import display_name_key, user_name_key
from ._pmap import PMap
from ._resources import canonical

_VERSION = re.compile(r'^W/"(\d+)"$')


def deprovisioned(user: User) -> User:
    """S5, R10: a deactivated user keeps their IdP groups and nothing app-side (no SAML, no manual grants)."""
    return User(user.id, scim=True, groups=user.groups, deprovisioned=True, email=user.email)


def reactivated(user: User) -> User:
    """S6: a new provisioning under the same id: the IdP's groups count again; nothing app-side comes back."""
    return User(user.id, scim=True, groups=user.groups, email=user.email)


class Work:
    """A request's working copy: new persistent maps, and which users' records changed.

    Its state is the directory's, field by field and by the same names (see
    ``Directory._state``): the writers replace maps, the outcome is a new
    directory of them.
    """

    org: Org
    users: PMap[str, User]
    names: PMap[str, str]
    resources: PMap[str, str]
    groups: PMap[str, str]
    members: PMap[str, PMap[str, str | None]]
    keys: PMap[str, str]
    titles: PMap[str, str]

    def __init__(self, directory: Directory, request: ScimRequest) -> None:
        self.old = directory
        self.request = request
        for name, value in directory._state().items():  # noqa: SLF001 -- this package's own state
            setattr(self, name, value)
        self.touched: set[str] = set()
        self.touched_groups: set[str] = set()
        self.stamp = _stamp(request.now)

    # -- what a path names

    def scim_user(self, uid: str) -> User:
        """The SCIM user with this id (S7: others are not SCIM resources)."""
        user = self.users.get(uid)
        if user is None or not user.scim:
            raise ScimError(404, None, f"no SCIM user with id {uid!r}")
        return user

    def synced_group(self, gid: str) -> str:
        """The synced group with this id."""
        if gid not in self.groups:
            raise ScimError(404, None, f"no group with id {gid!r}")
        return gid

    # -- ids the host minted

    def new_id(self, taken: Container[str]) -> str:
        """The host's ``new_id`` for a resource this request creates; not one of ``taken``."""
        new_id = self.request.new_id
        if not isinstance(new_id, str) or not new_id:
            raise InvalidArgument(
                Problem(
                    "ScimRequest", "new_id", f"this request creates a resource: the host mints its id, got {new_id!r}"
                )
            )
        if new_id in taken:
            raise InvalidArgument(
                Problem("ScimRequest", "new_id", f"{new_id!r} is in use already; ids are never reused (S1)", new_id)
            )
        return new_id

    # -- users

    def put_user(self, user: User) -> None:
        """Store a user's new record; the group index follows its groups."""
        old = self.users.get(user.id)
        old_groups = old.groups if old is not None else frozenset()
        for gid in old_groups - user.groups:
            self.members = self.members.set(gid, self.members[gid].delete(user.id))
        for gid in user.groups - old_groups:
            self.members = self.members.set(gid, self.members[gid].set(user.id, None))
        self.users = self.users.set(user.id, user)
        self.touched.add(user.id)

    def set_name(self, uid: str, name: str, key: str) -> None:
        """A user's userName, and its comparison key."""
        old = self.names.get(uid)
        if old is not None and old != name:
            self.keys = self.keys.delete(_key_of(self.keys, uid, old))
        self.names = self.names.set(uid, name)
        self.keys = self.keys.set(key, uid)
        self.touched.add(uid)

    def set_resource(self, uid: str, data: dict[str, Any]) -> None:
        """A SCIM user's stored resource, stamped with ``meta``."""
        self.resources = self.resources.set(uid, self._stamped(self.resources.get(uid), data))
        self.touched.add(uid)

    def remove_user(self, uid: str) -> None:
        """S7: gone from the directory, its groups and the userName index."""
        user = self.users[uid]
        for gid in user.groups:
            self.members = self.members.set(gid, self.members[gid].delete(uid))
        self.keys = self.keys.delete(_key_of(self.keys, uid, self.names[uid]))
        self.names = self.names.delete(uid)
        self.users = self.users.delete(uid)
        if uid in self.resources:
            self.resources = self.resources.delete(uid)
        self.touched.add(uid)

    # -- groups

    def set_group(self, gid: str, data: dict[str, Any]) -> None:
        """A group's stored resource (no members), stamped with ``meta``; its ``displayName`` unique in the org."""
        name = str(data["displayName"])  # required: the models refuse a group without one
        holder = self.titles.get(display_name_key(name))
        if holder is not None and holder != gid:
            raise ScimError(409, "uniqueness", f"displayName {name!r} is taken by the group {holder!r}")
        before = self.groups.get(gid)
        if before is not None:
            self.titles = without_title(self.titles, gid, before)
        self.titles = self.titles.set(display_name_key(name), gid)
        self.groups = self.groups.set(gid, self._stamped(before, data))
        self.touched_groups.add(gid)

    def remove_group(self, gid: str) -> None:
        """A group gone: its members out of it first (cost ∝ its members)."""
        for uid in list(self.members[gid]):
            self.remove_member(gid, uid)
        self.titles = without_title(self.titles, gid, self.groups[gid])
        self.members = self.members.delete(gid)
        self.groups = self.groups.delete(gid)
        self.touched_groups.add(gid)

    def add_member(self, gid: str, uid: str, display: str | None) -> None:
        """Put a user in a group (or change the ``display`` the IdP gave it)."""
        user = self.users[uid]
        if gid not in user.groups:
            groups = user.groups | {gid}
            self.put_user(User(user.id, user.saml, user.scim, groups, user.deprovisioned, user.manual, user.email))
        elif self.members[gid][uid] == display:
            return
        self.members = self.members.set(gid, self.members[gid].set(uid, display))
        self.touched.add(uid)

    def remove_member(self, gid: str, uid: str) -> None:
        """Take a user out of a group."""
        user = self.users[uid]
        groups = user.groups - {gid}
        self.put_user(User(user.id, user.saml, user.scim, groups, user.deprovisioned, user.manual, user.email))

    def _stamped(self, before: str | None, data: dict[str, Any]) -> str:
        meta = dict(json.loads(before).get("meta", {})) if before is not None else {}
        version = meta.get("version")
        match = _VERSION.match(version) if isinstance(version, str) else None
        meta["version"] = f'W/"{int(match.group(1)) + 1 if match else 1}"'
        if self.stamp is not None:
            meta.setdefault("created", self.stamp)
            meta["lastModified"] = self.stamp
        return canonical({**data, "meta": meta})

    # -- the result

    def outcome(self, answer: ScimResponse) -> Outcome:
        """The new directory, each touched user's changes and resolution; a read keeps the directory given."""
        was = self.old._state()  # noqa: SLF001 -- this package's own state
        state = {name: getattr(self, name) for name in was}
        if all(value is was[name] for name, value in state.items()):
            return Outcome(self.old, answer)
        new = self.old._evolve(**state)  # noqa: SLF001
        old_index, new_index = index_of(self.old.org), index_of(self.org)
        changes: list[Change] = []
        touched: dict[str, Resolution | None] = {}
        for uid in sorted(self.touched):
            before, after = self.old.users.get(uid), self.users.get(uid)
            old_res = resolve_indexed(old_index, before) if before is not None else Resolution(uid, ())
            new_res = resolve_indexed(new_index, after) if after is not None else None
            changes += diff(old_res, new_res if new_res is not None else Resolution(uid, ()))
            touched[uid] = new_res
        return Outcome(new, answer, tuple(changes), PMap(touched), frozenset(self.touched_groups))


def _key_of(keys: PMap[str, str], uid: str, name: str) -> str:
    key = user_name_key(name)
    assert keys.get(key) == uid  # noqa: S101 -- the index's invariant
    return key


def _stamp(now: object) -> str | None:
    if now is None:
        return None
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidArgument(Problem("ScimRequest", "now", f"must be an aware datetime, got {now!r}"))
    return now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
