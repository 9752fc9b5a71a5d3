"""``resolve_memberships``: a user's effective access in an org (R1-R13)."""

from __future__ import annotations

from collections.abc import Iterable

from ._errors import InvalidOrg, InvalidUser, Problem
from ._index import MANUAL_REASONS, Input, OrgIndex
from ._model import Grant, Org, User
from ._result import Membership, Overridden, Resolution
from ._roles import Cause

_SOURCE_ORDER = {"saml": 0, "scim": 1, "idp_group": 2, "manual": 3}


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
    ... )
    >>> dict(resolve_memberships(org, User("ann", saml=True)).roles)
    {'eng': <Role.MEMBER: 'member'>}
    >>> dict(resolve_memberships(org, User("ann", saml=True, scim=True, groups=["okta-mkt"])).roles)
    {'mkt': <Role.TEAM_ADMIN: 'team_admin'>}
    """
    if not isinstance(org, Org):
        raise InvalidOrg(Problem("org", "org", f"must be an Org, got {org!r}"))
    if not isinstance(user, User):
        raise InvalidUser(Problem("user", "user", f"must be a User, got {user!r}"))
    index: OrgIndex = org._index  # noqa: SLF001 -- the index is this package's own
    _check_against_org(index, user)
    if user.deprovisioned:
        return _deprovisioned(index, user)
    if user.scim:
        return _scim(index, user)
    if not user.manual:  # R6: a SAML-only user keeps the defaults
        return Resolution(user.id, index.saml_memberships)
    memberships = tuple(_manual_membership(g) for g in sorted(user.manual, key=_grant_team))
    if user.saml:  # R6: manual grants replace the defaults entirely
        overridden = tuple(i.over[Cause.MANUAL_OVERRIDES_DEFAULT] for i in index.saml)
        return Resolution(user.id, memberships, overridden)
    return Resolution(user.id, memberships)  # R7


def _check_against_org(index: OrgIndex, user: User) -> None:
    subject = f"user {user.id!r}"
    problems = [
        Problem(subject, "groups", f"IdP group {g!r} is not synced to the org", user.id)
        for g in sorted(user.groups.difference(index.groups))
    ]
    problems += [
        Problem(subject, "manual", f"grant on unknown team {g.team!r}", user.id)
        for g in sorted(user.manual, key=_grant_team)
        if g.team not in index.teams
    ]
    if problems:
        raise InvalidUser(*problems)


def _scim(index: OrgIndex, user: User) -> Resolution:
    """R3, R4, R5, R8, R9: the SCIM baseline, then the manual grants."""
    inputs: Iterable[Input]
    if user.groups:
        groups = index.groups
        inputs = [i for g in sorted(user.groups) for i in groups[g].inputs]
    else:
        inputs = index.scim
    winners: dict[str, list[Input]] = {}
    overridden: list[Overridden] = []
    for inp in inputs:
        best = winners.get(inp.team)
        if best is None:
            winners[inp.team] = [inp]
        elif inp.rank == best[0].rank:
            best.append(inp)
        elif inp.rank > best[0].rank:
            overridden.extend(b.over[Cause.LOWER_ROLE] for b in best)
            winners[inp.team] = [inp]
        else:
            overridden.append(inp.over[Cause.LOWER_ROLE])
    memberships: dict[str, Membership] = {
        team: best[0].alone if len(best) == 1 else Membership(team, best[0].role, tuple(b.reason for b in best))
        for team, best in winners.items()
    }
    if user.saml:
        overridden.extend(i.over[Cause.SCIM_OVERRIDES_SAML] for i in index.saml)
    locked = not index.manual_edits
    for grant in user.manual:
        if locked:
            overridden.append(_manual_overridden(grant, Cause.LOCKED))
        elif grant.team in winners:
            overridden.append(_manual_overridden(grant, Cause.SCIM_OVERRIDES_MANUAL))
        else:
            memberships[grant.team] = _manual_membership(grant)
    return Resolution(
        user.id,
        tuple(memberships[t] for t in sorted(memberships)),
        _sorted(overridden),
        locked=locked,
    )


def _deprovisioned(index: OrgIndex, user: User) -> Resolution:
    """R10: every input grant is inert."""
    cause = Cause.DEPROVISIONED
    overridden = [i.over[cause] for i in index.saml] if user.saml else []
    if user.groups:
        overridden += [i.over[cause] for g in user.groups for i in index.groups[g].inputs]
    else:
        overridden += [i.over[cause] for i in index.scim]
    overridden += [_manual_overridden(g, cause) for g in user.manual]
    return Resolution(user.id, (), _sorted(overridden), deprovisioned=True)


def _manual_membership(grant: Grant) -> Membership:
    return Membership(grant.team, grant.role, (MANUAL_REASONS[grant.role],))


def _manual_overridden(grant: Grant, cause: Cause) -> Overridden:
    return Overridden(grant.team, MANUAL_REASONS[grant.role], cause)


def _grant_team(grant: Grant) -> str:
    return grant.team


def _overridden_key(o: Overridden) -> tuple[str, int, str, int]:
    r = o.reason
    return (o.team, _SOURCE_ORDER[r.source.value], r.group or "", r.role.rank)


def _sorted(overridden: list[Overridden]) -> tuple[Overridden, ...]:
    overridden.sort(key=_overridden_key)
    return tuple(overridden)
