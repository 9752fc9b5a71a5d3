"""``resolve_memberships``: a user's effective access in an org (R1-R13)."""

from __future__ import annotations

import operator
from collections.abc import Iterable

from ._errors import InvalidArgument, InvalidOrg, InvalidUser, Problem, got, refuse
from ._index import Input, OrgIndex, OverriddenEntry
from ._model import Grant, Org, User, team_of
from ._result import Membership, Overridden, Resolution
from ._roles import Cause

LOWER_ROLE, LOCKED = Cause.LOWER_ROLE, Cause.LOCKED
SCIM_OVERRIDES_MANUAL, DEPROVISIONED = Cause.SCIM_OVERRIDES_MANUAL, Cause.DEPROVISIONED
DOMAIN_NOT_CLAIMED = Cause.DOMAIN_NOT_CLAIMED


def resolve_memberships(org: Org, user: User) -> Resolution:
    """Compute a user's effective team/role set in an org, with reasons.

    The function is pure: it reads its arguments only, and equal arguments
    give equal results.

    Args:
        org: The org, with its default access, synced groups and toggle.
        user: The user, with every source the org knows them through.

    Returns:
        The memberships (sorted by team id), every input grant that was
        overridden and why, and whether the user is locked or deprovisioned.

    Raises:
        InvalidOrg: ``org`` is not an :class:`Org`.
        InvalidUser: ``user`` is not a :class:`User`, or names groups that are
            not synced to the org (V5) or teams the org does not have (V6).

    >>> from scim_roles import Org, Team, Role, User, IdpGroup
    >>> org = Org(
    ...     teams=[Team("eng"), Team("mkt")], default_teams=["eng"], default_role=Role.MEMBER,
    ...     groups=[IdpGroup("okta-mkt", teams=["mkt"], role=Role.TEAM_ADMIN)],
    ...     domains=["example.com"],
    ... )
    >>> dict(resolve_memberships(org, User("ann", saml=True, email="ann@example.com")).roles)
    {'eng': <Role.MEMBER: 'member'>}
    >>> ann = User("ann", saml=True, scim=True, groups=["okta-mkt"], email="ann@example.com")
    >>> dict(resolve_memberships(org, ann).roles)
    {'mkt': <Role.TEAM_ADMIN: 'team_admin'>}
    """
    if isinstance(org, User) and isinstance(user, Org):
        detail = "the arguments are swapped: a User was passed as org and an Org as user; the org comes first"
        raise InvalidArgument(Problem("resolve_memberships", "org", detail))
    index = index_of(org, "resolve_memberships")
    if not isinstance(user, User):
        raise InvalidUser(not_a_user(user, "resolve_memberships"))
    problems = user_problems(index, user)
    refuse(InvalidUser, problems)
    return resolve_indexed(index, user)


def not_a_user(value: object, where: str = "users") -> Problem:
    """The problem of a value given where a User belongs, in ``where`` (a function, or its argument)."""
    return Problem(where, "user", f"must be a User, {got(value)}")


def index_of(org: Org, where: str = "argument") -> OrgIndex:
    """The org's index; refuses anything but an :class:`Org`, naming ``where`` it was passed."""
    if not isinstance(org, Org):
        raise InvalidOrg(Problem(where, "org", f"must be an Org, {got(org)}"))
    return org._index  # noqa: SLF001 -- the index is this package's own


def fits(index: OrgIndex, user: User) -> bool:
    """V5, V6 at a glance: the user's groups are synced to the org and their manual grants name its teams."""
    return user.groups <= index.group_ids and (not user.manual or index.team_ids.issuperset(map(team_of, user.manual)))


def user_problems(index: OrgIndex, user: User, other: OrgIndex | None = None) -> list[Problem]:
    """V5, V6: the user's groups are synced and their manual grants name known teams.

    With ``other``, a group or team either org has is known.
    """
    if fits(index, user):
        return []
    team_ids = index.team_ids
    groups = user.groups - index.group_ids
    teams = {g.team for g in user.manual} - team_ids
    if other is not None:
        groups -= other.group_ids
        teams -= other.team_ids
    subject = f"user {user.id!r}"
    problems = [
        Problem(subject, "groups", f"IdP group {g!r} is not synced to the org", user.id) for g in sorted(groups)
    ]
    return problems + [Problem(subject, "manual", f"grant on unknown team {t!r}", user.id) for t in sorted(teams)]


def resolve_indexed(index: OrgIndex, user: User) -> Resolution:
    """Resolve a user already checked against the org."""
    if user.deprovisioned:
        return _deprovisioned(index, user)
    if (user.saml or user.scim) and not index.claims.email(user.email):
        return _unclaimed(index, user)
    if user.scim:
        return _scim(index, user)
    if not user.manual:  # R6: a SAML-only user keeps the defaults
        return _resolution(user.id, index.saml_memberships, (), locked=False, deprovisioned=False)
    manual = index.manual_input
    memberships = tuple([manual(g).alone for g in sorted(user.manual, key=_grant_team)])
    if user.saml:  # R6: manual grants replace the defaults entirely
        return _resolution(user.id, memberships, index.saml_replaced, locked=False, deprovisioned=False)
    return _resolution(user.id, memberships, (), locked=False, deprovisioned=False)  # R7


def _scim(index: OrgIndex, user: User) -> Resolution:
    """R3, R4, R5, R8, R9: the SCIM baseline, then the manual grants."""
    locked = not index.manual_edits
    if not user.groups:
        if not (user.saml or user.manual):
            return _resolution(user.id, index.scim_memberships, (), locked=locked, deprovisioned=False)
        winners: dict[str, Input] = {i.team: i for i in index.scim}
        overridden: list[OverriddenEntry] = []
        ties: dict[str, list[Input]] = {}
    else:
        winners, overridden, ties = _baseline(index, user.groups)
    manual = user.manual
    if not ties and (locked or not manual):
        memberships = tuple([winners[t].alone for t in sorted(winners)])
    else:
        memberships = _chosen(index, winners, ties, () if locked else manual)
    if manual:
        cause = LOCKED if locked else SCIM_OVERRIDES_MANUAL
        records = index.manual_input
        overridden += [records(g).over[cause] for g in manual if locked or g.team in winners]
    if not overridden:  # the common cases: nothing overridden, or the SAML defaults only (sorted once per org)
        done = index.saml_by_scim_sorted if user.saml else ()
    else:
        if user.saml:
            overridden += index.saml_by_scim
        done = _sorted(overridden)
    return _resolution(user.id, memberships, done, locked=locked, deprovisioned=False)


def _chosen(
    index: OrgIndex, winners: dict[str, Input], ties: dict[str, list[Input]], manual: Iterable[Grant]
) -> tuple[Membership, ...]:
    """The memberships: the baseline's winners, ties merged, and ``manual`` grants on the teams it leaves (R9)."""
    chosen = {team: inp.alone for team, inp in winners.items()}
    for team, tied in ties.items():
        chosen[team] = _tied(tied)
    for grant in manual:
        if grant.team not in winners:
            chosen[grant.team] = index.manual_input(grant).alone
    return tuple([chosen[t] for t in sorted(chosen)])


def _baseline(
    index: OrgIndex, group_ids: frozenset[str]
) -> tuple[dict[str, Input], list[OverriddenEntry], dict[str, list[Input]]]:
    """R3, R4: the highest input per team, the lower ones, and the teams where several tie."""
    groups = index.groups
    winners: dict[str, Input] = {}
    overridden: list[OverriddenEntry] = []
    ties: dict[str, list[Input]] = {}
    for gid in group_ids:
        for inp in groups[gid]:
            team = inp.team
            best = winners.get(team)
            if best is None:
                winners[team] = inp
            elif inp.rank < best.rank:
                overridden.append(inp.over[LOWER_ROLE])
            elif inp.rank > best.rank:
                overridden += [b.over[LOWER_ROLE] for b in ties.pop(team, (best,))]
                winners[team] = inp
            else:
                ties.setdefault(team, [best]).append(inp)
    return winners, overridden, ties


_new = object.__new__


def _resolution(
    user_id: str,
    memberships: tuple[Membership, ...],
    overridden: tuple[Overridden, ...],
    *,
    locked: bool,
    deprovisioned: bool,
) -> Resolution:
    """``Resolution(...)`` without attrs' frozen-setattr indirection, for the hot path.

    The row it keeps within its goal: ``resolve_all`` / baseline (≤ 3) in benchmarks/bench.py.
    """
    res: Resolution = _new(Resolution)
    _set = object.__setattr__
    _set(res, "user_id", user_id)
    _set(res, "memberships", memberships)
    _set(res, "overridden", overridden)
    _set(res, "locked", locked)
    _set(res, "deprovisioned", deprovisioned)
    _set(res, "unclaimed", None)
    return res


def _tied(inputs: list[Input]) -> Membership:
    inputs.sort(key=_by_group)
    return Membership(inputs[0].team, inputs[0].role, tuple([i.reason for i in inputs]))


def _by_group(inp: Input) -> str:
    return inp.reason.group or ""


def _deprovisioned(index: OrgIndex, user: User) -> Resolution:
    """R10: every input grant is inert."""
    overridden = [i.over[DEPROVISIONED] for i in index.saml] if user.saml else []
    if user.groups:
        overridden += [i.over[DEPROVISIONED] for g in user.groups for i in index.groups[g]]
    else:
        overridden += [i.over[DEPROVISIONED] for i in index.scim]
    overridden += [index.manual_input(g).over[DEPROVISIONED] for g in user.manual]
    return Resolution(user.id, (), _sorted(overridden), deprovisioned=True)


def _unclaimed(index: OrgIndex, user: User) -> Resolution:
    """R14: a user outside the claimed domains gets nothing from SAML or SCIM.

    The manual grants stand as for a manual-only user (R7), unlocked.
    """
    overridden = [i.over[DOMAIN_NOT_CLAIMED] for i in index.saml] if user.saml else []
    if user.scim and user.groups:
        overridden += [i.over[DOMAIN_NOT_CLAIMED] for g in user.groups for i in index.groups[g]]
    elif user.scim:
        overridden += [i.over[DOMAIN_NOT_CLAIMED] for i in index.scim]
    memberships = tuple([index.manual_input(g).alone for g in sorted(user.manual, key=_grant_team)])
    return Resolution(user.id, memberships, _sorted(overridden), unclaimed=user.email or "")


def _grant_team(grant: Grant) -> str:
    return grant.team


def _sorted(overridden: list[OverriddenEntry]) -> tuple[Overridden, ...]:
    """The entries sorted by their keys, which are unique per input grant."""
    if len(overridden) == 1:  # common (one manual grant locked or overridden): a tuple every such user shares
        return overridden[0].alone
    overridden.sort(key=_KEY)
    return tuple([e.record for e in overridden])


_KEY = operator.attrgetter("key")
