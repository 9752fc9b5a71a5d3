"""Hypothesis strategies for ``scim_roles`` types, for your own property tests.

Install the extra: ``python -m pip install '.[hypothesis]'`` in a clone. Every strategy
builds valid values only; each keeps its size bounds keyword-only.

>>> from hypothesis import given
>>> from scim_roles import resolve_memberships
>>> from scim_roles.strategies import worlds
>>> @given(worlds(max_users=5))
... def test_no_deprovisioned_user_has_access(world):
...     org, users = world
...     for user in users:
...         if user.deprovisioned:
...             assert resolve_memberships(org, user).memberships == ()
>>> test_no_deprovisioned_user_has_access()
"""

from __future__ import annotations

from hypothesis import strategies as st

from ._model import Grant, IdpGroup, Org, Team, User
from ._roles import Role

__all__ = ["domains", "emails", "grants", "ids", "orgs", "roles", "users", "worlds"]

_DEFAULT_ROLES = (Role.MEMBER, Role.TEAM_ADMIN)


def ids() -> st.SearchStrategy[str]:
    """Ids as the model accepts them: non-empty strings, short and often alike."""
    return st.one_of(
        st.sampled_from(["eng", "mkt", "ops", "it", "sales", "g1", "g2", "okta-all"]),
        st.text(min_size=1, max_size=6),
    )


_DOMAINS = ("example.com", "Example.COM", "eu.example.com", "example.org", "a.eu.example.org", "bücher.example")
_CLAIMS = ("example.com", "*.example.com", "*.Example.org", "example.org", "xn--bcher-kva.example", "contractor.io")


def domains() -> st.SearchStrategy[str]:
    """Domains an org may claim (V8): exact names and ``*.`` ones, ASCII and not, in any case."""
    label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?\Z").filter(lambda x: x[2:4] != "--")
    made = st.builds(lambda a, b: f"{a}.{b}", label, label)
    return st.one_of(st.sampled_from(_CLAIMS), made, made.map(lambda d: "*." + d))


def emails() -> st.SearchStrategy[str]:
    """Valid emails (V8), in the domains the orgs of :func:`orgs` claim and in others, subdomains included."""
    local = st.sampled_from(["ann", "bob", "x.y", "Zoë", "o'neil"])
    return st.builds(
        lambda a, b: f"{a}@{b}",
        local,
        st.one_of(st.sampled_from(_DOMAINS), domains().filter(lambda d: not d.startswith("*."))),
    )


def roles() -> st.SearchStrategy[Role]:
    """Any role, ``ORG_ADMIN`` included."""
    return st.sampled_from(Role)


def grants(team_ids: list[str] | tuple[str, ...]) -> st.SearchStrategy[Grant]:
    """Grants on the given teams, any role."""
    return st.builds(Grant, st.sampled_from(team_ids), roles())


@st.composite
def orgs(
    draw: st.DrawFn,
    *,
    min_teams: int = 1,
    max_teams: int = 8,
    max_groups: int = 8,
    manual_edits: bool | None = None,
) -> Org:
    """Valid orgs: unique ids, known default teams, groups mapped to known teams.

    Args:
        draw: Supplied by hypothesis.
        min_teams: The fewest teams (at least 1: the defaults need one).
        max_teams: The most teams.
        max_groups: The most synced IdP groups (blank, partly blank, mapped;
            org-admin mappings and conflicting groups included).
        manual_edits: Fix the toggle; ``None`` draws it.

    Most orgs claim ``example.com`` (the domain most users' emails are in,
    see :func:`users`); some claim other domains or none.
    """
    team_ids = draw(st.lists(ids(), min_size=max(min_teams, 1), max_size=max(max_teams, min_teams, 1), unique=True))
    teams = [Team(t, draw(st.sampled_from(["", t.upper(), f"Team {t}"]))) for t in team_ids]
    some_teams = st.lists(st.sampled_from(team_ids), unique=True)
    group_ids = draw(st.lists(ids(), max_size=max_groups, unique=True))
    groups = [IdpGroup(g, draw(some_teams), draw(st.none() | roles())) for g in group_ids]
    return Org(
        teams=teams,
        default_teams=draw(st.lists(st.sampled_from(team_ids), min_size=1, unique=True)),
        default_role=draw(st.sampled_from(_DEFAULT_ROLES)),
        groups=groups,
        manual_edits=draw(st.booleans()) if manual_edits is None else manual_edits,
        domains=draw(st.one_of(st.just(["example.com"]), st.lists(domains(), max_size=3, unique_by=_claimed))),
    )


def _claimed(domain: str) -> str:
    from ._domains import normalized_claim  # noqa: PLC0415 -- the one place strategies normalize

    return normalized_claim(domain)


@st.composite
def users(draw: st.DrawFn, org: Org, *, user_id: str | None = None, max_manual: int = 4) -> User:
    """Valid users of ``org``, with every mix of sources.

    SAML only, SCIM in no group or in several, manual only, any combination,
    deprovisioned; groups are the org's synced groups, manual grants name the
    org's teams, at most one per team. Most emails are in ``example.com``;
    others in domains the org may or may not claim; some users have none.

    Args:
        draw: Supplied by hypothesis.
        org: The org the users belong to.
        user_id: Fix the id; ``None`` draws it.
        max_manual: The most manual grants.
    """
    team_ids = [t.id for t in org.teams]
    group_ids = [g.id for g in org.groups]
    saml, scim = draw(st.sampled_from([(True, False), (False, True), (True, True), (False, False)]))
    groups = draw(st.lists(st.sampled_from(group_ids), unique=True)) if scim and group_ids else []
    manual_teams = draw(st.lists(st.sampled_from(team_ids), max_size=max_manual, unique=True))
    if not (saml or scim or manual_teams):
        manual_teams = [draw(st.sampled_from(team_ids))]
    return User(
        draw(ids()) if user_id is None else user_id,
        saml=saml,
        scim=scim,
        groups=groups,
        deprovisioned=scim and draw(st.integers(0, 4)) == 0,
        manual=[Grant(t, draw(roles())) for t in manual_teams],
        email=draw(st.one_of(st.just("ann@example.com"), emails(), st.none())),
    )


@st.composite
def worlds(
    draw: st.DrawFn, *, max_users: int = 20, max_teams: int = 8, max_groups: int = 8
) -> tuple[Org, tuple[User, ...]]:
    """An org and some of its users, with unique user ids.

    Args:
        draw: Supplied by hypothesis.
        max_users: The most users.
        max_teams: The most teams of the org.
        max_groups: The most synced IdP groups of the org.
    """
    org = draw(orgs(max_teams=max_teams, max_groups=max_groups))
    user_ids = draw(st.lists(ids(), max_size=max_users, unique=True))
    return org, tuple(draw(users(org, user_id=u)) for u in user_ids)
