"""The state the SCIM service works on: an org, its users and what the IdP told about them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from scim_roles._errors import InvalidArgument, InvalidUser, LockedUser, Problem, ScimRolesError, refuse
from scim_roles._index import OrgIndex
from scim_roles._model import Org, User
from scim_roles._preview import Edit, Preview, check_share, preview_of
from scim_roles._resolve import fits, index_of, not_a_user, resolve_indexed, user_problems

from ._names import display_name_key, user_name_key
from ._pmap import PMap
from ._resources import canonical

NO_MEMBERS: PMap[str, str | None] = PMap()


@attrs.frozen(init=False, repr=False)
class Directory:
    """An org and its users, with the SCIM resources the IdP sent. Frozen; compares by value.

    Args:
        org: The org.
        users: Every user, by :attr:`User.id` (the SCIM ``id`` of SCIM users,
            S1); ids unique.
        user_names: The ``userName`` of users known before SCIM (SAML,
            manual), by user id; a user without one has its id as userName.
        resources: The stored SCIM resource of SCIM users, by user id, as
            :meth:`resource` gives it (the host's copy of what the IdP
            sent: ``userName``, ``name``, ``emails``, ``meta`` ...).
            A SCIM user without one has ``{"userName": ..., "active": ...}``.
        groups: The stored SCIM resource of synced groups, by group id, as
            :meth:`group_resource` gives it; members may be listed there
            with their ``display``. A group without one is named by its id.

    Attributes:
        org: The org.
        users: Every user by id: a hash map, whose iteration order can
            differ between interpreter runs; sort the ids when order matters.

    Raises:
        InvalidUser: a user is invalid for the org (V5, V6), two users'
            userNames compare equal (S2), or a stored resource disagrees with
            its user (an ``active`` that is not the user's state, a
            ``userName`` that is not the one in ``user_names``). Every
            problem at once, in user id order.
        InvalidArgument: an argument is not of the documented type.
    """

    org: Org
    users: PMap[str, User]
    _names: PMap[str, str]
    _resources: PMap[str, str]
    _groups: PMap[str, str]
    _members: PMap[str, PMap[str, str | None]]
    _keys: PMap[str, str] = attrs.field(eq=False, hash=False)
    _titles: PMap[str, str] = attrs.field(eq=False, hash=False)

    def __init__(
        self,
        org: Org,
        users: Iterable[User] = (),
        *,
        user_names: Mapping[str, str] | None = None,
        resources: Mapping[str, Mapping[str, Any]] | None = None,
        groups: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        index = index_of(org)
        names_in = _mapping("user_names", user_names)
        resources_in = _mapping("resources", resources)
        groups_in = _mapping("groups", groups)
        by_id, problems = _by_id(users)
        names, keys, stored, members = _user_records(index, by_id, names_in, resources_in, problems)
        problems += [
            Problem(f"user {u!r}", "resources", "is not a SCIM user of the directory", str(u))
            for u in sorted(set(resources_in) - {u for u, user in by_id.items() if user.scim}, key=str)
        ]
        problems += [
            Problem(f"user {u!r}", "user_names", "is not a user of the directory", str(u))
            for u in sorted(set(names_in) - set(by_id), key=str)
        ]
        group_records = {gid: canonical({"displayName": gid}) for gid in index.group_ids}
        group_names = {gid: gid for gid in index.group_ids}
        for gid, resource in sorted(groups_in.items(), key=lambda item: str(item[0])):
            found = _group_record(resource, members[gid] if gid in index.group_ids else None)
            problems += [Problem(f"group {gid!r}", field, detail, str(gid)) for field, detail in found]
            if not found:
                group_records[gid] = canonical({k: v for k, v in resource.items() if k not in ("id", "members")})
                group_names[gid] = resource["displayName"]
        refuse(InvalidUser, problems)
        titles = _titles(group_names)
        self.__attrs_init__(
            org=org,
            users=PMap(by_id),
            names=PMap(names),
            resources=PMap(stored),
            groups=PMap(group_records),
            members=PMap((g, PMap(m)) for g, m in members.items()),
            keys=PMap(keys),
            titles=PMap(titles),
        )

    @classmethod
    def _stored(  # noqa: PLR0913 -- the stored rows, one argument per table
        cls,
        org: Org,
        *,
        users: dict[str, User],
        names: dict[str, str],
        keys: dict[str, str],
        resources: dict[str, str],
        groups: Mapping[str, Mapping[str, Any]],
        members: Mapping[str, dict[str, str | None]],
    ) -> Directory:
        """A directory from rows its store wrote from a valid one: only the users' fit to the org is checked.

        For a store loading its own state (100,000 users in about a second):
        each user's userName and its key, and the resource as
        :func:`canonical` text, are taken as they were written. That each
        user still fits the org (V5, V6) is checked, one set lookup each:
        settings are stored apart from the users. The store's ``check``
        builds the same state through :class:`Directory` itself and compares
        the two, so what this trusts is verified on demand.

        Raises:
            InvalidUser: a user's groups or manual grants are not the org's.
        """
        index = index_of(org)
        if not all(fits(index, user) for user in users.values()):  # every problem, in user id order
            refuse(InvalidUser, [problem for uid in sorted(users) for problem in user_problems(index, users[uid])])
        group_records = {
            gid: canonical({k: v for k, v in r.items() if k not in ("id", "members")}) for gid, r in groups.items()
        }
        titles = _titles({gid: resource["displayName"] for gid, resource in groups.items()})
        new = cls.__new__(cls)
        new.__attrs_init__(
            org=org,
            users=PMap(users),
            names=PMap(names),
            resources=PMap(resources),
            groups=PMap(group_records),
            members=PMap((gid, PMap(members.get(gid, {}))) for gid in groups),
            keys=PMap(keys),
            titles=PMap(titles),
        )
        return new

    def _evolve(self, **changes: Any) -> Directory:  # noqa: ANN401 -- the fields' own types
        """This directory with some of its state replaced (by field name, without the underscore): no checks.

        For this package's own writers, which keep the indexes in step with
        what they change.
        """
        new = Directory.__new__(Directory)
        new.__attrs_init__(**{**self._state(), **changes})
        return new

    def _state(self) -> dict[str, Any]:
        """The fields by the names :meth:`_evolve` takes: what a request's work starts from."""
        return {(a.alias or a.name): getattr(self, a.name) for a in attrs.fields(Directory)}

    def with_user(self, user: User, *, user_name: str | None = None) -> Directory:
        """This directory with one user added or changed by the app, not by SCIM: cost ∝ that user.

        For an admin's edit (manual grants, an invite) or a SAML sign-in. SCIM
        owns a SCIM user's ``scim``, ``groups`` and ``deprovisioned``: they
        cannot change here, and a new user cannot be a SCIM user.

        Args:
            user: The user's new record.
            user_name: Its ``userName``: for a new user, its id if not given;
                for a known one, unchanged if not given.

        Returns:
            The new directory; this one is untouched.

        Raises:
            LockedUser: the edit changes the manual grants of a locked (R8)
                or deprovisioned (R10) user: refused, never kept for later (T5).
            InvalidUser: the user is invalid for the org (V5, V6), its
                userName is another user's (S2) or invalid, or the change
                is SCIM's to make.

        >>> from scim_roles import Grant, Org, Role, Team, User
        >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER)
        >>> d = Directory(org).with_user(User("u1", saml=True), user_name="ann@example.com")
        >>> d.user("ANN@example.com")
        User(id='u1', saml=True, scim=False, groups=frozenset(), deprovisioned=False, manual=frozenset())
        """
        if not isinstance(user, User):
            raise InvalidUser(not_a_user(user))
        subject = f"user {user.id!r}"
        old = self.users.get(user.id)
        problems = user_problems(index_of(self.org), user)
        if old is None and user.scim:
            problems.append(
                Problem(subject, "scim", "a SCIM user is provisioned by the IdP, through a request", user.id)
            )
        if (
            old is not None
            and old.scim
            and (old.scim, old.groups, old.deprovisioned)
            != (
                user.scim,
                user.groups,
                user.deprovisioned,
            )
        ):
            problems.append(
                Problem(subject, "scim", "SCIM owns scim, groups and deprovisioned of a SCIM user", user.id)
            )
        locked = old is not None and user.manual != old.manual and self._locked_reason(old)
        if locked:
            problems.append(Problem(subject, "manual", f"{locked}; the manual edit is refused (T5)", user.id))
        name = user_name if user_name is not None else (self._names[user.id] if old is not None else user.id)
        try:
            key = user_name_key(name)
        except ScimRolesError as err:
            problems.append(Problem(subject, "userName", err.problems[0].detail, user.id))
        else:
            holder = self._keys.get(key)
            if holder is not None and holder != user.id:
                problems.append(
                    Problem(subject, "userName", f"{name!r} is the userName of {holder!r} too (S2)", user.id)
                )
        refuse(LockedUser if locked else InvalidUser, problems)
        keys = self._keys
        if old is not None:
            keys = keys.delete(user_name_key(self._names[user.id]))
        # The group index stands: only SCIM changes a user's groups.
        return self._evolve(
            users=self.users.set(user.id, user), names=self._names.set(user.id, name), keys=keys.set(key, user.id)
        )

    def _locked_reason(self, user: User) -> str:
        """Why manual edits cannot change this user's access (T5), or ``""``: they can."""
        if user.deprovisioned:
            return "is deprovisioned: manual grants of a deprovisioned user are never kept (R10)"
        if resolve_indexed(index_of(self.org), user).locked:
            return "is locked: SCIM manages the user and 'Editing users manually' is off (R8)"
        return ""

    def with_org(self, org: Org) -> Directory:
        """This directory under the org's new settings (an admin's edit): cost ∝ the groups and teams it changes.

        Groups the new org adds start with no members, named by their id; a
        group it drops must have none (the IdP removes synced groups, by
        ``DELETE /Groups``), a team it drops must hold no user's manual
        grant, and a group it adds may not take the ``displayName`` of a
        synced group (map that group's id instead).

        Raises:
            InvalidOrg: ``org`` is not an :class:`Org`.
            InvalidUser: a dropped group still has members, a dropped team
                still has manual grants, or an added group's id is another
                group's name; every problem at once.
        """
        self._refuse(org, "with_org")
        new, old = index_of(org), index_of(self.org)
        groups, members, titles = self._groups, self._members, self._titles
        for gid in old.group_ids - new.group_ids:
            titles = without_title(titles, gid, self._groups[gid])
            groups, members = groups.delete(gid), members.delete(gid)
        for gid in sorted(new.group_ids - old.group_ids):
            groups = groups.set(gid, canonical({"displayName": gid}))
            members = members.set(gid, NO_MEMBERS)
            titles = titles.set(display_name_key(gid), gid)
        return self._evolve(org=org, groups=groups, members=members, titles=titles)

    def _refuse(self, org: Org, where: str) -> None:
        """Refuse settings that would leave this directory invalid: one check for :meth:`preview` and :meth:`with_org`.

        What the preview refuses, the save refuses, with the same message (T4).
        """
        new, old = index_of(org, where), index_of(self.org)
        dropped_groups, dropped_teams = old.group_ids - new.group_ids, old.team_ids - new.team_ids
        problems = [
            Problem(f"user {uid!r}", "groups", f"is a member of {gid!r}, which the new org drops", uid)
            for gid in sorted(dropped_groups)
            for uid in sorted(self.members(gid))
        ]
        if dropped_teams:  # the one edit that reads every user: a team's removal
            problems += [
                Problem(f"user {u.id!r}", "manual", f"has a manual grant on {g.team!r}, which the new org drops", u.id)
                for u in sorted(self.users.values(), key=lambda u: u.id)
                for g in sorted(u.manual, key=lambda g: g.team)
                if g.team in dropped_teams
            ]
        problems += [
            Problem(f"group {gid!r}", "id", f"is the displayName of the synced group {holder!r}: map {holder!r}", gid)
            for gid in sorted(new.group_ids - old.group_ids)
            if (holder := self._titles.get(display_name_key(gid))) is not None and holder not in dropped_groups
        ]
        refuse(InvalidUser, problems)

    def preview(self, after: Org, *, max_share: float = 0.1) -> Preview:
        """The dry run of a settings change over this directory, resolving only the users it can affect.

        Found through the indexes: a mapping edit resolves its group's members;
        the toggle, the SCIM users; a defaults edit or claimed domains,
        everyone; a dropped team, the users with manual grants on it. The same :class:`~scim_roles.Preview`
        as :func:`scim_roles.preview` gives for these users.

        Raises:
            InvalidOrg: ``after`` is not an :class:`Org`.
            InvalidUser: the settings would leave users invalid, exactly as
                :meth:`with_org` refuses them (a dropped group with members,
                a dropped team with manual grants).
            InvalidArgument: ``max_share`` is not a number from 0 to 1.
        """
        self._refuse(after, "preview: after")
        check_share(max_share)
        edit = Edit.of(self.org, after)
        if edit.defaults or edit.domains:
            affected = list(self.users.values())
        else:
            ids = {uid for gid in edit.groups for uid in self.members(gid)}
            if edit.toggle:
                ids.update(uid for uid, user in self.users.items() if user.scim)
            if edit.teams:
                ids.update(uid for uid, user in self.users.items() if edit.may_change(user))
            affected = [self.users[uid] for uid in ids]
        affected.sort(key=lambda u: u.id)
        return preview_of(self.org, after, affected, self.users.values(), total=len(self.users), max_share=max_share)

    def user(self, user_name: str) -> User | None:
        """The user whose ``userName`` compares equal to this one (S2), if any."""
        try:
            uid = self._keys.get(user_name_key(user_name))
        except ScimRolesError:
            return None
        return None if uid is None else self.users[uid]

    def user_name(self, user_id: str) -> str:
        """A user's ``userName``.

        Raises:
            KeyError: no such user.
        """
        return self._names[user_id]

    def members(self, group_id: str) -> Mapping[str, str | None]:
        """A group's members: user id to the ``display`` the IdP sent with it (or ``None``)."""
        return self._members.get(group_id, NO_MEMBERS)

    def resource(self, user_id: str) -> dict[str, Any] | None:
        """The stored SCIM resource of a SCIM user (no ``id``): what a host persists; else ``None``."""
        stored = self._resources.get(user_id)
        if stored is not None:
            return dict(json.loads(stored))
        user = self.users.get(user_id)
        if user is None or not user.scim:
            return None
        return {"userName": self._names[user_id], "active": not user.deprovisioned}

    def resource_json(self, user_id: str) -> str | None:
        """:meth:`resource` as the directory keeps it: :func:`canonical` JSON text, not parsed and re-encoded.

        What a store writes, and hands back to :class:`Directory` as it was.
        """
        stored = self._resources.get(user_id)
        if stored is not None:
            return stored
        resource = self.resource(user_id)
        return None if resource is None else canonical(resource)

    def group_named(self, display_name: str) -> str | None:
        """The id of the synced group with this ``displayName`` (compared as :func:`display_name_key` says), if any."""
        return self._titles.get(display_name_key(display_name))

    def group_resource(self, group_id: str) -> dict[str, Any] | None:
        """The stored SCIM resource of a synced group, without ``id`` or members; else ``None``."""
        stored = self._groups.get(group_id)
        return None if stored is None else dict(json.loads(stored))

    def __repr__(self) -> str:
        return f"Directory(org={self.org!r}, users=<{len(self.users)} users>)"

    def __reduce__(self) -> tuple[Any, ...]:
        users = sorted(self.users.values(), key=lambda u: u.id)
        groups = {
            gid: {
                **json.loads(self._groups[gid]),
                "members": [{"value": u, "display": d} for u, d in sorted(self.members(gid).items())],
            }
            for gid in sorted(self._groups)
        }
        return (
            _rebuild,
            (self.org, users, dict(self._names), {u: json.loads(s) for u, s in self._resources.items()}, groups),
        )


def _titles(names: Mapping[str, str]) -> dict[str, str]:
    """The displayName index: name key to group id (a name two groups share, from before 0.2: the first's)."""
    titles: dict[str, str] = {}
    for gid in sorted(names):
        titles.setdefault(display_name_key(names[gid]), gid)
    return titles


def without_title(titles: PMap[str, str], gid: str, stored: str) -> PMap[str, str]:
    """The displayName index without the name of group ``gid`` (stored as ``stored``), if the group holds it."""
    title = display_name_key(str(json.loads(stored)["displayName"]))
    return titles.delete(title) if titles.get(title) == gid else titles


def _rebuild(
    org: Org,
    users: list[User],
    names: dict[str, str],
    resources: dict[str, dict[str, Any]],
    groups: dict[str, dict[str, Any]],
) -> Directory:
    return Directory(org, users, user_names=names, resources=resources, groups=groups)


def _by_id(users: object) -> tuple[dict[str, User], list[Problem]]:
    if isinstance(users, (str, bytes, Mapping)) or not isinstance(users, Iterable):
        raise InvalidArgument(Problem("Directory", "users", f"must be an iterable of User, got {users!r}"))
    problems: list[Problem] = []
    by_id: dict[str, User] = {}
    for user in users:
        if not isinstance(user, User):
            problems.append(not_a_user(user))
        elif user.id in by_id:
            problems.append(Problem(f"user {user.id!r}", "id", "appears more than once among the users", user.id))
        else:
            by_id[user.id] = user
    return by_id, problems


def _mapping(name: str, value: object) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(Problem("Directory", name, f"must be a mapping by id, got {value!r}"))
    return value


def _user_records(
    index: OrgIndex,
    by_id: dict[str, User],
    names_in: Mapping[Any, Any],
    resources_in: Mapping[Any, Any],
    problems: list[Problem],
) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, dict[str, str | None]]]:
    """Each user's userName, its key, stored resource and groups; what is wrong is added to ``problems``."""
    names: dict[str, str] = {}
    keys: dict[str, str] = {}
    stored: dict[str, str] = {}
    members: dict[str, dict[str, str | None]] = {gid: {} for gid in index.group_ids}
    for uid in sorted(by_id):  # in id order: the later of two equal userNames is the one reported
        user = by_id[uid]
        groups = user.groups
        if not fits(index, user):
            problems += user_problems(index, user)
        name_in, resource_in = names_in.get(uid), resources_in.get(uid)
        found: list[tuple[str, str]]
        if name_in is None and resource_in is None:
            name, resource, found = uid, None, []
        else:
            name, resource, found = _user_record(user, name_in, resource_in)
        key = _name_key(name, found)
        if key is not None:
            if key in keys:
                found.append(("userName", f"{name!r} is the userName of {keys[key]!r} too (S2)"))
            keys[key], names[uid] = uid, name
        if found:
            problems += [Problem(f"user {uid!r}", field, detail, uid) for field, detail in found]
        if resource is not None:
            stored[uid] = canonical(resource)
        for gid in groups:
            members.setdefault(gid, {})[uid] = None
    return names, keys, stored, members


def _name_key(name: str, found: list[tuple[str, str]]) -> str | None:
    """``user_name_key(name)``, or None with the reason added to ``found``."""
    try:
        return user_name_key(name)
    except ScimRolesError as err:
        found.append(("userName", err.problems[0].detail))
        return None


def _user_record(
    user: User, name: object, resource: object
) -> tuple[str, Mapping[str, Any] | None, list[tuple[str, str]]]:
    """A user's userName and stored resource, and what is wrong with them."""
    found: list[tuple[str, str]] = []
    if name is not None and not isinstance(name, str):
        found.append(("user_names", f"must be a string, got {name!r}"))
        name = None
    if resource is None:
        return (name if isinstance(name, str) else user.id), None, found
    if not isinstance(resource, Mapping) or not isinstance(resource.get("userName"), str):
        found.append(("resources", "must be a SCIM resource with a string userName"))
        return user.id, None, found
    if name is not None and name != resource["userName"]:
        found.append(("user_names", f"{name!r} is not the resource's userName {resource['userName']!r}"))
    if resource.get("active", True) is not (not user.deprovisioned):
        found.append(("resources", f"active is {resource.get('active')!r} but deprovisioned is {user.deprovisioned}"))
    if "id" in resource and resource["id"] != user.id:
        found.append(("resources", f"its id {resource['id']!r} is not the user's id"))
    return resource["userName"], {k: v for k, v in resource.items() if k != "id"}, found


def _group_record(resource: object, members: dict[str, str | None] | None) -> list[tuple[str, str]]:
    """Check a stored group resource, and take the members' display from it.

    ``members`` is the group's members, or ``None``: the group is not synced.
    """
    if members is None:
        return [("groups", "is not a group synced to the org")]
    if not isinstance(resource, Mapping) or not isinstance(resource.get("displayName"), str):
        return [("groups", "must be a SCIM resource with a string displayName")]
    listed = resource.get("members", [])
    if not isinstance(listed, list):
        return [("members", "must be a list")]
    found: list[tuple[str, str]] = []
    for member in listed:
        uid = member.get("value") if isinstance(member, Mapping) else None
        if uid not in members:
            found.append(("members", f"{uid!r} is not a member: the users' groups say who is"))
        else:
            display = member.get("display")
            members[uid] = display if isinstance(display, str) else None
    return found
