"""One test per rule of RULES.md (R1-R13), with the article's cases."""

from __future__ import annotations

import pickle

from scim_roles import (
    Cause,
    Grant,
    IdpGroup,
    Membership,
    Org,
    Overridden,
    Reason,
    Role,
    Source,
    Team,
    User,
    invite,
    resolve_memberships,
)

from helpers import ENG, IT, MKT, OPS, article_org

M, TA, OA = Role.MEMBER, Role.TEAM_ADMIN, Role.ORG_ADMIN


def saml_reason(role: Role = M) -> Reason:
    return Reason(Source.SAML, role)


def group_reason(group: str, role: Role) -> Reason:
    return Reason(Source.IDP_GROUP, role, group)


def manual_reason(role: Role) -> Reason:
    return Reason(Source.MANUAL, role)


def test_r1_default_grants_are_each_default_team_at_the_default_role() -> None:
    """The org's default grants pair every default team with the default role."""
    org = Org(
        teams=[Team("a"), Team("b"), Team("c")], default_teams=["a", "b"], default_role=TA, domains=["example.com"]
    )
    assert org.default_grants == {Grant("a", TA), Grant("b", TA)}
    res = resolve_memberships(org, User("u", saml=True, email="u@example.com"))
    assert res.memberships == (
        Membership("a", TA, (saml_reason(TA),)),
        Membership("b", TA, (saml_reason(TA),)),
    )


def test_r2_group_contribution_fills_blank_fields_from_the_defaults() -> None:
    """A blank team list takes the default teams, a blank role the default role, both blank the defaults."""
    org = article_org(default_role=TA)
    assert org.contribution("leads") == {Grant(ENG, TA)}
    assert org.contribution("ops-blank-role") == {Grant(OPS, TA), Grant(MKT, TA)}
    assert org.contribution("admins-blank-teams") == {Grant(ENG, OA)}
    assert org.contribution("everyone") == org.default_grants == {Grant(ENG, TA)}
    res = resolve_memberships(org, User("u", scim=True, groups=["everyone"], email="u@example.com"))
    assert res.memberships == (Membership(ENG, TA, (group_reason("everyone", TA),)),)


def test_r3_group_mappings_replace_the_defaults() -> None:
    """A SCIM user in a mapped group gets the group's grants only, not the default teams."""
    res = resolve_memberships(article_org(), User("u", scim=True, groups=["marketing"], email="u@example.com"))
    assert res.memberships == (Membership(MKT, M, (group_reason("marketing", M),)),)
    assert res.overridden == ()


def test_r3_several_groups_union() -> None:
    """A user in several groups gets every team all their groups map to."""
    res = resolve_memberships(
        article_org(), User("u", scim=True, groups=["marketing", "it-admins", "leads"], email="u@example.com")
    )
    assert dict(res.roles) == {ENG: TA, IT: OA, MKT: M}


def test_r3_scim_user_in_no_group_gets_the_defaults_from_scim() -> None:
    """A SCIM user in no group is initially added to the default teams at the default role."""
    res = resolve_memberships(article_org(), User("u", scim=True, email="u@example.com"))
    assert res.memberships == (Membership(ENG, M, (Reason(Source.SCIM, M),)),)


def test_r4_highest_role_wins_a_conflict() -> None:
    """Two groups mapping one team at different roles: the higher role wins, the lower is overridden."""
    res = resolve_memberships(
        article_org(), User("u", scim=True, groups=["everyone", "leads", "admins-blank-teams"], email="u@example.com")
    )
    assert res.memberships == (Membership(ENG, OA, (group_reason("admins-blank-teams", OA),)),)
    assert res.overridden == (
        Overridden(ENG, group_reason("everyone", M), Cause.LOWER_ROLE),
        Overridden(ENG, group_reason("leads", TA), Cause.LOWER_ROLE),
    )


def test_r4_equal_roles_are_all_reasons() -> None:
    """Two groups granting the same team the same role are both reasons of the membership."""
    res = resolve_memberships(
        article_org(), User("u", scim=True, groups=["marketing", "ops-blank-role"], email="u@example.com")
    )
    assert res.memberships[0] == Membership(MKT, M, (group_reason("marketing", M), group_reason("ops-blank-role", M)))
    assert res.overridden == ()


def test_r5_saml_user_synced_later_by_scim_takes_what_scim_says() -> None:
    """A SAML user later synced through SCIM loses the SAML defaults to SCIM's grants."""
    org = article_org()
    before = resolve_memberships(org, User("u", saml=True, email="u@example.com"))
    after = resolve_memberships(org, User("u", saml=True, scim=True, groups=["marketing"], email="u@example.com"))
    assert dict(before.roles) == {ENG: M}
    assert dict(after.roles) == {MKT: M}
    assert after.overridden == (Overridden(ENG, saml_reason(), Cause.SCIM_OVERRIDES_SAML),)


def test_r5_saml_and_scim_in_no_group_is_resolved_as_scim() -> None:
    """Both SAML and SCIM, in no group: the SCIM defaults stand; the SAML defaults are overridden."""
    res = resolve_memberships(article_org(), User("u", saml=True, scim=True, email="u@example.com"))
    assert res.memberships == (Membership(ENG, M, (Reason(Source.SCIM, M),)),)
    assert res.overridden == (Overridden(ENG, saml_reason(), Cause.SCIM_OVERRIDES_SAML),)
    assert res.locked


def test_r6_saml_user_keeps_the_defaults() -> None:
    """A SAML-only user without manual grants stays in the default team at the default role."""
    res = resolve_memberships(article_org(), User("u", saml=True, email="u@example.com"))
    assert res.memberships == (Membership(ENG, M, (saml_reason(),)),)
    assert res.overridden == ()
    assert not res.locked


def test_r6_manual_grants_replace_the_saml_defaults_entirely() -> None:
    """A SAML user edited by an admin gets exactly the manual grants; the defaults are overridden."""
    res = resolve_memberships(article_org(), User("u", saml=True, manual=[Grant(MKT, TA)], email="u@example.com"))
    assert res.memberships == (Membership(MKT, TA, (manual_reason(TA),)),)
    assert res.overridden == (Overridden(ENG, saml_reason(), Cause.MANUAL_OVERRIDES_DEFAULT),)


def test_r6_manual_grant_on_the_default_team_replaces_the_default_role() -> None:
    """A manual grant on the default team itself replaces the default: the manual role stands."""
    res = resolve_memberships(article_org(), User("u", saml=True, manual=[Grant(ENG, TA)], email="u@example.com"))
    assert res.memberships == (Membership(ENG, TA, (manual_reason(TA),)),)
    assert res.overridden == (Overridden(ENG, saml_reason(), Cause.MANUAL_OVERRIDES_DEFAULT),)


def test_r7_manual_only_user_gets_exactly_their_grants() -> None:
    """A user invited by an admin, with no SAML or SCIM, gets exactly the invite's grants."""
    res = resolve_memberships(article_org(), User("u", manual=invite([MKT, OPS], TA)))
    assert res.memberships == (
        Membership(MKT, TA, (manual_reason(TA),)),
        Membership(OPS, TA, (manual_reason(TA),)),
    )
    assert res.overridden == ()
    assert not res.locked


def test_r8_toggle_off_locks_scim_users_and_overrides_manual_grants() -> None:
    """Toggle OFF: a SCIM user is locked and every manual grant is overridden, even outside the baseline."""
    user = User("u", scim=True, groups=["marketing"], manual=[Grant(OPS, TA), Grant(MKT, OA)], email="u@example.com")
    res = resolve_memberships(article_org(manual_edits=False), user)
    assert res.locked
    assert dict(res.roles) == {MKT: M}
    assert res.overridden == (
        Overridden(MKT, manual_reason(OA), Cause.LOCKED),
        Overridden(OPS, manual_reason(TA), Cause.LOCKED),
    )


def test_r8_manually_added_user_later_managed_by_scim_is_overridden() -> None:
    """An invited user later provisioned by SCIM (toggle OFF) loses the manual grants to SCIM."""
    org = article_org()
    manual = invite([OPS], TA)
    assert dict(resolve_memberships(org, User("u", manual=manual)).roles) == {OPS: TA}
    res = resolve_memberships(org, User("u", scim=True, manual=manual, email="u@example.com"))
    assert dict(res.roles) == {ENG: M}
    assert res.overridden == (Overridden(OPS, manual_reason(TA), Cause.LOCKED),)


def test_r9_toggle_on_adds_teams_outside_the_baseline() -> None:
    """Toggle ON: manual grants on teams outside the group mapping are added to the baseline."""
    user = User("u", scim=True, groups=["marketing"], manual=[Grant(OPS, TA)], email="u@example.com")
    res = resolve_memberships(article_org(manual_edits=True), user)
    assert not res.locked
    assert res.memberships == (
        Membership(MKT, M, (group_reason("marketing", M),)),
        Membership(OPS, TA, (manual_reason(TA),)),
    )
    assert res.overridden == ()


def test_r9_toggle_on_the_idp_wins_conflicts_higher_lower_or_equal() -> None:
    """Toggle ON: a manual grant on a baseline team is overridden whatever its role."""
    org = article_org(manual_edits=True)
    for role in Role:
        user = User("u", scim=True, groups=["leads"], manual=[Grant(ENG, role)], email="u@example.com")
        res = resolve_memberships(org, user)
        assert dict(res.roles) == {ENG: TA}
        assert res.overridden == (Overridden(ENG, manual_reason(role), Cause.SCIM_OVERRIDES_MANUAL),)


def test_r9_toggle_on_scim_user_in_no_group_keeps_the_defaults_on_conflict() -> None:
    """Toggle ON, in no group: the defaults are the baseline and beat a manual grant on a default team."""
    user = User("u", scim=True, manual=[Grant(ENG, OA), Grant(IT, M)], email="u@example.com")
    res = resolve_memberships(article_org(manual_edits=True), user)
    assert dict(res.roles) == {ENG: M, IT: M}
    assert res.overridden == (Overridden(ENG, manual_reason(OA), Cause.SCIM_OVERRIDES_MANUAL),)


def test_r10_deprovisioned_user_keeps_nothing() -> None:
    """A deprovisioned user has no memberships, is no org admin and not locked; every input is inert."""
    user = User(
        "u",
        saml=True,
        scim=True,
        groups=["it-admins", "leads"],
        deprovisioned=True,
        manual=[Grant(OPS, TA)],
        email="u@example.com",
    )
    for manual_edits in (False, True):
        res = resolve_memberships(article_org(manual_edits=manual_edits), user)
        assert res.memberships == ()
        assert res.deprovisioned
        assert not res.is_org_admin
        assert not res.locked
        assert dict(res.roles) == {}
        assert res.overridden == (
            Overridden(ENG, saml_reason(), Cause.DEPROVISIONED),
            Overridden(ENG, group_reason("leads", TA), Cause.DEPROVISIONED),
            Overridden(IT, group_reason("it-admins", OA), Cause.DEPROVISIONED),
            Overridden(OPS, manual_reason(TA), Cause.DEPROVISIONED),
        )


def test_r10_deprovisioned_user_in_no_group_loses_the_scim_defaults() -> None:
    """Deprovisioned in no group: the SCIM defaults are the input that is overridden."""
    res = resolve_memberships(article_org(), User("u", scim=True, deprovisioned=True, email="u@example.com"))
    assert res.memberships == ()
    assert res.overridden == (Overridden(ENG, Reason(Source.SCIM, M), Cause.DEPROVISIONED),)


def test_r11_org_admin_exactly_when_a_membership_is_org_admin() -> None:
    """A user is an org admin when, and only when, some effective membership has role ORG_ADMIN."""
    org = article_org(manual_edits=True)
    assert resolve_memberships(org, User("u", scim=True, groups=["it-admins"], email="u@example.com")).is_org_admin
    assert resolve_memberships(org, User("u", manual=[Grant(OPS, OA)])).is_org_admin
    assert not resolve_memberships(org, User("u", scim=True, groups=["leads"], email="u@example.com")).is_org_admin
    locked = User("u", scim=True, groups=["leads"], manual=[Grant(OPS, OA)], email="u@example.com")
    assert not resolve_memberships(article_org(), locked).is_org_admin


def test_r12_order_of_inputs_does_not_matter() -> None:
    """Inputs given in any order give equal orgs, users and resolutions; memberships are sorted by team."""
    teams = [Team(t) for t in ("z", "a", "m")]
    groups = [IdpGroup("g2", ["z", "a"], TA), IdpGroup("g1", ["m", "a"], TA)]
    org1 = Org(teams=teams, default_teams=["z", "a"], default_role=M, groups=groups, domains=["example.com"])
    org2 = Org(
        teams=reversed(teams),
        default_teams=("a", "z"),
        default_role=M,
        groups=iter(groups[::-1]),
        domains=["example.com"],
    )
    assert org1 == org2
    assert hash(org1) == hash(org2)
    user1 = User("u", scim=True, groups=["g1", "g2"], email="u@example.com")
    user2 = User("u", scim=True, groups={"g2", "g1"}, email="u@example.com")
    res1, res2 = resolve_memberships(org1, user1), resolve_memberships(org2, user2)
    assert res1 == res2
    assert [m.team for m in res1.memberships] == ["a", "m", "z"]
    assert res1.memberships[0].reasons == (group_reason("g1", TA), group_reason("g2", TA))


def test_r12_reasons_of_a_tie_are_listed_by_group_id() -> None:
    """However Python orders a user's set of groups, the reasons of a tie come sorted by group id."""
    names = [f"g{letter}" for letter in "qwertyuiopasdfghjklzxcvbnm"]
    org = Org([Team("a")], ["a"], M, groups=[IdpGroup(g, ["a"], TA) for g in names], domains=["example.com"])
    res = resolve_memberships(org, User("u", scim=True, groups=names, email="u@example.com"))
    assert res.memberships[0].reasons == tuple(group_reason(g, TA) for g in sorted(names))


def test_r12_results_are_frozen_hashable_and_picklable() -> None:
    """A resolution and everything in it can be hashed, pickled and compared by value."""
    org = article_org()
    res = resolve_memberships(org, User("u", saml=True, scim=True, groups=["leads", "everyone"], email="u@example.com"))
    assert pickle.loads(pickle.dumps(res)) == res  # noqa: S301 -- our own data
    assert pickle.loads(pickle.dumps(org)) == org  # noqa: S301 -- our own data
    assert hash(res) == hash(
        resolve_memberships(org, User("u", saml=True, scim=True, groups=["everyone", "leads"], email="u@example.com"))
    )


def test_r13_every_input_grant_is_accounted_for_once() -> None:
    """Each input grant is a reason of one membership or one overridden entry, never both, never lost."""
    user = User(
        "u",
        saml=True,
        scim=True,
        groups=["everyone", "leads", "marketing"],
        manual=[Grant(OPS, M)],
        email="u@example.com",
    )
    res = resolve_memberships(article_org(manual_edits=True), user)
    placed = [(m.team, r) for m in res.memberships for r in m.reasons] + [(o.team, o.reason) for o in res.overridden]
    assert sorted(placed, key=repr) == sorted(
        [
            (ENG, saml_reason()),
            (ENG, group_reason("everyone", M)),
            (ENG, group_reason("leads", TA)),
            (MKT, group_reason("marketing", M)),
            (OPS, manual_reason(M)),
        ],
        key=repr,
    )
    assert {o.cause for o in res.overridden} == {Cause.SCIM_OVERRIDES_SAML, Cause.LOWER_ROLE}


def test_explain_reads_well_for_admins_and_the_deprovisioned() -> None:
    """explain() counts memberships (plural), says org admin, lists reasons and overrides, and says deprovisioned."""
    org = article_org(manual_edits=True)
    admin = User(
        "root",
        scim=True,
        groups=["it-admins", "marketing", "ops-blank-role"],
        manual=[Grant(OPS, TA)],
        email="root@example.com",
    )
    assert resolve_memberships(org, admin).explain().splitlines() == [
        "User 'root': 3 memberships, org admin",
        "  it: Org Admin",
        "    because IdP group 'it-admins' (Org Admin)",
        "  mkt: Member",
        "    because IdP group 'marketing' (Member)",
        "    because IdP group 'ops-blank-role' (Member)",
        "  ops: Member",
        "    because IdP group 'ops-blank-role' (Member)",
        "Overridden:",
        "  ops: manual grant (Team Admin)",
        "    SCIM grants this team; on a conflict SCIM wins",
    ]
    gone = User("gone", scim=True, deprovisioned=True, email="gone@example.com")
    assert resolve_memberships(org, gone).explain().splitlines() == [
        "User 'gone': 0 memberships, deprovisioned (no access)",
        "Overridden:",
        "  eng: SCIM defaults for a user in no IdP group (Member)",
        "    the user was deprovisioned by the IdP",
    ]
    assert resolve_memberships(
        org, User("u", manual=[Grant(OPS, M)], saml=True, email="u@example.com")
    ).explain().splitlines()[-1] == ("    manual grants replace the SAML defaults")
    lower = resolve_memberships(org, User("u", scim=True, groups=["leads", "everyone"], email="u@example.com"))
    assert lower.explain().splitlines()[-1] == "    another IdP group grants a higher role on this team"
