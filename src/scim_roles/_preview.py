"""The dry run of a settings change: ``preview``, its guardrail findings, and the edit it reads."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from ._changes import Change, StateChange, diff, states
from ._errors import InvalidArgument, Problem
from ._index import OrgIndex
from ._many import checked_users, iterable
from ._model import Org, User
from ._resolve import fits, index_of, resolve_indexed, user_problems
from ._result import Resolution
from ._words import counted


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
    users = checked_users(iterable("preview", "users", users), lambda user: user_problems(old, user, new))
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
    domains: bool = False

    @property
    def everyone(self) -> bool:
        """The defaults, the toggle or the claimed domains changed: any user may be affected."""
        return self.defaults or self.toggle or self.domains

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
                for gid in old.group_ids | new.group_ids
                if old.group_of.get(gid) != new.group_of.get(gid)  # added, removed or mapped anew
            )
        toggle = before.manual_edits is not after.manual_edits
        domains = before.domains != after.domains
        return cls(defaults, toggle, groups, frozenset(old.teams.keys() - new.teams.keys()), domains)

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
    if fits(index, user):
        return resolve_indexed(index, user)
    groups = user.groups & index.group_ids
    manual = frozenset(g for g in user.manual if g.team in index.team_ids)
    if not (user.saml or user.scim or manual):
        return Resolution(user.id, ())
    return resolve_indexed(index, attrs.evolve(user, groups=groups, manual=manual))
