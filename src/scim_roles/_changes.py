"""What changes in users' access.

One user's :func:`diff`, a stored table's :func:`reconcile`, and who becomes
locked or an org admin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import attrs

from ._errors import InvalidArgument, InvalidUser, Problem, got, refuse, shown
from ._result import Resolution
from ._roles import Role


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
    >>> org = Org(teams=[Team("eng"), Team("mkt")], default_teams=["eng"], default_role=Role.MEMBER,
    ...           domains=["example.com"])
    >>> rules = resolve_all(org, [User("ann", saml=True, email="ann@example.com")])
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
    refuse(InvalidArgument, problems)
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
