"""What every resolution needs from an org, computed once per org.

Per input grant the org alone determines (its SAML and SCIM defaults, each
group's contribution) the index keeps the shared :class:`Reason`, the
single-reason :class:`Membership` and the :class:`Overridden` records for the
causes that can beat it. Resolving a user then allocates almost nothing for
those inputs, and costs O(their groups x teams per group), whatever the size
of the org.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ._domains import Claims
from ._result import Membership, Overridden, Reason
from ._roles import Cause, Role, Source

if TYPE_CHECKING:
    from ._model import Grant, IdpGroup, Org, Team


SOURCE_ORDER = {Source.SAML: 0, Source.SCIM: 1, Source.IDP_GROUP: 2, Source.MANUAL: 3}

OverriddenKey = tuple[str, int, str, int]


class OverriddenEntry:
    """An overridden input as a resolution collects it.

    Its sort key, its record, and the record alone in a tuple (shared by
    every resolution where it is the only one).
    """

    __slots__ = ("alone", "key", "record")

    def __init__(self, key: OverriddenKey, record: Overridden) -> None:
        self.key = key
        self.record = record
        self.alone = (record,)


def overridden_key(team: str, reason: Reason) -> OverriddenKey:
    """How overridden entries are sorted: team, source, group, role."""
    return (team, SOURCE_ORDER[reason.source], reason.group or "", reason.role.rank)


class Input:
    """One input grant the org determines, with its precomputed records."""

    __slots__ = ("alone", "key", "over", "rank", "reason", "role", "team")

    def __init__(self, team: str, reason: Reason, causes: Iterable[Cause]) -> None:
        self.team = team
        self.role = reason.role
        self.rank = reason.role.rank
        self.reason = reason
        self.alone = Membership(team, reason.role, (reason,))
        self.key = overridden_key(team, reason)
        self.over: dict[Cause, OverriddenEntry] = {}
        for cause in causes:
            self.over[cause] = OverriddenEntry(self.key, Overridden(team, reason, cause))


class GroupEntries(dict[str, tuple[Input, ...]]):
    """Each synced group's contribution (R2), sorted by team, built when first asked for.

    A group's entry is built when a member of the group is first resolved,
    so building an org costs what checking it costs, whatever its number of
    groups; an entry never changes once made. Asking for a group the org
    does not sync is a ``KeyError``.
    """

    __slots__ = ("_default_teams", "_groups", "_role")

    def __init__(self, groups: Mapping[str, IdpGroup], default_teams: list[str], role: Role) -> None:
        super().__init__()
        self._groups, self._default_teams, self._role = groups, default_teams, role

    def __missing__(self, group_id: str) -> tuple[Input, ...]:
        group = self._groups[group_id]
        reason = Reason(Source.IDP_GROUP, self._role if group.role is None else group.role, group.id)
        entry = self[group_id] = _inputs(sorted(group.teams) or self._default_teams, reason, _GROUP_CAUSES)
        return entry


_SAML_CAUSES = (
    Cause.SCIM_OVERRIDES_SAML,
    Cause.MANUAL_OVERRIDES_DEFAULT,
    Cause.DEPROVISIONED,
    Cause.DOMAIN_NOT_CLAIMED,
)
_GROUP_CAUSES = (Cause.LOWER_ROLE, Cause.DEPROVISIONED, Cause.DOMAIN_NOT_CLAIMED)
_SCIM_CAUSES = (Cause.DEPROVISIONED, Cause.DOMAIN_NOT_CLAIMED)
_MANUAL_CAUSES = (Cause.LOCKED, Cause.SCIM_OVERRIDES_MANUAL, Cause.DEPROVISIONED)


class OrgIndex:
    """The index of one org. Built by ``Org`` itself; never changed after."""

    __slots__ = (
        "claims",
        "group_ids",
        "group_of",
        "groups",
        "manual",
        "manual_edits",
        "saml",
        "saml_by_scim",
        "saml_by_scim_sorted",
        "saml_memberships",
        "saml_replaced",
        "scim",
        "scim_memberships",
        "team_ids",
        "teams",
    )

    teams: Mapping[str, Team]
    team_ids: frozenset[str]
    group_of: Mapping[str, IdpGroup]
    groups: GroupEntries
    group_ids: frozenset[str]
    saml: tuple[Input, ...]
    scim: tuple[Input, ...]
    saml_memberships: tuple[Membership, ...]
    saml_replaced: tuple[Overridden, ...]
    saml_by_scim: tuple[OverriddenEntry, ...]
    saml_by_scim_sorted: tuple[Overridden, ...]
    scim_memberships: tuple[Membership, ...]
    manual_edits: bool
    manual: dict[Role, dict[str, Input]]
    claims: Claims

    def __init__(self, org: Org) -> None:
        self.teams = {t.id: t for t in org.teams}
        self.team_ids = frozenset(self.teams)
        self.manual_edits = org.manual_edits
        self.group_of = {g.id: g for g in org.groups}
        self.group_ids = frozenset(self.group_of)
        self.manual = {role: {} for role in Role}
        self.claims = Claims(org.domains)
        self._set_defaults(org.default_teams, org.default_role)

    def _set_defaults(self, teams: frozenset[str], role: Role) -> None:
        """What the default access decides: the SAML and SCIM defaults, and the blanks of group mappings."""
        default_teams = sorted(teams)
        self.saml = _inputs(default_teams, Reason(Source.SAML, role), _SAML_CAUSES)
        self.scim = _inputs(default_teams, Reason(Source.SCIM, role), _SCIM_CAUSES)
        self.saml_memberships = tuple(i.alone for i in self.saml)
        self.saml_replaced = tuple(i.over[Cause.MANUAL_OVERRIDES_DEFAULT].record for i in self.saml)
        self.saml_by_scim = tuple(i.over[Cause.SCIM_OVERRIDES_SAML] for i in self.saml)
        self.saml_by_scim_sorted = tuple(e.record for e in self.saml_by_scim)  # self.saml is sorted by team
        self.scim_memberships = tuple(i.alone for i in self.scim)
        self.groups = GroupEntries(self.group_of, default_teams, role)  # entries filled anew, as asked for

    def _copy(self) -> OrgIndex:
        new = object.__new__(OrgIndex)
        for name in OrgIndex.__slots__:
            setattr(new, name, getattr(self, name))
        return new

    def toggled(self, manual_edits: bool) -> OrgIndex:  # noqa: FBT001 -- the toggle's position
        """This index for the same org with the toggle turned: everything shared (nothing else depends on it)."""
        new = self._copy()
        new.manual_edits = manual_edits
        return new

    def with_defaults(self, teams: frozenset[str], role: Role) -> OrgIndex:
        """This index for the same org with another default access.

        The teams and groups are shared; the defaults' records are made anew
        (cost ∝ the default teams), and group entries are rebuilt as asked for.
        """
        new = self._copy()
        new._set_defaults(teams, role)  # noqa: SLF001 -- the same class
        return new

    def manual_input(self, grant: Grant) -> Input:
        """The records of a manual grant, shared by every user with the same grant.

        Filled as grants are met (at most one entry per team and role), so an
        org with many teams costs nothing up front. Only what a validated user
        holds is ever added; an entry never changes once made.
        """
        by_team = self.manual[grant.role]
        found = by_team.get(grant.team)
        if found is None:
            found = by_team[grant.team] = Input(grant.team, MANUAL_REASONS[grant.role], _MANUAL_CAUSES)
        return found


def _inputs(teams: list[str], reason: Reason, causes: tuple[Cause, ...]) -> tuple[Input, ...]:
    return tuple(Input(team, reason, causes) for team in teams)


MANUAL_REASONS = {role: Reason(Source.MANUAL, role) for role in Role}
"""The reason of a manual grant depends on its role alone: shared by all."""
