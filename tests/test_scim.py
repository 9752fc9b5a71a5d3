"""scim_roles.scim: real IdP request sequences, every refusal, atomicity, and properties."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from scim_roles import Change, Grant, InvalidUser, Problem, Role, User, diff, resolve_memberships
from scim_roles.scim import Directory, Outcome, ScimError, ScimRequest, apply_request

from helpers import ENG, IT, MKT, OPS, article_org

M, TA, OA = Role.MEMBER, Role.TEAM_ADMIN, Role.ORG_ADMIN
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def send(
    d: Directory, method: str, path: str, body: dict[str, Any] | None = None, new_id: str | None = None
) -> Outcome:
    return apply_request(d, ScimRequest(method, path, body, new_id))


def roles(d: Directory, uid: str) -> dict[str, Role]:
    return dict(resolve_memberships(d.org, d.users[uid]).roles)


def test_okta_sequence() -> None:
    """Okta: provision, push a group, add and remove members, rename, deactivate, delete, re-provision."""
    d = Directory(article_org(), [User("ann@ex.com", saml=True, manual=[Grant(OPS, TA)])])
    assert roles(d, "ann@ex.com") == {OPS: TA}  # R6: manual grants replace the defaults
    okta_user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Ann@ex.com",
        "name": {"givenName": "Ann", "familyName": "Example"},
        "emails": [{"primary": True, "value": "ann@ex.com", "type": "work"}],
        "displayName": "Ann Example",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "active": True,
    }
    out = send(d, "POST", "/Users", okta_user)
    assert out.status == 201
    d = out.directory
    assert d.users["ann@ex.com"].scim  # the SAML user, now managed by SCIM: same record, matched in any case
    assert roles(d, "ann@ex.com") == {ENG: M}  # R5, R8: SCIM defaults; the manual grant is locked out
    assert out.changes == (Change("ann@ex.com", ENG, None, M), Change("ann@ex.com", OPS, TA, None))
    out = send(d, "POST", "/Users", {**okta_user, "userName": "bob@ex.com"})
    d = out.directory
    group = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Okta Marketing", "members": []}
    out = send(d, "POST", "/Groups", group, new_id="marketing-2")
    assert (out.status, out.changes) == (201, ())
    d = out.directory
    assert d.org.group("marketing-2").teams == frozenset()  # blank until an admin maps it
    member = {"op": "add", "path": "members", "value": [{"value": "ann@ex.com", "display": "ann@ex.com"}]}
    out = send(d, "PATCH", "/Groups/leads", patch(member, {**member, "value": [{"value": "BOB@ex.com"}]}))
    assert out.status == 200
    d = out.directory
    assert d.members("leads") == {"ann@ex.com", "bob@ex.com"}
    assert roles(d, "bob@ex.com") == {ENG: TA}
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "remove", "path": 'members[value eq "bob@ex.com"]'}))
    d = out.directory
    assert out.changes == (Change("bob@ex.com", ENG, TA, M),)
    out = send(
        d, "PATCH", "/Groups/leads", patch({"op": "replace", "value": {"id": "leads", "displayName": "Leads 2"}})
    )
    assert (out.status, out.changes) == (200, ())
    d = out.directory
    out = send(d, "PATCH", "/Users/ann@ex.com", patch({"op": "replace", "value": {"active": False}}))
    d = out.directory
    assert out.changes == (Change("ann@ex.com", ENG, TA, None),)
    assert resolve_memberships(d.org, d.users["ann@ex.com"]).deprovisioned
    out = send(d, "DELETE", "/Users/bob@ex.com")
    assert (out.status, out.changes) == (204, (Change("bob@ex.com", ENG, M, None),))
    d = out.directory
    assert d.users["bob@ex.com"].deprovisioned  # kept, with no access, so the host sees the removal
    out = send(d, "POST", "/Users", okta_user)  # re-provisioned: a new user, nothing carried over
    d = out.directory
    assert d.users["ann@ex.com"] == User("ann@ex.com", scim=True)
    assert d.members("leads") == frozenset()
    d = send(d, "PATCH", "/Groups/leads", patch(member)).directory
    out = send(d, "DELETE", "/Groups/leads")
    assert (out.status, out.changes) == (204, (Change("ann@ex.com", ENG, TA, M),))  # back to the defaults (R3)
    assert "leads" not in {g.id for g in out.directory.org.groups}
    assert out.directory.users["ann@ex.com"].groups == frozenset()


def test_entra_sequence() -> None:
    """Entra ID: capitalised ops, string booleans, attribute paths, member values lists."""
    d = Directory(attrs_evolve_toggle(on=True))
    entra_user = {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@testuser.com",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
    }
    uid = "Test_User_ab6490ee@testuser.com"
    d = send(d, "POST", "/Users", entra_user).directory
    out = send(
        d,
        "PATCH",
        f"/Users/{uid}",
        patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@testuser.com"},
            {"op": "Add", "path": "name.givenName", "value": "Given"},
        ),
    )
    assert (out.status, out.changes) == (200, ())
    entra_group = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "it-admins-2",
        "meta": {"resourceType": "Group"},
    }
    out = send(out.directory, "POST", "/Groups", entra_group)
    d = out.directory
    assert "it-admins-2" in {g.id for g in d.org.groups}  # no new_id: the displayName is the id
    out = send(
        d,
        "PATCH",
        "/Groups/it-admins",
        patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}]}),
    )
    d = out.directory
    assert out.changes == (Change(uid, ENG, M, None), Change(uid, IT, None, OA))
    out = send(d, "PATCH", "/Groups/it-admins", patch({"op": "Replace", "path": "displayName", "value": "renamed"}))
    assert out.changes == ()
    out = send(
        d,
        "PATCH",
        "/Groups/it-admins",
        patch({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": uid}]}),
    )
    assert out.changes == (Change(uid, ENG, None, M), Change(uid, IT, OA, None))
    out = send(d, "PATCH", f"/Users/{uid}", patch({"op": "Replace", "path": "active", "value": "False"}))
    assert out.changes == (Change(uid, IT, OA, None),)
    assert out.directory.users[uid].deprovisioned


def attrs_evolve_toggle(*, on: bool) -> Any:
    import attrs  # noqa: PLC0415

    return attrs.evolve(article_org(), manual_edits=on)


def test_put_users_and_groups() -> None:
    """PUT /Users changes only active; PUT /Groups replaces the member list."""
    d = Directory(article_org(), [User("a", scim=True, groups=["leads"]), User("b", scim=True)])
    out = send(d, "PUT", "/Users/A", {"userName": "a", "name": {"givenName": "A"}, "active": True})
    assert (out.status, out.changes) == (200, ())
    out = send(d, "PUT", "/Groups/leads", {"displayName": "leads", "members": [{"value": "b"}]})
    assert out.status == 200
    assert out.changes == (Change("a", ENG, TA, M), Change("b", ENG, M, TA))
    assert out.directory.members("leads") == {"b"}
    out = send(d, "PUT", "/Groups/leads", {"displayName": "leads"})
    assert out.directory.members("leads") == frozenset()
    out = send(d, "PUT", "/Users/a", {"userName": "a", "active": "false"})
    assert out.directory.users["a"].deprovisioned


def test_patch_group_member_variants() -> None:
    """Members by value list, by filter, removed all at once, replaced; removing a non-member is a no-op."""
    d = Directory(article_org(), [User(u, scim=True) for u in ("a", "b", "c")])
    d = send(
        d, "PATCH", "/Groups/leads", patch({"op": "ADD", "path": "members", "value": [{"value": "a"}, {"value": "b"}]})
    ).directory
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "remove", "path": "members"}))
    assert out.directory.members("leads") == frozenset()
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "replace", "path": "members", "value": [{"value": "c"}]}))
    assert out.directory.members("leads") == {"c"}
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "remove", "path": 'members[value eq "ghost"]'}))
    assert out.changes == ()
    assert out.directory.members("leads") == {"a", "b"}
    out = send(
        d,
        "PATCH",
        "/Groups/leads",
        patch({"op": "remove", "path": "members", "value": [{"value": "ghost"}, {"value": "a"}]}),
    )
    assert out.directory.members("leads") == {"b"}
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "add", "value": {"members": [{"value": "c"}]}}))
    assert out.directory.members("leads") == {"a", "b", "c"}
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "remove", "value": {"members": [{"value": "a"}]}}))
    assert out.directory.members("leads") == {"b"}
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "replace", "value": {"members": [{"value": "c"}]}}))
    assert out.directory.members("leads") == {"c"}
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": {"value": "c"}}))
    assert out.directory.members("leads") == {"a", "b", "c"}
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "A"}]}))
    assert (out.changes, out.directory) == ((), d)  # already a member: nothing to do
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "remove", "path": "members", "value": {"value": "a"}}))
    assert out.directory.members("leads") == {"b"}  # a single member object, not in a list
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "remove", "path": "members", "value": [{"value": "c"}]}))
    assert (out.changes, out.directory) == ((), d)  # not a member: nothing to do
    out = send(d, "PATCH", "/Groups/leads", patch({"op": "replace", "path": "externalId", "value": "x"}))
    assert out.changes == ()
    out = send(d, "POST", "/Groups", {"displayName": "new", "members": None})
    assert out.directory.members("new") == frozenset()
    out = send(d, "POST", "/Groups", {"displayName": "new", "members": [{"value": "C"}]})
    assert (out.status, out.directory.members("new"), out.directory.users["c"].groups) == (
        201,
        frozenset({"c"}),
        frozenset({"new"}),
    )


REFUSALS: list[tuple[str, str, dict[str, Any] | None, int, str | None, str]] = [
    (
        "PATCH",
        "/Users/a",
        patch({"op": "add", "path": "password.value", "value": "x"}),
        400,
        "invalidValue",
        "request: status 400: password sync is not supported; passwords stay with the IdP",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "add", "path": 'password[type eq "x"]', "value": "x"}),
        400,
        "invalidValue",
        "request: status 400: password sync is not supported; passwords stay with the IdP",
    ),
    (
        "POST",
        "/Groups",
        {"displayName": "n", "members": [{"value": "nobody"}, {"value": "ghost"}]},
        404,
        None,
        "request: status 404: no such users: 'nobody', 'ghost'",
    ),
    (
        "POST",
        "/Users",
        {"userName": "z", "password": "hunter2"},
        400,
        "invalidValue",
        "request: status 400: password sync is not supported; passwords stay with the IdP",
    ),
    (
        "PUT",
        "/Users/a",
        {"userName": "a", "password": "x"},
        400,
        "invalidValue",
        "request: status 400: password sync is not supported; passwords stay with the IdP",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "value": {"password": "x"}}),
        400,
        "invalidValue",
        "request: status 400: password sync is not supported; passwords stay with the IdP",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "path": "active", "value": False}, {"op": "replace", "path": "password", "value": "x"}),
        400,
        "invalidValue",
        "request: status 400: password sync is not supported; passwords stay with the IdP",
    ),
    ("POST", "/Users", {"userName": "A"}, 409, "uniqueness", "user 'A': status 409: a SCIM user 'A' already exists"),
    (
        "POST",
        "/Users",
        {"name": {}},
        400,
        "invalidValue",
        "request: status 400: userName is required and must be a non-empty string",
    ),
    (
        "POST",
        "/Users",
        {"userName": "z", "active": "maybe"},
        400,
        "invalidValue",
        "request: status 400: active must be true or false, got 'maybe'",
    ),
    (
        "PATCH",
        "/Users/gone",
        patch({"op": "replace", "path": "active", "value": True}),
        400,
        "invalidValue",
        "user 'gone': status 400: user 'gone' was deprovisioned and cannot be reactivated; provision a new user",
    ),
    (
        "PUT",
        "/Users/gone",
        {"userName": "gone", "active": "True"},
        400,
        "invalidValue",
        "user 'gone': status 400: user 'gone' was deprovisioned and cannot be reactivated; provision a new user",
    ),
    ("DELETE", "/Users/gone", None, 404, None, "user 'gone': status 404: user 'gone' was already deprovisioned"),
    ("DELETE", "/Users/nobody", None, 404, None, "user 'nobody': status 404: no SCIM user 'nobody'"),
    (
        "PATCH",
        "/Users/saml-only",
        patch({"op": "replace", "path": "active", "value": False}),
        404,
        None,
        "user 'saml-only': status 404: no SCIM user 'saml-only'",
    ),
    (
        "PUT",
        "/Users/a",
        {"userName": "b"},
        400,
        "mutability",
        "user 'A': status 400: userName is the user's identity and cannot change from 'A'",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "path": "userName", "value": "b"}),
        400,
        "mutability",
        "user 'A': status 400: userName is the user's identity and cannot change from 'A'",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "remove", "path": "active"}),
        400,
        "mutability",
        "request: status 400: active cannot be removed; replace it with true or false",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "value": "x"}),
        400,
        "invalidSyntax",
        "request: status 400: an operation without a path needs an object value",
    ),
    (
        "PATCH",
        "/Users/a",
        {"Operations": []},
        400,
        "invalidSyntax",
        "request: status 400: a PATCH needs a non-empty 'Operations' list",
    ),
    (
        "PATCH",
        "/Users/a",
        {"Operations": [{"path": "x"}]},
        400,
        "invalidSyntax",
        "request: status 400: Operations[0] needs an 'op'",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "move"}),
        400,
        "invalidSyntax",
        "request: status 400: Operations[0]: unknown op 'move'",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "add", "path": 3}),
        400,
        "invalidPath",
        "request: status 400: Operations[0]: path must be a string",
    ),
    ("PATCH", "/Users/a", None, 400, "invalidSyntax", "request: status 400: the request needs a JSON object body"),
    (
        "GET",
        "/Users/a",
        None,
        501,
        None,
        "request: status 501: this endpoint applies changes only; reads are served from the host's own store",
    ),
    ("HEAD", "/Users/a", None, 501, None, "request: status 501: HEAD is not supported on /Users/{id}"),
    ("HEAD", "/Groups/leads", None, 501, None, "request: status 501: HEAD is not supported on /Groups/{id}"),
    ("PATCH", "/Users", None, 404, None, "request: status 404: PATCH /Users needs a user: /Users/{userName}"),
    ("POST", "/Users/a", {}, 404, None, "request: status 404: POST goes to /Users, not to a user"),
    (
        "POST",
        "/Teams",
        {"displayName": "x"},
        404,
        None,
        "request: status 404: teams are created and deleted in the app only, never by the IdP",
    ),
    (
        "DELETE",
        "/Teams/eng",
        None,
        404,
        None,
        "request: status 404: teams are created and deleted in the app only, never by the IdP",
    ),
    (
        "POST",
        "/Bulk",
        {"Operations": []},
        501,
        None,
        "request: status 501: bulk operations are not supported; send one request per change",
    ),
    ("POST", "/Schemas", {}, 404, None, "request: status 404: no such resource: /Schemas"),
    ("POST", "/Users/a/b", {}, 404, None, "request: status 404: no such resource: /Users/a/b"),
    ("POST", "/", {}, 404, None, "request: status 404: no resource at the SCIM base URL; use /Users or /Groups"),
    ("PATCH", "/Groups/nope", patch({"op": "add"}), 404, None, "group 'nope': status 404: no IdP group 'nope'"),
    ("PATCH", "/Groups", None, 404, None, "request: status 404: PATCH /Groups needs a group: /Groups/{id}"),
    ("POST", "/Groups/leads", {}, 404, None, "request: status 404: POST goes to /Groups, not to a group"),
    (
        "POST",
        "/Groups",
        {"displayName": "leads"},
        409,
        "uniqueness",
        "group 'leads': status 409: an IdP group 'leads' is already synced",
    ),
    (
        "POST",
        "/Groups",
        {},
        400,
        "invalidValue",
        "request: status 400: displayName is required and must be a non-empty string",
    ),
    (
        "POST",
        "/Groups",
        {"displayName": "n", "members": [{"value": "nobody"}]},
        404,
        None,
        "request: status 404: no such users: 'nobody'",
    ),
    (
        "POST",
        "/Groups",
        {"displayName": "n", "members": [{"value": "saml-only"}, {"value": "gone"}]},
        400,
        "invalidValue",
        "request: status 400: not provisioned SCIM users, so not members: 'saml-only', 'gone'",
    ),
    (
        "POST",
        "/Groups",
        {"displayName": "n", "members": "a"},
        400,
        "invalidValue",
        "request: status 400: members must be a list of {'value': userName}",
    ),
    (
        "POST",
        "/Groups",
        {"displayName": "n", "members": [3]},
        400,
        "invalidValue",
        "request: status 400: a member needs a string 'value', got 3",
    ),
    (
        "PATCH",
        "/Groups/leads",
        patch({"op": "remove", "path": "members", "value": [3]}),
        400,
        "invalidValue",
        "request: status 400: a member needs a string 'value', got 3",
    ),
    (
        "PATCH",
        "/Groups/leads",
        patch({"op": "remove", "path": "members", "value": [{"id": "a"}]}),
        400,
        "invalidValue",
        "request: status 400: a member needs a string 'value', got {'id': 'a'}",
    ),
    (
        "PATCH",
        "/Groups/leads",
        patch(
            {"op": "add", "path": "members", "value": [{"value": "a"}]},
            {"op": "add", "path": "members", "value": [{"value": "gone"}]},
        ),
        400,
        "invalidValue",
        "request: status 400: not provisioned SCIM users, so not members: 'gone'",
    ),
    (
        "PATCH",
        "/Groups/leads",
        patch({"op": "add", "path": 'members[value eq "a"]'}),
        400,
        "invalidPath",
        "request: status 400: only remove may target 'members[value eq \"a\"]'",
    ),
    (
        "PATCH",
        "/Groups/leads",
        patch({"op": "add", "path": "owners", "value": 1}),
        400,
        "invalidPath",
        "request: status 400: unsupported path 'owners' on a group",
    ),
    (
        "PATCH",
        "/Groups/leads",
        patch({"op": "add", "value": [1]}),
        400,
        "invalidSyntax",
        "request: status 400: an operation without a path needs an object value",
    ),
    (
        "PUT",
        "/Users/a",
        {"userName": "a", "active": "nope"},
        400,
        "invalidValue",
        "request: status 400: active must be true or false, got 'nope'",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "path": "active", "value": 1}),
        400,
        "invalidValue",
        "request: status 400: active must be true or false, got 1",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "value": {"active": "x"}}),
        400,
        "invalidValue",
        "request: status 400: active must be true or false, got 'x'",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "value": {"userName": "b"}}),
        400,
        "mutability",
        "user 'A': status 400: userName is the user's identity and cannot change from 'A'",
    ),
    (
        "PATCH",
        "/Users/a",
        patch({"op": "replace", "path": "PASSWORD", "value": "x"}),
        400,
        "invalidValue",
        "request: status 400: password sync is not supported; passwords stay with the IdP",
    ),
    (
        "POST",
        "/Users?attributes=userName",
        {"userName": "a"},
        409,
        "uniqueness",
        "user 'a': status 409: a SCIM user 'A' already exists",
    ),
    (
        "POST",
        "/Groups",
        {"displayName": ""},
        400,
        "invalidValue",
        "request: status 400: displayName is required and must be a non-empty string",
    ),
    (
        "POST",
        "/Users",
        {"userName": 5},
        400,
        "invalidValue",
        "request: status 400: userName is required and must be a non-empty string",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "scim_type", "message"), REFUSALS)
def test_refusals_change_nothing(  # noqa: PLR0917 -- one parameter per column of REFUSALS
    method: str, path: str, body: dict[str, Any] | None, status: int, scim_type: str | None, message: str
) -> None:
    """Each refused request raises ScimError with its status, scimType and message; the directory is unchanged."""
    d = Directory(
        article_org(),
        [User("A", scim=True), User("gone", scim=True, deprovisioned=True), User("saml-only", saml=True)],
    )
    before = pickle.dumps(d)
    with pytest.raises(ScimError) as err:
        send(d, method, path, body)
    assert (err.value.status, err.value.scim_type) == (status, scim_type)
    assert str(err.value) == message
    assert pickle.loads(before) == d  # noqa: S301 -- our own data


def test_group_ids_can_come_from_the_host() -> None:
    """A group id from the host must be a non-empty string."""
    with pytest.raises(ScimError) as err:
        send(Directory(article_org()), "POST", "/Groups", {"displayName": "x"}, new_id="")
    assert (err.value.status, err.value.scim_type) == (400, "invalidValue")
    assert str(err.value) == "request: status 400: the group id must be a non-empty string"


def test_scim_error_body_and_pickling() -> None:
    """to_scim() is the RFC 7644 error body; the error pickles and is a ScimRolesError."""
    err = ScimError(409, "uniqueness", "taken", subject="user 'a'")
    assert err.to_scim() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "taken",
    }
    assert "scimType" not in ScimError(404, None, "gone").to_scim()
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 -- our own data
    assert (again.status, again.scim_type, again.detail, str(again)) == (409, "uniqueness", "taken", str(err))
    assert isinstance(err, ValueError)


def test_directory_validates_and_indexes() -> None:
    """User ids may not differ only in case; users must be valid for the org; the members index is built.

    Problems come in user id order, whatever the order of the users given.
    """
    users = [User("x", scim=True, groups=["zz"]), User("ann", saml=True), User("ANN", saml=True)]
    expected = (
        Problem("user 'ann'", "id", "differs from 'ANN' only in letter case", "ann"),
        Problem("user 'x'", "groups", "IdP group 'zz' is not synced to the org", "x"),
    )
    for order in (users, users[::-1]):
        with pytest.raises(InvalidUser) as err:
            Directory(article_org(), order)
        assert err.value.problems == expected
    with pytest.raises(InvalidUser, match="IdP group 'ghost' is not synced"):
        Directory(article_org(), [User("ann", scim=True, groups=["ghost"])])
    d = Directory(
        article_org(), [User("a", scim=True, groups=["leads", "everyone"]), User("b", scim=True, groups=["leads"])]
    )
    assert d.members("leads") == {"a", "b"}
    assert d.members("nope") == frozenset()
    assert d.user("A") is d.users["a"]
    assert d.user("zed") is None
    assert pickle.loads(pickle.dumps(d)) == d  # noqa: S301 -- our own data
    assert dict(d.users) == {"a": d.users["a"], "b": d.users["b"]}


def test_attributes_without_access_are_accepted() -> None:
    """PUT without active, and PATCH without a path but without active, change nothing and succeed."""
    d = Directory(article_org(), [User("a", scim=True)])
    assert send(d, "PUT", "/Users/a", {"userName": "a", "displayName": "A"}).changes == ()
    out = send(d, "PATCH", "/Users/a", patch({"op": "replace", "value": {"displayName": "A", "userName": "A"}}))
    assert (out.status, out.changes, out.directory) == (200, (), d)


def test_post_inactive_user_is_created_without_access() -> None:
    """POST with active false provisions the user deprovisioned."""
    out = send(Directory(article_org()), "POST", "/Users", {"userName": "x", "active": False})
    assert out.directory.users["x"] == User("x", scim=True, deprovisioned=True)
    assert out.changes == ()


# -- properties


USERS = ("u1", "U2", "u3", "saml1", "man1")
GROUPS = ("leads", "marketing", "everyone", "it-admins", "newg")


@st.composite
def directories(draw: st.DrawFn) -> Directory:
    org = attrs_evolve_toggle(on=draw(st.booleans()))
    users = []
    for uid in USERS:
        if uid.startswith("saml"):
            users.append(User(uid, saml=True, manual=[Grant(MKT, TA)] if draw(st.booleans()) else ()))
        elif uid.startswith("man"):
            users.append(User(uid, manual=[Grant(OPS, M)]))
        elif draw(st.booleans()):
            groups = draw(st.lists(st.sampled_from([g.id for g in org.groups]), unique=True))
            users.append(
                User(uid, saml=draw(st.booleans()), scim=True, groups=groups, deprovisioned=draw(st.booleans()))
            )
    return Directory(org, users)


def member_values() -> st.SearchStrategy[list[dict[str, Any]]]:
    names = st.sampled_from([*USERS, "ghost", "u1".upper()])
    return st.lists(st.builds(lambda v: {"value": v}, names), max_size=3)


def requests() -> st.SearchStrategy[ScimRequest]:
    user = st.sampled_from([*USERS, "ghost", "U1"])
    group = st.sampled_from(GROUPS)
    active = st.sampled_from([True, False, "True", "False", "maybe"])
    ops = st.sampled_from(["add", "remove", "replace", "Add", "Remove", "Replace"])
    group_op = st.one_of(
        st.builds(lambda o, v: {"op": o, "path": "members", "value": v}, ops, member_values()),
        st.builds(lambda v: {"op": "remove", "path": f'members[value eq "{v}"]'}, user),
        st.builds(lambda o, v: {"op": o, "value": {"members": v}}, ops, member_values()),
        st.builds(lambda o: {"op": o, "path": "displayName", "value": "x"}, ops),
    )
    user_op = st.one_of(
        st.builds(lambda o, a: {"op": o, "path": "active", "value": a}, ops, active),
        st.builds(lambda a: {"op": "replace", "value": {"active": a}}, active),
        st.just({"op": "replace", "path": "name.givenName", "value": "G"}),
        st.just({"op": "replace", "path": "password", "value": "pw"}),
    )
    return st.one_of(
        st.builds(lambda u, a: ScimRequest("POST", "/Users", {"userName": u, "active": a}), user, active),
        st.builds(lambda u: ScimRequest("DELETE", f"/Users/{u}"), user),
        st.builds(lambda u, a: ScimRequest("PUT", f"/Users/{u}", {"userName": u, "active": a}), user, active),
        st.builds(
            lambda u, o: ScimRequest("PATCH", f"/Users/{u}", patch(*o)), user, st.lists(user_op, min_size=1, max_size=3)
        ),
        st.builds(
            lambda g, m: ScimRequest("POST", "/Groups", {"displayName": g, "members": m}), group, member_values()
        ),
        st.builds(lambda g: ScimRequest("DELETE", f"/Groups/{g}"), group),
        st.builds(lambda g, m: ScimRequest("PUT", f"/Groups/{g}", {"members": m}), group, member_values()),
        st.builds(
            lambda g, o: ScimRequest("PATCH", f"/Groups/{g}", patch(*o)),
            group,
            st.lists(group_op, min_size=1, max_size=3),
        ),
    )


def check_consistent(d: Directory) -> None:
    """The members index is exactly what the users say; every user is valid for the org."""
    again = Directory(d.org, d.users.values())
    for gid in {g.id for g in d.org.groups} | set(GROUPS):
        assert d.members(gid) == again.members(gid)
    assert d.user("U1") == again.user("u1")


@given(directories(), requests())
def test_refused_requests_leave_the_state_and_accepted_ones_report_every_change(
    d: Directory, request: ScimRequest
) -> None:
    """Refused: ScimError, state unchanged. Accepted: changes = the diffs of resolving everyone before and after."""
    snapshot = pickle.dumps(d)
    refused: ScimError | None
    try:
        out = apply_request(d, request)
    except ScimError as err:
        refused = err
    else:
        refused = None
    if refused is not None:
        assert refused.status in (400, 404, 409, 501)
        assert pickle.loads(snapshot) == d  # noqa: S301 -- our own data
        return
    assert out.status in (200, 201, 204)
    assert pickle.loads(snapshot) == d  # noqa: S301 -- the old state is untouched
    new = out.directory
    check_consistent(new)
    expected = []
    for uid in sorted(set(d.users) | set(new.users)):
        before = resolve_memberships(d.org, d.users[uid]) if uid in d.users else None
        after = resolve_memberships(new.org, new.users[uid])
        if before is None:
            expected += [Change(uid, m.team, None, m.role) for m in after.memberships]
        else:
            expected += diff(before, after)
    assert out.changes == tuple(expected)


class ScimLife(RuleBasedStateMachine):
    """An IdP sending random valid and invalid requests, one after another."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Directory(
            attrs_evolve_toggle(on=False), [User("saml1", saml=True), User("man1", manual=[Grant(OPS, M)])]
        )

    @rule(request=requests())
    def send_request(self, request: ScimRequest) -> None:
        """Every request is applied atomically, or refused with the state as it was."""
        before = self.directory
        try:
            out = apply_request(before, request)
        except ScimError:
            assert self.directory is before
            return
        for change in out.changes:
            assert change.before is not change.after
        self.directory = out.directory

    @invariant()
    def directory_is_consistent(self) -> None:
        """The members index matches the users; every user is valid for the org; no deprovisioned user has access."""
        check_consistent(self.directory)
        for user in self.directory.users.values():
            res = resolve_memberships(self.directory.org, user)
            if user.deprovisioned:
                assert res.memberships == ()


test_scim_life = ScimLife.TestCase
