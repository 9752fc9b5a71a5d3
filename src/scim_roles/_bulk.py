"""Many users at once: ``resolve_all``, ``diff`` and the dry-run ``preview``."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import attrs

from ._errors import InvalidArgument, InvalidUser, Problem, got, shown
from ._index import OrgIndex
from ._model import Org, User, team_of
from ._resolve import index_of, not_a_user, resolve_indexed, user_problems
from ._result import Resolution
from ._roles import Role
from ._words import counted


class Resolutions(Mapping[str, Resolution]):
    """The resolutions of many users, keyed by user id; read-only, hashable, picklable.

    Iterates in the order the users were given.
    """

    __slots__ = ("_data",)

    def __init__(self, items: Iterable[tuple[str, Resolution]] = ()) -> None:
        data = {}
        for item in iterable("Resolutions", "items", items):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Resolution)):
                raise InvalidArgument(
                    Problem("Resolutions", "items", f"must be (user id, Resolution) pairs, {got(item)}")
                )
            data[item[0]] = item[1]
        self._data = data

    @classmethod
    def _of(cls, data: dict[str, Resolution]) -> Resolutions:
        """Wrap a dict this module built and hands over: no copy."""
        self = cls.__new__(cls)
        self._data = data
        return self

    def __getitem__(self, user_id: str) -> Resolution:
        return self._data[user_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resolutions):
            return self._data == other._data
        return super().__eq__(other)

    def __repr__(self) -> str:
        return f"Resolutions({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Resolutions, (tuple(self._data.items()),))


_SEEN = Resolution("", ())  # stands in for users resolved no more once a problem is found


def resolve_all(org: Org, users: Iterable[User]) -> Resolutions:
    """Resolve every user of an org; all or nothing.

    Args:
        org: The org.
        users: Its users, in any iterable; ids must be unique.

    Returns:
        Each user's :class:`Resolution`, keyed by user id, in the order given.

    Raises:
        InvalidOrg: ``org`` is not an :class:`Org`.
        InvalidUser: a user id repeats, or any user is invalid for the org
            (every problem of every user, at once).
        InvalidArgument: ``users`` is not a collection.

    >>> from scim_roles import Org, Team, Role, User
    >>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER)
    >>> sorted(resolve_all(org, [User("a", saml=True), User("b", scim=True)]))
    ['a', 'b']
    >>> resolve_all(org, [User("a", saml=True), User("a", scim=True)])
    Traceback (most recent call last):
    ...
    scim_roles.InvalidUser: user 'a': id: appears more than once among the users
    """
    index = index_of(org, "resolve_all")
    resolved: dict[str, Resolution] = {}
    problems: list[Problem] = []
    group_ids, team_ids = index.group_ids, index.team_ids
    for user in iterable("resolve_all", "users", users):
        if type(user) is not User and not isinstance(user, User):
            problems.append(not_a_user(user, "resolve_all"))
            continue
        uid = user.id
        if uid in resolved:
            problems.append(_repeated(uid))
        # The common case checked inline (this loop is hot); user_problems says what is wrong.
        if not (user.groups <= group_ids and (not user.manual or team_ids.issuperset(map(team_of, user.manual)))):
            problems += user_problems(index, user)
        if problems:  # after the first problem, only look for more; keep the ids seen
            resolved[uid] = _SEEN
        else:
            resolved[uid] = resolve_indexed(index, user)
    if problems:
        raise InvalidUser(*problems)
    return Resolutions._of(resolved)  # noqa: SLF001 -- this module's own class


@attrs.frozen
class Change:
    """One user's access to one team changed.

    Attributes:
        user_id: The user.
        team: The team.
        before: The role before; ``None``: the user was added to the team.
        after: The role after; ``None``: the user was removed from the team.
    """

    user_id: str
    team: str
    before: Role | None
    after: Role | None

    @property
    def is_loss(self) -> bool:
        """The user lost the team, or got a lower role on it."""
        return self.before is not None and (self.after is None or self.after < self.before)

    def describe(self) -> str:
        """The change as an admin reads it."""
        user, team = shown(self.user_id), shown(self.team)
        if self.before is None:
            return f"{user}: added to {team} as {_label(self.after)}"
        if self.after is None:
            return f"{user}: removed from {team} (was {self.before.label})"
        return f"{user}: {team} {self.before.label} -> {self.after.label}"


def _label(role: Role | None) -> str:
    return "nothing" if role is None else role.label


def diff(before: Resolution, after: Resolution) -> tuple[Change, ...]:
    """What changed in one user's access, team by team.

    Args:
        before: The user's resolution before.
        after: The same user's resolution after.

    Returns:
        The changes sorted by team: equal resolutions give ``()``.

    Raises:
        InvalidUser: the two resolutions are of different users.
        InvalidArgument: ``before`` or ``after`` is not a :class:`Resolution`.
    """
    for name, value in (("before", before), ("after", after)):
        if not isinstance(value, Resolution):
            raise InvalidArgument(Problem("diff", name, f"must be a Resolution, {got(value)}"))
    if before.user_id != after.user_id:
        raise InvalidUser(
            Problem(
                f"user {after.user_id!r}",
                "user_id",
                f"cannot diff against the resolution of another user, {before.user_id!r}",
                after.user_id,
            )
        )
    if before.memberships == after.memberships:
        return ()
    old, new = before.roles, after.roles
    uid = after.user_id
    return tuple(
        Change(uid, team, old.get(team), new.get(team))
        for team in sorted(old.keys() | new.keys())
        if old.get(team) is not new.get(team)
    )


@attrs.frozen
class StateChange:
    """A change in whether a user is locked (R8) or an org admin (R11).

    A host applies these as it applies membership changes: a lock tells
    its UI to refuse manual edits of that user.

    Attributes:
        user_id: The user.
        state: ``"locked"`` or ``"org_admin"``.
        before: The state before.
        after: The state after.
    """

    user_id: str
    state: str
    before: bool
    after: bool

    def describe(self) -> str:
        """The change as an admin reads it."""
        user = shown(self.user_id)
        if self.state == "locked":
            return f"{user}: locked (SCIM-managed; manual edits are off)" if self.after else f"{user}: unlocked"
        return f"{user}: becomes an org admin" if self.after else f"{user}: no longer an org admin"


def states(before: Resolution, after: Resolution) -> list[StateChange]:
    """The lock and org-admin changes between two resolutions of one user."""
    out = []
    if before.locked is not after.locked:
        out.append(StateChange(after.user_id, "locked", before.locked, after.locked))
    if before.is_org_admin is not after.is_org_admin:
        out.append(StateChange(after.user_id, "org_admin", before.is_org_admin, after.is_org_admin))
    return out


def reconcile(stored: Mapping[str, Mapping[str, Role]], resolutions: Mapping[str, Resolution]) -> tuple[Change, ...]:
    """What to change in the app's tables (user → team → role) so that they match the rules.

    Drift repair: compare the memberships an app stored with what the rules
    say now.

    Args:
        stored: The app's rows: user id to team id to role.
        resolutions: The users' resolutions (from :func:`resolve_all`, or a
            ``Directory``), by user id.

    Returns:
        A :class:`Change` for every (user, team) where they differ, sorted by
        (user id, team): ``before`` is the stored role, ``after`` the rules'.
        Users missing from ``resolutions`` lose every stored row.

    Raises:
        InvalidArgument: an argument is not of that shape, or a resolution
            is keyed by another user's id.

    >>> from scim_roles import Org, Role, Team, User, resolve_all
    >>> org = Org(teams=[Team("eng"), Team("mkt")], default_teams=["eng"], default_role=Role.MEMBER)
    >>> rules = resolve_all(org, [User("ann", saml=True)])
    >>> [c.describe() for c in reconcile({"ann": {"mkt": Role.MEMBER}, "gone": {"eng": Role.MEMBER}}, rules)]
    ['ann: added to eng as Member', 'ann: removed from mkt (was Member)', 'gone: removed from eng (was Member)']
    """
    arguments: tuple[tuple[str, object], ...] = (("stored", stored), ("resolutions", resolutions))
    for name, value in arguments:
        if not isinstance(value, Mapping):
            raise InvalidArgument(Problem("reconcile", name, f"must be a mapping by user id, {got(value)}"))
    problems = [
        Problem("reconcile", "stored", f"user {uid!r} must map team ids to Roles, {got(rows)}", str(uid))
        for uid, rows in cast(Mapping[str, object], stored).items()
        if not isinstance(rows, Mapping) or not all(isinstance(r, Role) for r in rows.values())
    ]
    problems += [
        Problem("reconcile", "resolutions", f"{uid!r} must map to that user's Resolution, {got(res)}", str(uid))
        for uid, res in cast(Mapping[str, object], resolutions).items()
        if not isinstance(res, Resolution) or res.user_id != uid
    ]
    if problems:
        raise InvalidArgument(*problems)
    changes = []
    for uid in sorted(stored.keys() | resolutions.keys()):
        have = stored.get(uid, {})
        want = resolutions[uid].roles if uid in resolutions else {}
        changes += [
            Change(uid, team, have.get(team), want.get(team))
            for team in sorted(have.keys() | want.keys())
            if have.get(team) is not want.get(team)
        ]
    return tuple(changes)


class FindingKind(enum.Enum):
    """The guardrails a :func:`preview` checks."""

    NO_ORG_ADMIN = "no_org_admin"
    """The change leaves no org admin among the given users (there was one)."""
    LOSES_ALL_TEAMS = "loses_all_teams"
    """A user who had teams ends with none."""
    LOSES_ORG_ADMIN = "loses_org_admin"
    """A user who was an org admin no longer is."""
    MASS_CHANGE = "mass_change"
    """More than ``max_share`` of the users lose a team or a role."""
    GAINS_ORG_ADMIN = "gains_org_admin"
    """A user who was no org admin becomes one (a mapping raised to Org Admin, a toggle waking a manual grant)."""


@attrs.frozen
class Finding:
    """A guardrail finding of a preview: a risk, reported, never raised.

    Attributes:
        kind: Which guardrail.
        detail: What it found, for an admin to read.
        user_id: The user it concerns, if one.
        team: The team it concerns, if one.
    """

    kind: FindingKind
    detail: str
    user_id: str | None = None
    team: str | None = None


@attrs.frozen
class Preview:
    """The dry run of an org settings change: what changes, and what is risky.

    Attributes:
        changes: Every membership change, sorted by (user id, team).
        findings: The guardrail findings.
        affected: How many users have at least one membership change.
        users: How many users were given.
        resolved: How many users were resolved under both orgs (users the
            change cannot affect are not).
        states: Every change in who is locked or an org admin, sorted by
            (user id, state): with ``changes``, all there is to apply.
    """

    changes: tuple[Change, ...]
    findings: tuple[Finding, ...]
    affected: int
    users: int
    resolved: int
    states: tuple[StateChange, ...] = ()

    @property
    def added(self) -> int:
        """Changes that add a user to a team."""
        return sum(1 for c in self.changes if c.before is None)

    @property
    def removed(self) -> int:
        """Changes that remove a user from a team."""
        return sum(1 for c in self.changes if c.after is None)

    @property
    def role_changes(self) -> int:
        """Changes of a user's role on a team they keep."""
        return sum(1 for c in self.changes if c.before is not None and c.after is not None)

    @property
    def safe(self) -> bool:
        """No guardrail fired."""
        return not self.findings

    def summary(self) -> str:
        """A readable summary: counts, findings, then each change."""
        head = (
            f"Teams or roles change for {self.affected} of {counted(self.users, 'user')}: {self.added} added to a "
            f"team, {self.removed} removed from one, {counted(self.role_changes, 'role change')}."
        )
        others = len({s.user_id for s in self.states} - {c.user_id for c in self.changes})
        if others:
            head += f" Only being locked or an org admin changes for {others} more."
        lines = [head]
        lines += [f"WARNING {f.kind.value}: {f.detail}" for f in self.findings]
        lines += [f"  {c.describe()}" for c in self.changes]
        lines += [f"  {s.describe()}" for s in self.states]
        return "\n".join(lines)


def preview(before: Org, after: Org, users: Iterable[User], *, max_share: float = 0.1) -> Preview:
    """Dry-run an org settings change: each user's changes, and guardrail findings.

    Only the users the change can affect are resolved: users in a group whose
    mapping changed, that was added or removed, and users with manual grants
    on a removed team; everyone when the defaults or the toggle changed.

    A group or team only one of the two orgs has counts under that org only:
    removing a group from the org removes it from its members; a user may
    already list a group that the change adds.

    Args:
        before: The org as it is.
        after: The org as it would be.
        users: The org's users; ids must be unique.
        max_share: The share of users (0 to 1) that may lose a team or a role
            before the change counts as a mass change.

    Returns:
        The :class:`Preview`. Risky changes are reported as findings, never
        raised.

    Raises:
        InvalidOrg: ``before`` or ``after`` is not an :class:`Org`.
        InvalidUser: a user id repeats, or a user names a group or a team
            neither org has, or is otherwise invalid.
        InvalidArgument: ``max_share`` is not a number from 0 to 1, or
            ``users`` is not a collection.
    """
    old, new = index_of(before, "preview: before"), index_of(after, "preview: after")
    check_share(max_share)
    users = _checked_users(iterable("preview", "users", users), lambda user: user_problems(old, user, new))
    edit = Edit.of(before, after)
    affected = [u for u in users if edit.everyone or edit.may_change(u)]
    return preview_of(before, after, affected, users, total=len(users), max_share=max_share)


def check_share(max_share: object) -> None:
    """``max_share`` is a number from 0 to 1, or InvalidArgument."""
    if isinstance(max_share, bool) or not isinstance(max_share, (int, float)) or not 0 <= max_share <= 1:
        raise InvalidArgument(Problem("preview", "max_share", f"must be a number from 0 to 1, got {max_share!r}"))


@attrs.frozen
class Edit:
    """What an org settings change touches: which users it can affect."""

    defaults: bool
    toggle: bool
    groups: frozenset[str]
    teams: frozenset[str]

    @property
    def everyone(self) -> bool:
        """The defaults or the toggle changed: any user may be affected."""
        return self.defaults or self.toggle

    @classmethod
    def of(cls, before: Org, after: Org) -> Edit:
        """The edit from one org to another."""
        old, new = index_of(before), index_of(after)
        defaults = before.default_teams != after.default_teams or before.default_role is not after.default_role
        if before.groups == after.groups:  # C speed when the groups are the same objects (a toggle, a defaults edit)
            groups: frozenset[str] = frozenset()
        else:
            groups = frozenset(
                gid
                for gid in old.groups.keys() | new.groups.keys()
                if gid not in old.groups or gid not in new.groups or old.groups[gid].group != new.groups[gid].group
            )
        toggle = before.manual_edits is not after.manual_edits
        return cls(defaults, toggle, groups, frozenset(old.teams.keys() - new.teams.keys()))

    def may_change(self, user: User) -> bool:
        """The user is in a touched group, or has a manual grant on a removed team."""
        return not self.groups.isdisjoint(user.groups) or bool(
            self.teams and any(g.team in self.teams for g in user.manual)
        )


def preview_of(  # noqa: PLR0913 -- the parts a preview is built from, keyword-only past the users
    before: Org, after: Org, affected: Iterable[User], everyone: Iterable[User], *, total: int, max_share: float
) -> Preview:
    """The preview of a change for the ``affected`` users, out of ``total``.

    ``everyone`` is read only when an org admin is lost, to look for another.
    """
    old, new = index_of(before), index_of(after)
    changes: list[Change] = []
    state_changes: list[StateChange] = []
    per_user: list[tuple[Resolution, Resolution, tuple[Change, ...]]] = []
    for user in affected:
        res_before, res_after = _resolve_within(old, user), _resolve_within(new, user)
        user_changes = diff(res_before, res_after)
        per_user.append((res_before, res_after, user_changes))
        changes += user_changes
        state_changes += states(res_before, res_after)
    changes.sort(key=lambda c: (c.user_id, c.team))
    state_changes.sort(key=lambda s: (s.user_id, s.state))
    return Preview(
        changes=tuple(changes),
        findings=_findings(per_user, everyone, total, new, max_share),
        affected=len({c.user_id for c in changes}),
        users=total,
        resolved=len(per_user),
        states=tuple(state_changes),
    )


def _findings(
    per_user: list[tuple[Resolution, Resolution, tuple[Change, ...]]],
    users: Iterable[User],
    total: int,
    new: OrgIndex,
    max_share: float,
) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    losers = 0
    admins_lost = False
    for res_before, res_after, user_changes in sorted(per_user, key=lambda entry: entry[0].user_id):
        uid = res_before.user_id
        if res_before.memberships and not res_after.memberships:
            findings.append(Finding(FindingKind.LOSES_ALL_TEAMS, f"user {uid!r} would be left in no team", user_id=uid))
        if res_before.is_org_admin and not res_after.is_org_admin:
            admins_lost = True
            findings.append(
                Finding(FindingKind.LOSES_ORG_ADMIN, f"user {uid!r} would no longer be an org admin", user_id=uid)
            )
        if res_after.is_org_admin and not res_before.is_org_admin:
            findings.append(
                Finding(FindingKind.GAINS_ORG_ADMIN, f"user {uid!r} would become an org admin", user_id=uid)
            )
        if any(c.is_loss for c in user_changes):
            losers += 1
    if admins_lost and not any(_resolve_within(new, u).is_org_admin for u in users):
        findings.append(Finding(FindingKind.NO_ORG_ADMIN, "no user would be an org admin"))
    if total and losers / total > max_share:
        findings.append(
            Finding(
                FindingKind.MASS_CHANGE,
                (
                    f"{losers} of {counted(total, 'user')} would lose a team or a role "
                    f"({losers / total:.0%}, more than {max_share:.0%})"
                ),
            )
        )
    return tuple(findings)


def _resolve_within(index: OrgIndex, user: User) -> Resolution:
    """Resolve, counting only the groups and teams this org has."""
    if user.groups <= index.group_ids and index.team_ids.issuperset(map(team_of, user.manual)):  # the common case
        return resolve_indexed(index, user)
    groups = user.groups & index.group_ids
    manual = frozenset(g for g in user.manual if g.team in index.team_ids)
    if not (user.saml or user.scim or manual):
        return Resolution(user.id, ())
    return resolve_indexed(index, attrs.evolve(user, groups=groups, manual=manual))


def iterable(where: str, name: str, value: object) -> Iterable[Any]:
    """``value`` if it is a collection to iterate over (not a string or a mapping), else InvalidArgument."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(Problem(where, name, f"must be a collection, {got(value)}"))
    return value


def _repeated(uid: str) -> Problem:
    return Problem(f"user {uid!r}", "id", "appears more than once among the users", uid)


def _checked_users(users: Iterable[User], problems_of: Callable[[User], list[Problem]]) -> list[User]:
    """The users, once every one is checked; every problem of every user at once."""
    listed: list[User] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for user in users:
        if not isinstance(user, User):
            problems.append(not_a_user(user, "preview"))
            continue
        if user.id in seen:
            problems.append(_repeated(user.id))
        seen.add(user.id)
        problems += problems_of(user)
        listed.append(user)
    if problems:
        raise InvalidUser(*problems)
    return listed
