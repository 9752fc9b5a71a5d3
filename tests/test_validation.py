"""One test per validation of RULES.md (V1-V7), and the shape of the errors."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_roles import (
    Grant,
    IdpGroup,
    InvalidArgument,
    InvalidOrg,
    InvalidUser,
    Org,
    Problem,
    Role,
    ScimRolesError,
    Team,
    User,
    invite,
    resolve_memberships,
)
from scim_roles.io import load_org
from scim_roles.strategies import worlds

from helpers import ENG, MKT, article_org, small_org

M, TA, OA = Role.MEMBER, Role.TEAM_ADMIN, Role.ORG_ADMIN
make_org = small_org


def test_errors_are_value_errors_with_one_base() -> None:
    """Every refusal is a ScimRolesError, itself a ValueError; the concrete classes refine it."""
    assert issubclass(ScimRolesError, ValueError)
    assert issubclass(InvalidOrg, ScimRolesError)
    assert issubclass(InvalidUser, ScimRolesError)


def test_errors_keep_their_problems_and_pickle() -> None:
    """An error names the offending id and field, in attributes and in its message, and survives pickling."""
    with pytest.raises(InvalidOrg) as info:
        make_org(default_teams=["a", "zz"])
    err = info.value
    assert err.id == "zz"
    assert err.field == "default_teams"
    assert str(err) == "org: default_teams: unknown team 'zz'"
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 -- our own data
    assert type(again) is InvalidOrg
    assert again.problems == err.problems
    assert str(again) == str(err)


def test_error_needs_a_problem() -> None:
    """An error without any problem is a programming mistake, refused with TypeError."""
    with pytest.raises(TypeError, match=r"^an error needs at least one problem$"):
        ScimRolesError()


def test_v1_team_ids_are_non_empty_strings() -> None:
    """A team id must be a non-empty string; a name must be a string."""
    with pytest.raises(InvalidOrg, match="team: id: must be a non-empty string, got ''"):
        Team("")
    with pytest.raises(InvalidOrg, match="team: id: must be a non-empty string, got 3"):
        Team(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrg, match="team 'a': name: must be a string, got None"):
        Team("a", None)  # type: ignore[arg-type]


def test_v1_team_ids_are_unique() -> None:
    """Two teams with one id are refused, even when equal in every field."""
    with pytest.raises(InvalidOrg, match="team 'a': id: is not unique in the org") as info:
        make_org(teams=[Team("a"), Team("a"), Team("b")])
    assert info.value.id == "a"


def test_v1_group_ids_are_unique_non_empty_strings() -> None:
    """Group ids are non-empty strings, unique in the org."""
    with pytest.raises(InvalidOrg, match="group: id: must be a non-empty string"):
        IdpGroup("")
    with pytest.raises(InvalidOrg, match="group 'g': id: is not unique in the org"):
        make_org(groups=[IdpGroup("g"), IdpGroup("g", ["a"])])


def test_v1_collections_must_hold_the_right_types() -> None:
    """Teams must be Teams, groups IdpGroups, team ids strings; a bare string is not a collection."""
    with pytest.raises(InvalidOrg, match="org: teams: must be a collection of Team"):
        make_org(teams=["a"])
    with pytest.raises(InvalidOrg, match="org: teams: must be a collection of Team"):
        make_org(teams=5)
    with pytest.raises(InvalidOrg, match="org: groups: must be a collection of IdpGroup"):
        make_org(groups=["g"])
    with pytest.raises(InvalidOrg, match="org: default_teams: must be a collection of team ids, got 'a'"):
        make_org(default_teams="a")
    with pytest.raises(InvalidOrg, match="org: default_teams: must be a collection of team ids"):
        make_org(default_teams=[["a"]])
    with pytest.raises(InvalidOrg, match="group 'g': teams: team ids must be non-empty strings, got 1"):
        IdpGroup("g", [1])  # type: ignore[list-item]
    with pytest.raises(InvalidOrg, match="group 'g': role: must be a Role, got 'member'"):
        IdpGroup("g", role="member")  # type: ignore[arg-type]
    with pytest.raises(InvalidOrg, match="org: manual_edits: must be True or False, got 'yes'"):
        make_org(manual_edits="yes")


def test_v2_default_teams_are_non_empty_and_known() -> None:
    """The default teams name at least one team, all of them teams of the org."""
    with pytest.raises(InvalidOrg, match="org: default_teams: must name at least one team"):
        make_org(default_teams=[])
    with pytest.raises(InvalidOrg, match="org: default_teams: unknown team 'c'"):
        make_org(default_teams=["a", "c"])


def test_v2_default_role_is_member_or_team_admin() -> None:
    """An org-admin default role is refused; so is anything that is not a Role."""
    assert make_org(default_role=TA).default_role is TA
    with pytest.raises(InvalidOrg, match="org: default_role: must be MEMBER or TEAM_ADMIN, got ORG_ADMIN"):
        make_org(default_role=OA)
    with pytest.raises(InvalidOrg, match="org: default_role: must be a Role, got 'member'"):
        make_org(default_role="member")


def test_v3_group_teams_are_known_teams() -> None:
    """A group mapped to a team the org does not have is refused: the IdP cannot create teams."""
    with pytest.raises(InvalidOrg, match=r"group 'g': teams: unknown team 'mktg': map the group to teams the org has"):
        make_org(groups=[IdpGroup("g", ["a", "mktg"])])


def test_v1_to_v3_every_problem_is_reported_at_once() -> None:
    """An org with several problems raises one error listing them all."""
    with pytest.raises(InvalidOrg) as info:
        Org(
            teams=[Team("a"), Team("a")],
            default_teams=["x"],
            default_role=OA,
            groups=[IdpGroup("g", ["y"]), IdpGroup("g")],
            manual_edits=1,  # type: ignore[arg-type]
        )
    assert [str(p) for p in info.value.problems] == [
        "team 'a': id: is not unique in the org",
        "group 'g': id: is not unique in the org",
        "group 'g': teams: unknown team 'y': map the group to teams the org has",
        "org: default_teams: unknown team 'x'",
        "org: default_role: must be MEMBER or TEAM_ADMIN, got ORG_ADMIN",
        "org: manual_edits: must be True or False, got 1",
    ]


def test_v4_a_user_has_at_least_one_source() -> None:
    """A user with no SAML, no SCIM and no manual grant is refused."""
    with pytest.raises(InvalidUser, match="user 'u': source: has no source") as info:
        User("u")
    assert info.value.id == "u"
    assert User("u", saml=True, email="u@example.com").saml
    assert User("u", scim=True, email="u@example.com").scim
    assert User("u", manual=[Grant("a", M)]).manual == {Grant("a", M)}


def test_v4_groups_and_deprovisioning_need_scim() -> None:
    """Groups or deprovisioning without SCIM are refused."""
    with pytest.raises(InvalidUser, match="user 'u': groups: only a SCIM user belongs to IdP groups"):
        User("u", saml=True, groups=["g"], email="u@example.com")
    with pytest.raises(InvalidUser, match="user 'u': deprovisioned: only a SCIM user can be deprovisioned"):
        User("u", saml=True, deprovisioned=True, email="u@example.com")


def test_v4_user_fields_have_the_right_types() -> None:
    """Ids are non-empty strings, flags are booleans, groups a collection of ids, manual one of Grants."""
    with pytest.raises(InvalidUser, match="user: id: must be a non-empty string"):
        User("", saml=True, email="user@example.com")
    with pytest.raises(InvalidUser, match="user 'u': scim: must be True or False, got 1"):
        User("u", scim=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidUser, match="user 'u': groups: must be a collection of group ids, got 'g1'"):
        User("u", scim=True, groups="g1", email="u@example.com")
    with pytest.raises(InvalidUser, match="user 'u': manual: must be a collection of Grant"):
        User("u", manual=[("a", M)])  # type: ignore[list-item]
    with pytest.raises(InvalidUser, match="user 'u': manual: must be a collection of Grant"):
        User("u", manual=None)  # type: ignore[arg-type]


class _Name(str):
    """A str subclass: valid, but off the constructors' exact-type fast path."""

    __slots__ = ()


_ANY_ID = st.one_of(st.sampled_from(["", "a", "b"]), st.builds(_Name, st.sampled_from(["", "a"])), st.integers(0, 1))
_ANY_FLAG = st.one_of(st.booleans(), st.sampled_from([0, 1, None, "yes"]))
_ANY_GRANT = st.builds(Grant, st.sampled_from(["a", "b", _Name("a")]), st.sampled_from(list(Role)))
_ANY_ITEMS = st.one_of(
    st.lists(_ANY_ID, max_size=3),
    st.lists(_ANY_GRANT, max_size=3),
    st.lists(_ANY_ID, max_size=3).map(tuple),
    st.frozensets(_ANY_GRANT, max_size=3),
    st.frozensets(st.sampled_from(["a", "b", ""]), max_size=3),
    st.lists(st.lists(st.just("a"), max_size=1), max_size=2),  # unhashable items
    st.sampled_from(["ab", None, 3, {"a": 1}]),
)


@given(
    uid=_ANY_ID,
    saml=_ANY_FLAG,
    scim=_ANY_FLAG,
    groups=_ANY_ITEMS,
    deprovisioned=_ANY_FLAG,
    manual=_ANY_ITEMS,
)
def test_v4_the_fast_path_accepts_only_what_the_detailed_checks_accept(
    uid: object, saml: object, scim: object, groups: object, deprovisioned: object, manual: object
) -> None:
    """User's C-level check of the common case and its field-by-field checks agree on every input."""
    fields: dict[str, Any] = {
        "saml": saml,
        "scim": scim,
        "groups": groups,
        "deprovisioned": deprovisioned,
        "manual": manual,
    }
    try:
        user = User(uid, **fields)  # type: ignore[arg-type]
    except InvalidUser:  # refused: raised by the detailed checks, which say why
        return
    user._check()  # the detailed checks find nothing either
    assert type(user.groups) is frozenset
    assert type(user.manual) is frozenset
    assert all(isinstance(g, Grant) for g in user.manual)
    assert attrs.evolve(user) == user


@given(team=_ANY_ID, role=st.one_of(st.sampled_from(list(Role)), st.sampled_from(["member", 0, None])))
def test_v4_a_grant_is_checked_alike_on_both_paths(team: object, role: object) -> None:
    """Grant accepts exactly a non-empty string team and a Role."""
    valid = isinstance(team, str) and team != "" and isinstance(role, Role)
    if valid:
        assert Grant(team, role).team == team  # type: ignore[arg-type]
    else:
        with pytest.raises(InvalidUser):
            Grant(team, role)  # type: ignore[arg-type]


def test_v4_a_str_subclass_is_a_valid_id() -> None:
    """Ids of a str subclass take the detailed checks, which accept them."""
    assert User(_Name("a"), saml=True, email="user@example.com").id == "a"
    assert User("a", scim=True, groups=[_Name("g")], email="a@example.com").groups == {"g"}
    assert Grant(_Name("eng"), M).team == "eng"


def test_v4_any_iterable_of_ids_and_grants_is_taken_and_checked() -> None:
    """Generators and sets work like lists; what cannot be hashed is refused with the owner's id."""
    assert User("u", scim=True, groups=(g for g in ["a", "b"]), email="u@example.com").groups == {"a", "b"}
    assert User("u", manual=(g for g in [Grant("a", M)])).manual == {Grant("a", M)}
    assert User("u", manual={Grant("a", M)}).manual == {Grant("a", M)}
    with pytest.raises(InvalidUser, match=r"user 'u': groups: must be a collection of group ids, got \(\['a'\],\)"):
        User("u", scim=True, groups=(g for g in [["a"]]), email="u@example.com")  # type: ignore[misc]
    with pytest.raises(InvalidUser, match=r"user 'u': groups: must be a collection of group ids, got \(\['a'\],\)"):
        User("u", scim=True, groups=[["a"]], email="u@example.com")  # type: ignore[list-item]


def test_v5_scim_groups_are_synced_to_the_org() -> None:
    """A user in a group the org has not synced is refused by resolve_memberships, naming user and group."""
    with pytest.raises(InvalidUser, match="user 'u': groups: IdP group 'nope' is not synced to the org"):
        resolve_memberships(article_org(), User("u", scim=True, groups=["leads", "nope"], email="u@example.com"))


def test_v5_checked_for_deprovisioned_users_too() -> None:
    """Deprovisioning makes inputs inert, not invalid inputs valid."""
    with pytest.raises(InvalidUser, match="IdP group 'nope' is not synced"):
        resolve_memberships(
            article_org(), User("u", scim=True, groups=["nope"], deprovisioned=True, email="u@example.com")
        )


def test_v6_manual_grants_name_known_teams() -> None:
    """A manual grant on a team the org does not have is refused, naming user and team."""
    with pytest.raises(InvalidUser, match="user 'u': manual: grant on unknown team 'zz'"):
        resolve_memberships(article_org(), User("u", manual=[Grant(ENG, M), Grant("zz", M)]))


def test_v6_at_most_one_manual_grant_per_team() -> None:
    """Two manual grants on one team are refused."""
    with pytest.raises(InvalidUser, match="user 'u': manual: more than one grant on team 'eng'"):
        User("u", manual=[Grant(ENG, M), Grant(ENG, TA)])


def test_v6_grants_are_well_formed() -> None:
    """A grant's team is a non-empty string and its role a Role."""
    with pytest.raises(InvalidUser, match="grant: team: must be a non-empty string"):
        Grant("", M)
    with pytest.raises(InvalidUser, match="grant on team 'a': role: must be a Role, got 'admin'"):
        Grant("a", "admin")  # type: ignore[arg-type]


def test_v7_invite_names_teams_and_one_member_or_team_admin_role() -> None:
    """An invite names at least one team and one role, MEMBER or TEAM_ADMIN, for all its teams."""
    assert invite(iter([ENG, MKT]), TA) == {Grant(ENG, TA), Grant(MKT, TA)}
    with pytest.raises(InvalidUser, match="invite: teams: must name at least one team"):
        invite([], M)
    with pytest.raises(InvalidUser, match="invite: role: must be MEMBER or TEAM_ADMIN, got ORG_ADMIN"):
        invite([ENG], OA)
    with pytest.raises(InvalidUser, match="invite: role: must be a Role"):
        invite([ENG], None)  # type: ignore[arg-type]
    with pytest.raises(InvalidUser, match="invite: teams: must be a collection of team ids, got 'eng'"):
        invite(ENG, M)


def test_resolve_refuses_wrong_argument_types() -> None:
    """resolve_memberships refuses anything but an Org and a User, saying what was passed where."""
    with pytest.raises(InvalidOrg, match="resolve_memberships: org: must be an Org, got NoneType None"):
        resolve_memberships(None, User("u", saml=True, email="u@example.com"))  # type: ignore[arg-type]
    with pytest.raises(InvalidUser, match="resolve_memberships: user: must be a User, got str 'u'"):
        resolve_memberships(article_org(), "u")  # type: ignore[arg-type]
    swapped = "the arguments are swapped: a User was passed as org and an Org as user; the org comes first"
    with pytest.raises(InvalidArgument) as refused:
        resolve_memberships(User("u", saml=True), article_org())  # type: ignore[arg-type]
    assert refused.value.problems == (Problem("resolve_memberships", "org", swapped),)
    for org, user in ((User("u", saml=True), User("v", saml=True)), ("u", article_org())):  # one half: no swap
        with pytest.raises(InvalidOrg, match="resolve_memberships: org: must be an Org"):
            resolve_memberships(org, user)  # type: ignore[arg-type]


def test_v1_every_team_that_does_not_build_is_reported_at_its_place() -> None:
    """Two teams of a document without ids: one problem each, each at its place."""
    with pytest.raises(InvalidOrg) as refused:
        load_org({"teams": [{"id": ""}, {"id": ""}], "default_teams": ["a"], "default_role": "member"})
    assert [p.field for p in refused.value.problems] == ["teams[0].id", "teams[1].id"]


def test_models_are_frozen_and_evolve_revalidates() -> None:
    """Inputs cannot be changed in place; attrs.evolve makes a validated copy."""
    org = article_org()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        org.manual_edits = True  # type: ignore[misc]
    assert attrs.evolve(org, manual_edits=True).manual_edits
    with pytest.raises(InvalidOrg, match="default_teams: unknown team 'zz'"):
        attrs.evolve(org, default_teams=["zz"])


def test_org_lookups() -> None:
    """Org.team and Org.group look up by id; unknown ids raise KeyError."""
    org = article_org()
    assert org.team(ENG).name == "Engineering"
    assert org.group("leads").role is TA
    with pytest.raises(KeyError):
        org.group("nope")


def test_problem_str() -> None:
    """A problem reads as subject, field and detail."""
    assert str(Problem("user 'u'", "groups", "bad", "u")) == "user 'u': groups: bad"


@given(worlds(max_users=8))
def test_v4_valid_users_and_grants_are_accepted_at_once(world: tuple[Org, tuple[User, ...]]) -> None:
    """A valid user or grant, from lists or sets, never takes the field-by-field path: the quick check accepts
    it at once (the detailed path is for what it does not accept)."""
    _, users = world
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(User, "_check", lambda self: pytest.fail(f"the detailed path for {self!r}"))
        patch.setattr(Grant, "_check", lambda self: pytest.fail(f"the detailed path for {self!r}"))
        for user in users:
            if user.email is not None and (not user.email.isascii() or "--" in user.email):
                continue  # the quick check reads plain ASCII emails; IDNA judges the others (V8)
            grants = [Grant(g.team, g.role) for g in user.manual]
            again = User(user.id, user.saml, user.scim, list(user.groups), user.deprovisioned, grants, user.email)
            assert again == user
            assert (
                User(user.id, user.saml, user.scim, user.groups, user.deprovisioned, frozenset(grants), user.email)
                == user
            )
