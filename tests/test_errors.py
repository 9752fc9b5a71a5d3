"""Every refusal names exactly the offending subject, field, id and what is wrong (V1-V7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

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
    diff,
    invite,
    preview,
    resolve_all,
    resolve_memberships,
)

from helpers import article_org, small_org

M, TA, OA = Role.MEMBER, Role.TEAM_ADMIN, Role.ORG_ADMIN
T = [Team("a"), Team("b")]
org = small_org
A: Any = "a"  # wrongly typed values, passed on purpose


def bad(value: object) -> Any:
    """A wrongly typed value, passed on purpose."""
    return value


CASES: list[tuple[str, Callable[[], object], type[ScimRolesError], list[Problem]]] = [
    ("team id", lambda: Team(""), InvalidOrg, [Problem("team", "id", "must be a non-empty string, got ''")]),
    (
        "team name",
        lambda: Team("a", bad(None)),
        InvalidOrg,
        [Problem("team 'a'", "name", "must be a string, got None", "a")],
    ),
    ("group id", lambda: IdpGroup(bad(5)), InvalidOrg, [Problem("group", "id", "must be a non-empty string, got 5")]),
    (
        "group teams",
        lambda: IdpGroup("g", A),
        InvalidOrg,
        [Problem("group 'g'", "teams", "must be a collection of team ids, got 'a'", "g")],
    ),
    (
        "group team ids",
        lambda: IdpGroup("g", ["", bad(1)]),
        InvalidOrg,
        [
            Problem("group 'g'", "teams", "team ids must be non-empty strings, got ''", "g"),
            Problem("group 'g'", "teams", "team ids must be non-empty strings, got 1", "g"),
        ],
    ),
    (
        "group role",
        lambda: IdpGroup("g", role=A),
        InvalidOrg,
        [Problem("group 'g'", "role", "must be a Role, got 'a'", "g")],
    ),
    (
        "org types",
        lambda: Org(teams=A, default_teams=[bad([1])], default_role=A, groups=A, manual_edits=A),
        InvalidOrg,
        [
            Problem("org", "teams", "must be a collection of Team, got 'a'"),
            Problem("org", "groups", "must be a collection of IdpGroup, got 'a'"),
            Problem("org", "default_teams", "must be a collection of team ids, got ([1],)"),
            Problem("org", "default_role", "must be a Role, got 'a'"),
            Problem("org", "manual_edits", "must be True or False, got 'a'"),
        ],
    ),
    (
        "org ids and references",
        lambda: org(
            teams=[*T, Team("a", "again")],
            groups=[IdpGroup("g", ["zz"]), IdpGroup("g")],
            default_teams=["a", "yy"],
            default_role=OA,
        ),
        InvalidOrg,
        [
            Problem("team 'a'", "id", "is not unique in the org", "a"),
            Problem("group 'g'", "id", "is not unique in the org", "g"),
            Problem("group 'g'", "teams", "unknown team 'zz': map the group to teams the org has", "g"),
            Problem("org", "default_teams", "unknown team 'yy'", "yy"),
            Problem("org", "default_role", "must be MEMBER or TEAM_ADMIN, got ORG_ADMIN"),
        ],
    ),
    (
        "org no default",
        lambda: org(default_teams=[]),
        InvalidOrg,
        [Problem("org", "default_teams", "must name at least one team")],
    ),
    ("grant team", lambda: Grant("", M), InvalidUser, [Problem("grant", "team", "must be a non-empty string, got ''")]),
    (
        "grant role",
        lambda: Grant("a", A),
        InvalidUser,
        [Problem("grant on team 'a'", "role", "must be a Role, got 'a'")],
    ),
    (
        "user fields",
        lambda: User(bad(7), saml=A, scim=A, groups=A, deprovisioned=A, manual=A),
        InvalidUser,
        [
            Problem("user", "id", "must be a non-empty string, got 7"),
            Problem("user", "saml", "must be True or False, got 'a'"),
            Problem("user", "scim", "must be True or False, got 'a'"),
            Problem("user", "deprovisioned", "must be True or False, got 'a'"),
            Problem("user", "groups", "must be a collection of group ids, got 'a'"),
            Problem("user", "manual", "must be a collection of Grant, got 'a'"),
            Problem("user", "groups", "only a SCIM user belongs to IdP groups; set scim=True"),
        ],
    ),
    (
        "user flags",
        lambda: User("u", saml=bad(1), scim=True, groups=bad(3), manual=bad(None), email="u@example.com"),
        InvalidUser,
        [
            Problem("user 'u'", "saml", "must be True or False, got 1", "u"),
            Problem("user 'u'", "groups", "must be a collection of group ids, got 3", "u"),
            Problem("user 'u'", "manual", "must be a collection of Grant, got None", "u"),
        ],
    ),
    (
        "group with a bad id",
        lambda: IdpGroup(bad(5), bad("x")),
        InvalidOrg,
        [
            Problem("group", "id", "must be a non-empty string, got 5"),
            Problem("group", "teams", "must be a collection of team ids, got 'x'"),
        ],
    ),
    (
        "group teams and role",
        lambda: IdpGroup("g", bad(3), bad("x")),
        InvalidOrg,
        [
            Problem("group 'g'", "teams", "must be a collection of team ids, got 3", "g"),
            Problem("group 'g'", "role", "must be a Role, got 'x'", "g"),
        ],
    ),
    (
        "user sources",
        lambda: User("u", groups=["g"], deprovisioned=True, manual=[Grant("a", M), Grant("a", TA)]),
        InvalidUser,
        [
            Problem("user 'u'", "manual", "more than one grant on team 'a' (at most one per team)", "u"),
            Problem("user 'u'", "groups", "only a SCIM user belongs to IdP groups; set scim=True", "u"),
            Problem("user 'u'", "deprovisioned", "only a SCIM user can be deprovisioned; set scim=True", "u"),
        ],
    ),
    (
        "user no source",
        lambda: User("u"),
        InvalidUser,
        [Problem("user 'u'", "source", "has no source: needs saml=True, scim=True or a manual grant", "u")],
    ),
    (
        "user against org",
        lambda: resolve_memberships(
            article_org(), User("u", scim=True, groups=["zz", "leads"], manual=[Grant("q", M)], email="u@example.com")
        ),
        InvalidUser,
        [
            Problem("user 'u'", "groups", "IdP group 'zz' is not synced to the org", "u"),
            Problem("user 'u'", "manual", "grant on unknown team 'q'", "u"),
        ],
    ),
    (
        "resolve org type",
        lambda: resolve_memberships(A, A),
        InvalidOrg,
        [Problem("resolve_memberships", "org", "must be an Org, got str 'a'")],
    ),
    (
        "resolve user type",
        lambda: resolve_memberships(article_org(), A),
        InvalidUser,
        [Problem("resolve_memberships", "user", "must be a User, got str 'a'")],
    ),
    (
        "invite",
        lambda: invite([], A),
        InvalidUser,
        [
            Problem("invite", "teams", "must name at least one team"),
            Problem("invite", "role", "must be a Role, got 'a'"),
        ],
    ),
    (
        "invite role",
        lambda: invite(["a", ""], OA),
        InvalidUser,
        [
            Problem("invite", "teams", "team ids must be non-empty strings, got ''"),
            Problem("invite", "role", "must be MEMBER or TEAM_ADMIN, got ORG_ADMIN"),
        ],
    ),
    (
        "resolve_all keeps looking after a problem",
        lambda: resolve_all(
            article_org(),
            [
                A,
                User("x", scim=True, groups=["zz"], email="x@example.com"),
                User("x", saml=True, email="x@example.com"),
            ],
        ),
        InvalidUser,
        [
            Problem("resolve_all", "user", "must be a User, got str 'a'"),
            Problem("user 'x'", "groups", "IdP group 'zz' is not synced to the org", "x"),
            Problem("user 'x'", "id", "appears more than once among the users", "x"),
        ],
    ),
    (
        "preview users",
        lambda: preview(
            article_org(),
            article_org(),
            [A, User("x", saml=True, email="x@example.com"), User("x", saml=True, email="x@example.com")],
        ),
        InvalidUser,
        [
            Problem("preview", "user", "must be a User, got str 'a'"),
            Problem("user 'x'", "id", "appears more than once among the users", "x"),
        ],
    ),
    (
        "preview ids",
        lambda: preview(
            article_org(),
            article_org(),
            [
                User("x", saml=True, email="x@example.com"),
                User("x", saml=True, email="x@example.com"),
                User("y", saml=True, email="y@example.com"),
                User("y", saml=True, email="y@example.com"),
            ],
        ),
        InvalidUser,
        [
            Problem("user 'x'", "id", "appears more than once among the users", "x"),
            Problem("user 'y'", "id", "appears more than once among the users", "y"),
        ],
    ),
    (
        "preview max_share",
        lambda: preview(article_org(), article_org(), [], max_share=A),
        InvalidArgument,
        [Problem("preview", "max_share", "must be a number from 0 to 1, got 'a'")],
    ),
    (
        "diff of two users",
        lambda: diff(
            resolve_memberships(article_org(), User("a", saml=True, email="a@example.com")),
            resolve_memberships(article_org(), User("b", saml=True, email="b@example.com")),
        ),
        InvalidUser,
        [Problem("user 'b'", "user_id", "cannot diff against the resolution of another user, 'a'", "b")],
    ),
]


@pytest.mark.parametrize(("name", "call", "error", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_refusal_names_subject_field_id_and_detail(
    name: str, call: Callable[[], object], error: type[ScimRolesError], expected: list[Problem]
) -> None:
    """The error class and every problem are exactly as specified; its message lists them all."""
    del name  # in the test id only
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error
    assert list(info.value.problems) == expected
    assert str(info.value) == "; ".join(str(p) for p in expected)
    assert info.value.id == expected[0].id
    assert info.value.field == expected[0].field


def test_v1_an_orgs_edits_refuse_what_they_cannot_apply_whole() -> None:
    """with_group/with_team of something else, without_group/without_team of an unknown id: one problem each,
    naming the edit or the id."""
    org = article_org()
    edits: list[tuple[Callable[[], object], Problem]] = [
        (lambda: org.with_group("g"), Problem("with_group", "group", "must be an IdpGroup, got 'g'")),  # type: ignore[arg-type]
        (lambda: org.with_team("t"), Problem("with_team", "team", "must be a Team, got 't'")),  # type: ignore[arg-type]
        (lambda: org.without_group("nope"), Problem("group 'nope'", "id", "is not synced to the org", "nope")),
        (lambda: org.without_team("nope"), Problem("team 'nope'", "id", "is not a team of the org", "nope")),
    ]
    for edit, problem in edits:
        with pytest.raises(InvalidOrg) as refused:
            edit()
        assert refused.value.problems == (problem,)


def test_got_cuts_a_long_value_at_sixty_characters() -> None:
    """A value's repr of up to 60 characters is shown whole; a longer one is cut to 57 and '...'."""
    from scim_roles._errors import got  # noqa: PLC0415

    assert got("x" * 58) == f"got str {'x' * 58!r}"  # 60 characters with its quotes
    assert got("x" * 59) == f"got str {('x' * 59)!r}"[:65] + "..."
    assert len(got("x" * 59).removeprefix("got str ")) == 60
