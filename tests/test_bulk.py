"""resolve_all, diff and preview: bulk resolution and the dry run with guardrails."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import scim_roles._preview
from scim_roles import (
    Change,
    Finding,
    FindingKind,
    Grant,
    IdpGroup,
    InvalidArgument,
    InvalidOrg,
    InvalidUser,
    Org,
    Problem,
    Resolution,
    Resolutions,
    Role,
    Team,
    User,
    diff,
    preview,
    resolve_all,
    resolve_memberships,
)
from scim_roles._resolve import resolve_indexed
from scim_roles.strategies import orgs, users, worlds

from helpers import ENG, IT, MKT, OPS, article_org

M, TA, OA = Role.MEMBER, Role.TEAM_ADMIN, Role.ORG_ADMIN


@given(worlds(max_users=8))
def test_resolve_all_equals_resolving_one_by_one(world: tuple[Org, tuple[User, ...]]) -> None:
    """resolve_all gives each user's resolve_memberships, keyed by id, in the order given."""
    org, all_users = world
    result = resolve_all(org, iter(all_users))
    assert list(result) == [u.id for u in all_users]
    assert result == {u.id: resolve_memberships(org, u) for u in all_users}


def test_resolve_all_accepts_subclasses_of_user() -> None:
    """A host's own subclass of User is a User."""

    @attrs.frozen
    class HostUser(User):
        pass

    org = article_org()
    assert resolve_all(org, [HostUser("h", saml=True, email="h@example.com")])["h"] == resolve_memberships(
        org, User("h", saml=True, email="h@example.com")
    )


def test_resolve_all_refuses_duplicate_ids_and_reports_every_problem() -> None:
    """Repeated ids, non-users and invalid users are all reported in one InvalidUser."""
    org = article_org()
    with pytest.raises(InvalidUser) as info:
        resolve_all(
            org,
            [
                User("a", saml=True, email="a@example.com"),
                User("a", scim=True, email="a@example.com"),
                User("b", scim=True, groups=["nope"], email="b@example.com"),
                "c",  # type: ignore[list-item]
            ],
        )
    assert [str(p) for p in info.value.problems] == [
        "user 'a': id: appears more than once among the users",
        "user 'b': groups: IdP group 'nope' is not synced to the org",
        "resolve_all: user: must be a User, got str 'c'",
    ]
    with pytest.raises(InvalidOrg):
        resolve_all("org", [])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as refused:
        Resolutions([1])  # type: ignore[list-item]
    assert refused.value.problems == (
        Problem("Resolutions", "items", "must be (user id, Resolution) pairs, got int 1"),
    )


def test_resolutions_is_a_frozen_hashable_picklable_mapping() -> None:
    """The result of resolve_all is read-only, hashable, picklable and compares by value."""
    org = article_org()
    result = resolve_all(
        org,
        [User("a", saml=True, email="a@example.com"), User("b", scim=True, groups=["leads"], email="b@example.com")],
    )
    again = pickle.loads(pickle.dumps(result))  # noqa: S301 -- our own data
    assert again == result
    assert hash(again) == hash(result) == hash(frozenset(result.items()))
    assert len(result) == 2
    assert result != Resolutions()
    assert result != {"a": result["a"]}
    assert result != 3
    assert repr(Resolutions()) == "Resolutions({})"
    with pytest.raises(TypeError):
        result["c"] = result["a"]  # type: ignore[index]


@given(worlds(max_users=4))
def test_diff_of_equal_resolutions_is_empty(world: tuple[Org, tuple[User, ...]]) -> None:
    """diff(a, a) == ()."""
    org, all_users = world
    for user in all_users:
        res = resolve_memberships(org, user)
        assert diff(res, res) == ()


@given(orgs(), orgs(), st.data())
def test_applying_a_diff_gives_the_new_roles(org_a: Org, org_b: Org, data: st.DataObject) -> None:
    """Applying diff(a, b) to a.roles gives b.roles; changes are sorted by team and really change something."""
    a = resolve_memberships(org_a, data.draw(users(org_a, user_id="u")))
    b = resolve_memberships(org_b, data.draw(users(org_b, user_id="u")))
    roles = dict(a.roles)
    changes = diff(a, b)
    assert [c.team for c in changes] == sorted(c.team for c in changes)
    for change in changes:
        assert change.user_id == "u"
        assert change.before is not change.after
        assert roles.get(change.team) is change.before
        if change.after is None:
            del roles[change.team]
        else:
            roles[change.team] = change.after
    assert roles == dict(b.roles)


def test_diff_refuses_two_different_users() -> None:
    """Diffing the resolutions of two users is a mistake, refused with InvalidUser."""
    org = article_org()
    with pytest.raises(InvalidUser, match="cannot diff against the resolution of another user"):
        diff(
            resolve_memberships(org, User("a", saml=True, email="a@example.com")),
            resolve_memberships(org, User("b", saml=True, email="b@example.com")),
        )


def test_change_kinds_and_descriptions() -> None:
    """A change adds, removes or changes a role; losses are removals and downgrades."""
    added, removed = Change("u", ENG, None, M), Change("u", ENG, TA, None)
    up, down = Change("u", ENG, M, TA), Change("u", ENG, OA, M)
    assert [c.is_loss for c in (added, removed, up, down)] == [False, True, False, True]
    assert added.describe() == "u: added to eng as Member"
    assert removed.describe() == "u: removed from eng (was Team Admin)"
    assert down.describe() == "u: eng Org Admin -> Member"


def edited(org: Org, data: st.DataObject) -> Org:
    """A settings change an admin could make: mappings, groups added or removed, defaults, toggle."""
    team_ids = [t.id for t in org.teams]
    groups = []
    for group in org.groups:
        action = data.draw(st.sampled_from(["keep", "keep", "remap", "role", "remove"]))
        if action == "remap":
            groups.append(attrs.evolve(group, teams=data.draw(st.lists(st.sampled_from(team_ids), unique=True))))
        elif action == "role":
            groups.append(attrs.evolve(group, role=data.draw(st.none() | st.sampled_from(Role))))
        elif action == "keep":
            groups.append(group)
    if data.draw(st.booleans()):
        groups.append(IdpGroup("added-" + "".join(g.id for g in org.groups), teams=team_ids[:1], role=OA))
    changes: dict[str, Any] = {"groups": groups}
    if data.draw(st.integers(0, 3)) == 0:
        changes["manual_edits"] = not org.manual_edits
    if data.draw(st.integers(0, 3)) == 0:
        changes["default_teams"] = data.draw(st.lists(st.sampled_from(team_ids), min_size=1, unique=True))
    if data.draw(st.integers(0, 3)) == 0:
        changes["default_role"] = data.draw(st.sampled_from([M, TA]))
    return attrs.evolve(org, **changes)


def within(org: Org, user: User) -> Resolution:
    """The reference: resolve, counting only the groups the org still syncs."""
    kept = user.groups.intersection(g.id for g in org.groups)
    return resolve_memberships(org, attrs.evolve(user, groups=kept))


@given(worlds(max_users=8), st.data())
def test_preview_equals_full_re_resolution(world: tuple[Org, tuple[User, ...]], data: st.DataObject) -> None:
    """The incremental preview's changes equal the diffs of resolving everyone under both orgs."""
    before, all_users = world
    after = edited(before, data)
    result = preview(before, after, all_users)
    expected = tuple(
        c for u in sorted(all_users, key=lambda u: u.id) for c in diff(within(before, u), within(after, u))
    )
    assert result.changes == expected
    assert result.affected == len({c.user_id for c in expected})
    assert result.users == len(all_users)
    assert result.resolved <= len(all_users)


@given(worlds(max_users=8))
def test_preview_of_no_change_changes_nothing(world: tuple[Org, tuple[User, ...]]) -> None:
    """preview(org, org, users) has no changes, no findings, and resolves nobody."""
    org, all_users = world
    result = preview(org, org, all_users)
    assert result.changes == ()
    assert result.findings == ()
    assert result.resolved == 0
    assert result.safe


def test_preview_resolves_only_the_users_a_group_edit_can_affect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing one group's mapping re-resolves that group's members only, counted by a spy."""
    org = article_org()
    crowd = [User(f"s{i}", saml=True, email="user@example.com") for i in range(50)] + [
        User(f"g{i}", scim=True, groups=["leads"], email="user@example.com") for i in range(50)
    ]
    crowd.append(User("m", scim=True, groups=["marketing"], email="m@example.com"))
    after = attrs.evolve(org, groups=[attrs.evolve(g, role=TA) if g.id == "marketing" else g for g in org.groups])
    seen: list[str] = []
    real = resolve_indexed

    def spy(index: object, user: User) -> Resolution:
        seen.append(user.id)
        return real(index, user)  # type: ignore[arg-type]

    monkeypatch.setattr(scim_roles._preview, "resolve_indexed", spy)
    result = preview(org, attrs.evolve(after, groups=[*after.groups, IdpGroup("new", [OPS])]), crowd)
    assert seen == ["m", "m"]
    assert result.resolved == 1
    assert result.changes == (Change("m", MKT, M, TA),)
    seen.clear()
    preview(org, attrs.evolve(org, manual_edits=True), crowd)
    assert len(seen) == 2 * len(crowd)


def test_preview_group_removed_falls_back_to_defaults() -> None:
    """Removing a group from the org removes it from its members, who fall back as R3 says."""
    org = article_org()
    after = attrs.evolve(org, groups=[g for g in org.groups if g.id != "marketing"])
    result = preview(org, after, [User("u", scim=True, groups=["marketing"], email="u@example.com")], max_share=1)
    assert result.changes == (Change("u", ENG, None, M), Change("u", MKT, M, None))
    assert result.summary().splitlines() == [
        "Teams or roles change for 1 of 1 user: 1 added to a team, 1 removed from one, 0 role changes.",
        "  u: added to eng as Member",
        "  u: removed from mkt (was Member)",
    ]


def test_preview_summary_counts_users_whose_lock_alone_changes() -> None:
    """The toggle unlocks SCIM users without changing their teams: the headline counts them apart."""
    org = article_org()
    users = [
        User("a", scim=True, groups=["marketing"], email="a@example.com"),
        User("b", scim=True, email="b@example.com"),
        User("c", saml=True, email="c@example.com"),
    ]
    result = preview(org, attrs.evolve(org, manual_edits=True), users)
    head = "Teams or roles change for 0 of 3 users: 0 added to a team, 0 removed from one, 0 role changes."
    assert (result.affected, result.summary().splitlines()) == (
        0,
        [head + " Only being locked or an org admin changes for 2 more.", "  a: unlocked", "  b: unlocked"],
    )


def test_preview_team_removed_drops_manual_grants_on_it() -> None:
    """Deleting a team in the app drops manual grants on it; a user left with no source has nothing."""
    org = article_org()
    after = attrs.evolve(
        org, teams=[t for t in org.teams if t.id != OPS], groups=[g for g in org.groups if OPS not in g.teams]
    )
    crowd = [
        User("only-ops", manual=[Grant(OPS, TA)]),
        User("both", manual=[Grant(OPS, M), Grant(MKT, M)]),
        User("mkt-only", manual=[Grant(MKT, M)]),
    ]
    result = preview(org, after, crowd, max_share=1)
    assert result.changes == (Change("both", OPS, M, None), Change("only-ops", OPS, TA, None))
    assert result.findings == (
        Finding(FindingKind.LOSES_ALL_TEAMS, "user 'only-ops' would be left in no team", user_id="only-ops"),
    )
    assert result.resolved == 2  # the user with no grant on the deleted team is not resolved


def test_preview_accepts_users_already_in_an_added_group() -> None:
    """A user may list a group the change adds: it counts under the new org only."""
    org = article_org()
    after = attrs.evolve(org, groups=[*org.groups, IdpGroup("new", [OPS], TA)])
    result = preview(org, after, [User("u", scim=True, groups=["new"], email="u@example.com")], max_share=1)
    assert result.changes == (Change("u", ENG, M, None), Change("u", OPS, None, TA))


def test_guardrail_no_org_admin() -> None:
    """A change that leaves no org admin among the users is reported, with each admin lost."""
    org = article_org()
    after = attrs.evolve(org, groups=[attrs.evolve(g, role=TA) if g.id == "it-admins" else g for g in org.groups])
    crowd = [
        User("root", scim=True, groups=["it-admins"], email="root@example.com"),
        User("ann", saml=True, email="ann@example.com"),
    ]
    result = preview(org, after, crowd, max_share=1)
    assert [(f.kind, f.user_id) for f in result.findings] == [
        (FindingKind.LOSES_ORG_ADMIN, "root"),
        (FindingKind.NO_ORG_ADMIN, None),
    ]
    assert "WARNING no_org_admin: no user would be an org admin" in result.summary()
    assert not result.safe


def test_guardrail_loses_org_admin_with_another_admin_left() -> None:
    """Losing one org admin while another remains is a LOSES_ORG_ADMIN finding only."""
    org = article_org()
    after = attrs.evolve(org, groups=[attrs.evolve(g, role=TA) if g.id == "it-admins" else g for g in org.groups])
    crowd = [
        User("root", scim=True, groups=["it-admins"], email="root@example.com"),
        User("boss", manual=[Grant(OPS, OA)]),
    ]
    result = preview(org, after, crowd, max_share=1)
    assert [(f.kind, f.user_id) for f in result.findings] == [(FindingKind.LOSES_ORG_ADMIN, "root")]


def test_guardrail_loses_all_teams() -> None:
    """A user who had teams and ends with none is reported."""
    org = attrs.evolve(article_org(), manual_edits=True)
    after = attrs.evolve(org, manual_edits=False)
    crowd = [
        User("x", scim=True, deprovisioned=True, email="x@example.com"),
        User("y", saml=True, email="y@example.com"),
    ]
    assert preview(org, after, crowd).findings == ()
    org2 = article_org()
    after2 = attrs.evolve(org2, groups=[attrs.evolve(g, teams=[IT]) if g.id == "marketing" else g for g in org2.groups])
    result = preview(org2, after2, [User("m", scim=True, groups=["marketing"], email="m@example.com")], max_share=1)
    assert result.findings == ()  # moved, not emptied
    empty_after = Org(teams=[Team(ENG), Team(MKT)], default_teams=[ENG], default_role=M, domains=["example.com"])
    result = preview(
        Org(
            teams=[Team(ENG), Team(MKT)],
            default_teams=[ENG],
            default_role=M,
            groups=[IdpGroup("g", [MKT])],
            domains=["example.com"],
        ),
        empty_after,
        [User("u", manual=[Grant(MKT, M)]), User("v", scim=True, groups=["g"], email="v@example.com")],
        max_share=1,
    )
    assert [f.kind for f in result.findings] == []
    assert result.changes == (Change("v", ENG, None, M), Change("v", MKT, M, None))


def test_guardrail_mass_change() -> None:
    """More than max_share of the users losing a team or a role is one MASS_CHANGE finding."""
    org = article_org()
    after = attrs.evolve(org, default_role=TA, default_teams=[MKT])
    crowd = [User(f"u{i}", saml=True, email="user@example.com") for i in range(4)] + [
        User(f"m{i}", manual=[Grant(OPS, M)]) for i in range(6)
    ]
    result = preview(org, after, crowd, max_share=0.3)
    assert result.affected == 4
    assert [f.kind for f in result.findings] == [FindingKind.MASS_CHANGE]
    assert result.findings[0].detail == "4 of 10 users would lose a team or a role (40%, more than 30%)"
    assert preview(org, after, crowd, max_share=0.4).findings == ()
    assert preview(org, after, [], max_share=0).findings == ()


def test_preview_validates_its_inputs() -> None:
    """Invalid orgs, users or max_share are refused with typed errors; risky changes never raise."""
    org = article_org()
    with pytest.raises(InvalidOrg):
        preview(org, "org", [])  # type: ignore[arg-type]
    with pytest.raises(InvalidUser, match="IdP group 'ghost' is not synced"):
        preview(org, org, [User("u", scim=True, groups=["ghost"], email="u@example.com")])
    with pytest.raises(InvalidUser, match="grant on unknown team 'ghost'"):
        preview(org, org, [User("u", manual=[Grant("ghost", M)])])
    with pytest.raises(InvalidUser, match="appears more than once"):
        preview(org, org, [User("u", saml=True, email="u@example.com"), User("u", saml=True, email="u@example.com")])
    with pytest.raises(InvalidUser, match="must be a User"):
        preview(org, org, [None])  # type: ignore[list-item]
    for bad in (-0.1, 1.5, True, "0.1"):
        with pytest.raises(InvalidArgument, match="preview: max_share: must be a number from 0 to 1"):
            preview(org, org, [], max_share=bad)  # type: ignore[arg-type]
