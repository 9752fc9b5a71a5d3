"""scim_roles.io: documents in, model out, every problem with its path; round trips."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import scim_roles.io
from scim_roles import InvalidOrg, InvalidUser, Org, Problem, User, resolve_memberships
from scim_roles.io import dump_org, dump_resolution, dump_user, dump_users, load_org, load_user, load_users
from scim_roles.strategies import orgs, worlds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover -- Python 3.10
    import tomli as tomllib

EXAMPLES = Path(__file__).parent.parent / "examples"


def problems(err: pytest.ExceptionInfo[Any]) -> list[str]:
    return [str(p) for p in err.value.problems]


@given(orgs())
def test_org_round_trip(org: Org) -> None:
    """load_org(dump_org(org)) == org, through JSON too."""
    assert load_org(dump_org(org)) == org
    assert load_org(json.loads(json.dumps(dump_org(org)))) == org


@given(worlds(max_users=5))
def test_users_round_trip(world: tuple[Org, tuple[User, ...]]) -> None:
    """load_users(dump_users(users)) == users, checked against their org."""
    org, users = world
    assert load_users(dump_users(users), org) == users
    for user in users:
        assert load_user(dump_user(user), org) == user


def test_json_and_toml_examples_are_the_same() -> None:
    """The shipped examples say the same in JSON and TOML; omitted keys take the defaults."""
    org_json = load_org(json.loads((EXAMPLES / "org.json").read_text()))
    org_toml = load_org(tomllib.loads((EXAMPLES / "org.toml").read_text()))
    assert org_json == org_toml
    users_json = load_users(json.loads((EXAMPLES / "users.json").read_text()), org_json)
    users_toml = load_users(tomllib.loads((EXAMPLES / "users.toml").read_text()), org_json)
    assert users_json == users_toml
    assert users_json[0] == User("ann", saml=True, email="ann@example.com")
    assert org_json.group("okta-everyone").role is None


def test_bad_org_document_reports_every_problem_of_its_shape_at_its_path() -> None:
    """Every problem of a document's shape at once, each at its path in the org; the rules wait for a right shape."""
    with pytest.raises(InvalidOrg) as err:
        load_org(
            {
                "teams": [{"id": "eng"}, {"id": "eng"}, 3, {"id": ""}],
                "default_teams": ["eng", "sales", "eng"],
                "default_role": "owner",
                "groups": [{"id": "g", "teams": ["mktg", 1]}, {"rol": "x"}, {"id": "g", "role": "org_admin"}],
                "manual_edit": True,
            }
        )
    assert err.value.problems == (
        Problem("org", "teams[2]", "expected a table of keys and values"),
        Problem("org", "default_role", "'owner' is not one of member, team_admin, org_admin"),
        Problem("org", "groups[0].teams[1]", "expected a string, got 1"),
        Problem("org", "groups[1].id", "required key missing"),
        Problem("org", "groups[1].rol", "unknown key (known: id, role, teams)", "rol"),
        Problem("org", "manual_edit", f"unknown key (known: {', '.join(ORG_KEYS)})", "manual_edit"),
    )
    assert problems(err)[0] == "org: teams[2]: expected a table of keys and values"


ORG_KEYS = ("default_role", "default_teams", "domains", "groups", "manual_edits", "teams")


def test_v1_v3_an_org_documents_rules_are_the_models_each_at_its_path() -> None:
    """A well-shaped document gets the model's own problems (one source), each put at its path, once each;
    a list that stands for a set repeats nothing."""
    with pytest.raises(InvalidOrg) as err:
        load_org(
            {
                "teams": [{"id": "eng"}, {"id": "eng"}, {"id": ""}],
                "default_teams": ["eng", "sales", "eng"],
                "default_role": "member",
                "groups": [{"id": "g", "teams": ["mktg", "eng", "mktg"]}, {"id": "h", "teams": [""]}, {"id": "g"}],
            }
        )
    assert err.value.problems == (
        Problem("org", "default_teams[2]", "team 'eng' appears more than once", "eng"),
        Problem("org", "groups[0].teams[2]", "team 'mktg' appears more than once", "mktg"),
        Problem("org", "teams[2].id", "must be a non-empty string, got ''"),
        Problem("org", "groups[1].teams", "team ids must be non-empty strings, got ''", "h"),
    )  # a team or group that does not build leaves the org's rules unchecked: they would guess
    with pytest.raises(InvalidOrg) as err:
        load_org(
            {
                "teams": [{"id": "eng"}, {"id": "mkt"}, {"id": "eng"}],
                "default_teams": ["eng", "sales"],
                "default_role": "member",
                "groups": [{"id": "g", "teams": ["mktg", "eng"]}, {"id": "h"}, {"id": "g"}],
            }
        )
    assert err.value.problems == (
        Problem("org", "teams[2].id", "is not unique in the org", "eng"),
        Problem("org", "groups[2].id", "is not unique in the org", "g"),
        Problem("org", "groups[0].teams", "unknown team 'mktg': map the group to teams the org has", "g"),
        Problem("org", "default_teams", "unknown team 'sales'", "sales"),
    )
    with pytest.raises(InvalidOrg) as err:
        load_org({"teams": [{"id": "a"}], "default_teams": [], "default_role": "org_admin", "Xtra": 1})
    assert problems(err) == [f"org: Xtra: unknown key (known: {', '.join(ORG_KEYS)})"]
    with pytest.raises(InvalidOrg) as err:
        load_org({"teams": [{"id": "a"}], "default_teams": [], "default_role": "org_admin"})
    assert problems(err) == [
        "org: default_teams: must name at least one team",
        "org: default_role: must be MEMBER or TEAM_ADMIN, got ORG_ADMIN",
    ]


def test_dump_org_omits_blanks() -> None:
    """A dumped org omits empty names and blank group fields, and lists ids sorted."""
    org = load_org(
        {
            "teams": [{"id": "mkt"}, {"id": "eng", "name": "Engineering"}],
            "default_teams": ["mkt", "eng"],
            "default_role": "team_admin",
            "groups": [{"id": "g2", "teams": ["mkt", "eng"]}, {"id": "g1", "role": "org_admin"}],
            "domains": ["Example.COM", "*.bücher.example"],
        }
    )
    assert dump_org(org) == {
        "teams": [{"id": "eng", "name": "Engineering"}, {"id": "mkt"}],
        "default_teams": ["eng", "mkt"],
        "default_role": "team_admin",
        "groups": [{"id": "g1", "role": "org_admin"}, {"id": "g2", "teams": ["eng", "mkt"]}],
        "manual_edits": False,
        "domains": ["*.xn--bcher-kva.example", "example.com"],  # normalized (V8), always written
    }
    assert load_org(dump_org(org)) == org


def test_bad_org_documents_of_other_shapes() -> None:
    """Not a table, missing keys, wrong scalar types, unknown keys of a team."""
    with pytest.raises(InvalidOrg) as err:
        load_org([])  # type: ignore[arg-type]
    assert err.value.problems == (Problem("org", "", "expected a table of keys and values, got []"),)
    assert problems(err) == ["org: expected a table of keys and values, got []"]
    with pytest.raises(InvalidOrg) as err:
        load_org({"teams": "eng", "default_teams": [], "default_role": "org_admin", "manual_edits": "no"})
    assert problems(err) == [
        "org: teams: expected a list, got 'eng'",
        "org: manual_edits: expected true or false, got 'no'",
    ]
    with pytest.raises(InvalidOrg) as err:
        load_org(
            {"teams": [{"id": "a", "nme": "A", "colour": "red"}], "default_teams": ["a"], "default_role": "member"}
        )
    assert problems(err) == [
        "org: teams[0].colour: unknown key (known: id, name)",
        "org: teams[0].nme: unknown key (known: id, name)",
    ]
    with pytest.raises(InvalidOrg) as err:
        load_org({})
    assert problems(err) == [
        "org: teams: required key missing",
        "org: default_teams: required key missing",
        "org: default_role: required key missing",
    ]


def test_bad_users_document_reports_every_problem_at_its_path() -> None:
    """Each user's shape, duplicates, the model's own rules and references to the org (V4-V6), at their paths;
    the model's problems are its own (one source), each once."""
    org = load_org(json.loads((EXAMPLES / "org.json").read_text()))
    with pytest.raises(InvalidUser) as err:
        load_users(
            [
                {"id": "a", "saml": "yes", "groups": ["zz"]},
                {"id": "a", "scim": True},
                5,  # type: ignore[list-item]
                {"id": "q", "manual": [{"team": "mktg", "role": "owner"}, {"team": "eng", "role": 3}]},
                {"id": "r"},
                {"id": "s", "saml": True, "groups": ["okta-everyone"]},
                {"id": "t", "manual": [{"team": "eng", "role": "member"}, {"team": "eng", "role": "team_admin"}]},
                {
                    "id": "u",
                    "scim": True,
                    "groups": ["zz", "okta-everyone", "zz"],
                    "manual": [{"team": "mktg", "role": "member"}, *[{"team": "eng", "role": "member"}] * 2],
                },
            ],
            org,
        )
    assert err.value.problems == (
        Problem("users[0]", "saml", "expected true or false, got 'yes'"),
        Problem("users[1]", "id", "appears more than once among the users", "a"),
        Problem("users[2]", "", "expected a table of keys and values, got 5"),
        Problem("users[3]", "manual[0].role", "'owner' is not one of member, team_admin, org_admin"),
        Problem("users[3]", "manual[1].role", "3 is not one of member, team_admin, org_admin"),
        Problem("users[4]", "source", "has no source: needs saml=True, scim=True or a manual grant", "r"),
        Problem("users[5]", "groups", "only a SCIM user belongs to IdP groups; set scim=True", "s"),
        Problem("users[6]", "manual", "more than one grant on team 'eng' (at most one per team)", "t"),
        Problem("users[7]", "groups[2]", "IdP group 'zz' appears more than once", "zz"),
        Problem("users[7]", "manual[2]", "grant member on team 'eng' appears more than once", "eng"),
        Problem("users[7]", "groups", "IdP group 'zz' is not synced to the org", "u"),
        Problem("users[7]", "manual", "grant on unknown team 'mktg'", "u"),
    )
    assert problems(err)[:3] == [
        "users[0]: saml: expected true or false, got 'yes'",
        "users[1]: id: appears more than once among the users",
        "users[2]: expected a table of keys and values, got 5",
    ]


def test_users_document_shapes() -> None:
    """A list, or a table with the single key 'users' (TOML's [[users]]); nothing else."""
    assert load_users({"users": [{"id": "a", "saml": True}]}) == (User("a", saml=True),)
    with pytest.raises(InvalidUser) as err:
        load_users({"people": []})
    assert err.value.problems == (
        Problem("document", "", "expected a list of users, or a table with one key, 'users'"),
    )
    with pytest.raises(InvalidUser) as err:
        load_users({"users": "a"})
    assert err.value.problems == (Problem("document", "users", "expected a list of users, got 'a'"),)
    with pytest.raises(InvalidUser) as err:
        load_user({"saml": True})
    assert err.value.problems == (Problem("user", "id", "required key missing"),)
    org = load_org(json.loads((EXAMPLES / "org.json").read_text()))
    with pytest.raises(InvalidUser) as err:
        load_user({"id": "x", "scim": True, "groups": ["okta-ghost"]}, org)
    assert problems(err) == ["user: groups: IdP group 'okta-ghost' is not synced to the org"]


def test_users_of_any_iterable_checked_or_counted_and_each_problem_once() -> None:
    """load_users takes a generator of user documents; check_users counts them, keeping none; a grant given
    twice is one problem, the document's (the model takes a set); a string is no list of users."""
    from scim_roles.io import check_users  # noqa: PLC0415

    docs = [{"id": "a", "saml": True}, {"id": "b", "scim": True}]
    assert load_users(iter(docs)) == (
        User("a", saml=True),
        User("b", scim=True),
    )
    assert (check_users(iter(docs)), check_users({"users": docs}), check_users([])) == (2, 2, 0)
    twice = {"id": "a", "manual": [{"team": "eng", "role": "member"}, {"team": "eng", "role": "member"}]}
    for load in (load_users, check_users):
        with pytest.raises(InvalidUser) as err:
            load([twice])
        assert err.value.problems == (
            Problem("users[0]", "manual[1]", "grant member on team 'eng' appears more than once", "eng"),
        )
        with pytest.raises(InvalidUser) as err:
            load("ab")  # type: ignore[arg-type]
        assert err.value.problems == (Problem("document", "", "expected a list of users, got 'ab'"),)


def test_dump_resolution_is_plain_lower_case_data() -> None:
    """A resolution dumps to JSON-ready data with lower-case enum values, its user and readable texts."""
    org = load_org(json.loads((EXAMPLES / "org.json").read_text()))
    res = resolve_memberships(
        org, User("fay", saml=True, scim=True, groups=["okta-marketing"], email="fay@example.com")
    )
    assert dump_resolution(res) == {
        "user_id": "fay",
        "memberships": [
            {
                "team": "mkt",
                "role": "member",
                "reasons": [
                    {
                        "source": "idp_group",
                        "role": "member",
                        "group": "okta-marketing",
                        "text": "IdP group 'okta-marketing' (Member)",
                    }
                ],
            }
        ],
        "overridden": [
            {
                "team": "eng",
                "source": "saml",
                "role": "member",
                "group": None,
                "cause": "scim_overrides_saml",
                "text": "SAML sign-in defaults (Member)",
                "why": "the user is managed by SCIM, which overrides the SAML defaults",
            }
        ],
        "locked": True,
        "deprovisioned": False,
        "org_admin": False,
        "unclaimed": None,
    }


def test_io_functions_are_reachable_from_the_package() -> None:
    """scim_roles.load_org is scim_roles.io.load_org, imported on first use; other names still fail."""
    import scim_roles  # noqa: PLC0415
    import scim_roles.io  # noqa: PLC0415

    assert scim_roles.load_org is scim_roles.io.load_org
    assert scim_roles.dump_resolution is scim_roles.io.dump_resolution
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        scim_roles.nope  # noqa: B018


_KEYS = st.sampled_from(["id", "saml", "scim", "groups", "deprovisioned", "manual", "role", "team", "extra"])
_SCALARS = st.one_of(
    st.sampled_from(["", "u", "v", "g1", "g2", "eng", "mkt", "member", "team_admin", "owner"]),
    st.booleans(),
    st.sampled_from([0, 1, None, 2.5]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=6,
)
_GRANTS = st.lists(
    st.fixed_dictionaries(
        {"team": st.sampled_from(["eng", "mkt", "nope", ""]), "role": st.sampled_from(["member", "team_admin", "x"])}
    ),
    max_size=2,
)
_USER_DOCS = st.one_of(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["u", "v", ""])},
        optional={
            "saml": st.one_of(st.booleans(), _SCALARS),
            "scim": st.one_of(st.booleans(), _SCALARS),
            "groups": st.one_of(st.lists(st.sampled_from(["g1", "g2", "nope", ""]), max_size=3), _VALUES),
            "deprovisioned": st.booleans(),
            "manual": st.one_of(_GRANTS, _VALUES),
        },
    ),
    st.dictionaries(_KEYS, _VALUES, max_size=4),
    _VALUES,
)


@given(docs=st.lists(_USER_DOCS, max_size=4), with_org=st.booleans())
def test_v4_fast_loading_path_agrees_with_the_detailed_one(docs: list[Any], with_org: bool) -> None:  # noqa: FBT001
    """load_users gives the same users, or the same problems, with its fast path as without it."""
    org = load_org(
        {
            "teams": [{"id": "eng"}, {"id": "mkt"}],
            "default_teams": ["eng"],
            "default_role": "member",
            "groups": [{"id": "g1"}, {"id": "g2", "teams": ["mkt"]}],
            "domains": ["example.com"],
        }
    )
    chosen = org if with_org else None

    def outcome() -> tuple[User, ...] | list[str]:
        try:
            return load_users(docs, chosen)
        except InvalidUser as err:
            return [str(p) for p in err.problems]

    fast = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scim_roles.io, "_quick_user", lambda *_: None)
        detailed = outcome()
    assert fast == detailed


@given(worlds(max_users=6))
def test_v4_a_plainly_valid_users_document_takes_the_quick_path(world: tuple[Org, tuple[User, ...]]) -> None:
    """The documents dump_user writes, as json.loads gives them back, are built by the quick path itself (the
    cattrs path is for what is not plain): the same users, with and without their org."""
    from scim_roles._resolve import index_of  # noqa: PLC0415

    org, users = world
    for user in users:
        doc = json.loads(json.dumps(dump_user(user)))
        assert scim_roles.io._quick_user(doc, index_of(org)) == user
        assert scim_roles.io._quick_user(doc, None) == user
    not_plain = [
        [],
        {"id": "a", "saml": True, "colour": 1},
        {"id": "a", "groups": "g"},
        {"id": "a", "manual": "x"},
        {"id": "a", "manual": [["eng", "member"]]},
        {"id": "a", "manual": [{"team": "eng", "role": "member", "x": 1}]},
        {"id": "a", "manual": [{"team": "eng", "role": "owner"}]},
        {"id": "a", "manual": [{"team": "", "role": "member"}]},
        {"id": "a", "manual": [{"team": 1, "role": "member"}]},
        {"id": "a", "manual": [{"team": "eng", "role": 1}]},
        {"id": "a", "manual": [{"team": "eng", "role": "member"}] * 2},
        {"id": "a", "scim": True, "groups": ["g", "g"]},
        {"id": "a"},
    ]
    for doc in not_plain:
        assert scim_roles.io._quick_user(doc, None) is None, doc
    index = index_of(org)
    for stranger in (  # V5 and V6 are the detailed path's to word
        {"id": "a", "scim": True, "groups": ["not-a-synced-group"]},
        {"id": "a", "manual": [{"team": "no-such-team", "role": "member"}]},
    ):
        assert scim_roles.io._quick_user(stranger, index) is None, stranger
