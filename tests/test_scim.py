"""scim_roles.scim: the SCIM semantics S1-S12, one rule at a time."""

from __future__ import annotations

import json
import pickle
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_roles import Change, Grant, IdpGroup, InvalidArgument, InvalidUser, Org, Problem, Resolution, Role, Team, User
from scim_roles.scim import Directory, ScimRequest, ScimResponse, handle, user_name_key

from helpers import ENG, IT, MKT, OPS, article_org
from scim_helpers import CORE_USER, Host, described, patch

M, TA, OA = Role.MEMBER, Role.TEAM_ADMIN, Role.ORG_ADMIN
USER_URN = CORE_USER + ":"


def host(*users: User, manual_edits: bool = False, **names: str) -> Host:
    return Host(Directory(article_org(manual_edits=manual_edits), users, user_names=names))


def error(out: Any) -> tuple[int, str | None]:
    data = out.response.data
    assert data["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert data["status"] == str(out.response.status)
    return out.response.status, data.get("scimType")


# -- S1 identity


def test_s1_the_host_mints_ids_and_the_idp_never_chooses_them() -> None:
    """POST gives the user the host's new_id, whatever id the body carries; userName is separate."""
    h = host()
    out = h.create("ann@example.com", "u-1", id="chosen-by-idp")
    assert out.response.data["id"] == "u-1"
    assert out.response.header("Location") == "https://app.example.com/scim/v2/Users/u-1"
    assert h.directory.user_name("u-1") == "ann@example.com"
    assert h.directory.user("ANN@example.com") == User("u-1", scim=True, email="ann@example.com")


def test_s1_a_creating_request_without_an_id_is_the_hosts_mistake() -> None:
    """No new_id (or an empty one), or one in use, raises InvalidArgument: the host must mint a fresh one."""
    h = host(User("taken", saml=True, email="taken@example.com"))
    for path, body in (("/Users", {"userName": "x"}), ("/Groups", {"displayName": "x"})):
        for new_id in (None, "", 7):
            with pytest.raises(InvalidArgument) as err:
                handle(h.directory, ScimRequest("POST", path, body, new_id=new_id))  # type: ignore[arg-type]
            assert err.value.problems == (
                Problem(
                    "ScimRequest",
                    "new_id",
                    f"this request creates a resource: the host mints its id, got {new_id!r}",
                ),
            )
    for path, body, taken in (("/Users", {"userName": "x"}, "taken"), ("/Groups", {"displayName": "x"}, "leads")):
        with pytest.raises(InvalidArgument) as err:
            handle(h.directory, ScimRequest("POST", path, body, new_id=taken))
        assert err.value.problems == (
            Problem("ScimRequest", "new_id", f"{taken!r} is in use already; ids are never reused (S1)", taken),
        )


def test_s1_ids_with_reserved_characters_are_addressed_percent_encoded() -> None:
    """An id with '/' or '?' is reached only by its percent-encoded path; a query never names a user."""
    h = host()
    h.create("ann", "a/b?c")
    assert h.last is not None
    assert h.last.response.header("Location") == "https://app.example.com/scim/v2/Users/a%2Fb%3Fc"
    assert h.send("GET", "/Users/a%2Fb%3Fc").response.data["id"] == "a/b?c"
    assert h.send("DELETE", "/Users/a/b?c").response.status == 404
    h.create("ben", "ben")
    assert h.send("DELETE", "/Users/ben?x").response.status == 204
    assert "ben" not in h.directory.users


def test_s1_a_returning_user_gets_a_new_id() -> None:
    """After a delete, the same userName provisioned again is a new resource under the new id."""
    h = host()
    h.create("ann", "u-1")
    h.send("DELETE", "/Users/u-1")
    out = h.create("ann", "u-2")
    assert out.response.data["id"] == "u-2"
    assert set(h.directory.users) == {"u-2"}


def test_s1_request_parts_of_the_host_are_checked() -> None:
    """A wrong directory, request, clock or base URL is the host's error: InvalidArgument."""
    d = Directory(article_org())
    with pytest.raises(InvalidArgument, match="directory"):
        handle("d", ScimRequest("GET", "/Users"))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="request"):
        handle(d, "GET /Users")  # type: ignore[arg-type]
    naive = datetime(2026, 1, 1)  # noqa: DTZ001
    with pytest.raises(InvalidArgument) as err:
        handle(d, ScimRequest("POST", "/Users", {"userName": "a"}, new_id="a", now=naive))
    assert err.value.problems == (Problem("ScimRequest", "now", f"must be an aware datetime, got {naive!r}"),)
    with pytest.raises(InvalidArgument, match="method"):
        handle(d, ScimRequest(None, "/Users"))  # type: ignore[arg-type]


# -- S2 userName comparison


@pytest.mark.parametrize(
    ("held", "sent", "same"),
    [
        ("MASSE", "masse", True),
        ("MASSE", "maße", False),
        ("maße", "MASSE", False),
        ("josé", unicodedata.normalize("NFD", "JOSÉ"), True),
        (unicodedata.normalize("NFD", "josé"), "JOSÉ", True),
        ("ann", "ＡＮＮ", True),
        ("Ann Lee", "ann lee", True),
        ("i", "İ", False),
    ],
)
def test_s2_user_names_compare_by_rfc8265(held: str, sent: str, same: bool) -> None:  # noqa: FBT001
    """Case, width and NFC/NFD fold together; what the profile keeps apart stays apart."""
    h = host(User("saml", saml=True, manual=[Grant(OPS, TA)], email="saml@example.com"), saml=held)
    try:
        user_name_key(sent)
    except InvalidUser:
        assert not same
        return
    out = h.send("POST", "/Users", {"userName": sent}, new_id="new")
    assert out.response.status == 201
    assert out.response.data["id"] == ("saml" if same else "new")  # S3: the same user is linked
    out = h.send("POST", "/Users", {"userName": held}, new_id="third")
    assert out.response.status == (409 if same else 201)


@pytest.mark.parametrize("name", ["oﬃce", "ſam", "", " ann", "ann  lee", "a\u0000b", "a\tb", "\u200bann"])
def test_s2_names_the_profile_refuses_are_invalid_values(name: str) -> None:
    """Compatibility characters, controls, empty parts: 400 invalidValue, nothing created."""
    h = host(User("s", saml=True, email="s@example.com"), s="office")
    out = h.send("POST", "/Users", {"userName": name}, new_id="new")
    assert error(out) == (400, "invalidValue")
    assert set(out.directory.users) == {"s"}
    h.create("ok", "ok")
    out = h.send("PATCH", "/Users/ok", patch({"op": "replace", "path": "userName", "value": name}))
    assert error(out) == (400, "invalidValue")
    assert h.directory.user_name("ok") == "ok"


def test_s2_a_directory_refuses_two_users_with_one_user_name() -> None:
    """Two users whose userNames compare equal cannot be in one directory: InvalidUser names both."""
    with pytest.raises(InvalidUser, match=r"user 'b': userName: 'ANN' is the userName of 'a' too"):
        Directory(
            article_org(),
            [User("a", saml=True, email="a@example.com"), User("b", scim=True, email="b@example.com")],
            user_names={"a": "ann", "b": "ANN"},
        )
    with pytest.raises(InvalidUser, match=r"user 'b': userName: not a valid user name"):
        Directory(article_org(), [User("b", scim=True, email="b@example.com")], user_names={"b": "oﬃce"})
    d = Directory(
        article_org(),
        [User("a", saml=True, email="a@example.com"), User("b", scim=True, email="b@example.com")],
        user_names={"a": "maße", "b": "MASSE"},
    )
    assert d.user("masse") == User("b", scim=True, email="b@example.com")
    assert d.user("MASSE") is not d.user("MAßE")
    assert d.user("oﬃce") is None


def test_s2_a_user_name_that_is_no_string_is_named() -> None:
    """user_name_key of anything but a string: InvalidUser naming the value; other attributes compare as the
    models compare them, whatever the userName profile thinks of their value."""
    with pytest.raises(InvalidUser) as err:
        user_name_key(3)  # type: ignore[arg-type]
    assert err.value.problems == (Problem("userName", "userName", "must be a string, got 3"),)
    h = host()
    h.create("ann", "u1", displayName="oﬃce")
    assert h.send("GET", "/Users", query='filter=displayName eq "oﬃce"').response.data["totalResults"] == 1


def test_s2_the_key_takes_a_fast_path_for_ascii_with_the_same_result() -> None:
    """ASCII names skip the profile; the key is the profile's own."""
    from precis_i18n import get_profile  # noqa: PLC0415

    profile = get_profile("UsernameCaseMapped")
    for name in ("Ann@Example.COM", "a.b-c_d+e", "~!#$%^&*()", "Ann Lee"):
        assert user_name_key(name) == " ".join(profile.enforce(p) for p in name.split(" "))
    with pytest.raises(InvalidUser, match="must be a string"):
        user_name_key(3)  # type: ignore[arg-type]


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=12))
def test_s2_the_ascii_fast_path_gives_the_profiles_key_or_its_refusal(name: str) -> None:
    """Every ASCII name, spaces and controls included: the same key as the profile, or refused as it refuses."""
    from precis_i18n import get_profile  # noqa: PLC0415

    profile = get_profile("UsernameCaseMapped")
    try:
        expected: str | None = " ".join(profile.enforce(p) for p in name.split(" "))
    except UnicodeError:
        expected = None
    if expected is None:
        with pytest.raises(InvalidUser):
            user_name_key(name)
    else:
        assert user_name_key(name) == expected


# -- S3 linking


def test_s3_post_links_a_saml_or_manual_user_and_refuses_a_scim_one() -> None:
    """The SAML user becomes SCIM-managed under its id (R5, R8); a SCIM holder, active or not, is a 409."""
    h = host(
        User("s", saml=True, manual=[Grant(OPS, TA)], email="s@example.com"),
        User("m", manual=[Grant(MKT, M)]),
        s="sam@example.com",
        m="mia@example.com",
    )
    out = h.send("POST", "/Users", {"userName": "SAM@example.com"}, new_id="unused")
    assert (out.response.status, out.response.data["id"]) == (201, "s")
    assert h.directory.users["s"] == User("s", saml=True, scim=True, manual=[Grant(OPS, TA)], email="SAM@example.com")
    assert out.touched["s"] is not None
    assert out.touched["s"].locked
    assert described(out) == ["s: added to eng as Member", "s: removed from ops (was Team Admin)"]
    assert h.send("POST", "/Users", {"userName": "mia@example.com"}, new_id="x").response.data["id"] == "m"
    assert error(h.send("POST", "/Users", {"userName": "sam@EXAMPLE.com"}, new_id="y")) == (409, "uniqueness")
    h.send("PATCH", "/Users/m", patch({"op": "replace", "path": "active", "value": False}))
    assert error(h.send("POST", "/Users", {"userName": "mia@example.com"}, new_id="z")) == (409, "uniqueness")


def test_s3_a_linked_user_posted_inactive_keeps_nothing() -> None:
    """POST with active false links and deprovisions at once: no access, no manual grants kept (R10)."""
    h = host(User("s", saml=True, manual=[Grant(OPS, TA)], email="s@example.com"), s="sam")
    out = h.send("POST", "/Users", {"userName": "sam", "active": False}, new_id="x")
    assert out.response.status == 201
    assert h.directory.users["s"] == User("s", scim=True, deprovisioned=True, email="sam@example.com")
    assert described(out) == ["s: removed from ops (was Team Admin)"]


# -- S4 rename


@pytest.mark.parametrize(
    "request_body",
    [
        ("PUT", {"userName": "ann.lee@example.com", "active": True}),
        ("PATCH", patch({"op": "replace", "path": "userName", "value": "ann.lee@example.com"})),
        ("PATCH", patch({"op": "Replace", "path": USER_URN + "userName", "value": "ann.lee@example.com"})),
        ("PATCH", patch({"op": "replace", "value": {"UserName": "ann.lee@example.com"}})),
    ],
)
def test_s4_a_rename_keeps_the_id_and_the_access(request_body: tuple[str, dict[str, Any]]) -> None:
    """The new userName is applied; the old one is free again; access is unchanged."""
    h = host()
    h.create("ann@example.com", "u1")
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    method, body = request_body
    out = h.send(method, "/Users/u1", body)
    assert (out.response.status, out.changes) == (200, ())
    assert h.directory.user_name("u1") == "ann.lee@example.com"
    assert h.roles("u1") == {ENG: "TEAM_ADMIN"}
    assert h.directory.user("ann@example.com") is None
    assert h.create("ann@example.com", "u2").response.data["id"] == "u2"


def test_s4_a_rename_to_a_taken_name_is_a_conflict() -> None:
    """Taken by another user (SCIM or not, in any spelling): 409 uniqueness; a case change of one's own is fine."""
    h = host(User("s", saml=True, email="s@example.com"), s="sam")
    h.create("ann", "u1")
    assert error(h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "userName", "value": "SAM"}))) == (
        409,
        "uniqueness",
    )
    assert error(h.send("PUT", "/Users/u1", {"userName": "Sam"})) == (409, "uniqueness")
    assert h.send("PUT", "/Users/u1", {"userName": "ANN"}).response.status == 200
    assert h.directory.user_name("u1") == "ANN"


def test_s4_user_name_cannot_be_removed() -> None:
    """userName is required: removing it is refused."""
    h = host()
    h.create("ann", "u1")
    out = h.send("PATCH", "/Users/u1", patch({"op": "remove", "path": "userName"}))
    assert out.response.status == 400
    assert h.directory.user_name("u1") == "ann"


# -- S5 deactivation


URN_ACTIVE = USER_URN + "active"
DEACTIVATIONS = [
    ("PATCH", patch({"op": "replace", "path": "active", "value": False})),
    ("PATCH", patch({"op": "Replace", "path": "Active", "value": "False"})),
    ("PATCH", patch({"op": "replace", "path": "ACTIVE", "value": "false"})),
    ("PATCH", patch({"op": "replace", "path": URN_ACTIVE, "value": False})),
    ("PATCH", patch({"op": "replace", "path": URN_ACTIVE.upper(), "value": "FALSE"})),
    ("PATCH", patch({"op": "add", "path": "active", "value": False})),
    ("PATCH", patch({"op": "replace", "value": {"active": False}})),
    ("PATCH", patch({"op": "replace", "value": {"ACTIVE": "False"}})),
    ("PATCH", patch({"op": "Add", "value": {URN_ACTIVE: "false"}})),
    ("PATCH", patch({"op": "replace", "value": {"name.givenName": "A", "Active": False}})),
    (
        "PATCH",
        patch(
            {"op": "replace", "path": "name.givenName", "value": "A"},
            {"op": "replace", "path": "active", "value": False},
        ),
    ),
    ("PUT", {"userName": "ann", "active": False}),
    ("PUT", {"userName": "ann", "Active": False}),
    ("PUT", {"userName": "ann", "ACTIVE": "False"}),
    ("PUT", {"userName": "ann", URN_ACTIVE: False}),
    (
        "PUT",
        {
            "schemas": [CORE_USER],
            "UserName": "ann",
            "Emails": [{"value": "ann@example.com"}],
            URN_ACTIVE.upper(): "false",
        },
    ),
]


@pytest.mark.parametrize(("method", "body"), DEACTIVATIONS)
def test_s5_deactivation_in_every_spelling_deprovisions(method: str, body: dict[str, Any]) -> None:
    """active false in any form the RFC allows: 200, the user has nothing left (R10), reads say active false."""
    h = host(manual_edits=True)
    h.create("ann", "u1")
    h.send("PATCH", "/Groups/it-admins", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    h.directory = Directory(
        h.directory.org,
        [
            *[u for u in h.directory.users.values() if u.id != "u1"],
            h.directory.users["u1"].__class__(
                "u1", saml=True, scim=True, groups=["it-admins"], manual=[Grant(OPS, TA)], email="ann@example.com"
            ),
        ],
        resources={"u1": h.directory.resource("u1") or {}},
        groups={g: h.directory.group_resource(g) or {} for g in ("it-admins",)},
    )
    assert h.roles("u1") == {IT: "ORG_ADMIN", OPS: "TEAM_ADMIN"}
    out = h.send(method, "/Users/u1", body)
    assert out.response.status == 200, out.response.data
    assert out.response.data["active"] is False
    res = out.touched["u1"]
    assert res is not None
    assert (res.memberships, res.is_org_admin, res.deprovisioned) == ((), False, True)
    assert h.directory.users["u1"] == User(
        "u1", scim=True, groups=["it-admins"], deprovisioned=True, email="ann@example.com"
    )
    assert h.send("GET", "/Users/u1").response.data["active"] is False


@pytest.mark.parametrize("value", ["no", 0, 1, "off", "0", "", None, [], {"value": False}])
def test_s5_active_takes_only_booleans(value: object) -> None:
    """ "no", 0, "off" and the like are refused, never read as a boolean; nothing applied."""
    h = host()
    h.create("ann", "u1")
    before = h.directory
    for method, body in (
        ("PATCH", patch({"op": "replace", "path": "active", "value": value})),
        ("PATCH", patch({"op": "replace", "value": {"Active": value}})),
        ("PUT", {"userName": "ann", "active": value}),
    ):
        if value is None and method != "PATCH":
            continue  # a PUT without active: the state stays (see the docs)
        out = h.send(method, "/Users/u1", body)
        if value is None:
            assert out.response.status in (200, 400)
        else:
            assert out.response.status == 400, (method, body)
        assert h.directory.users == before.users


def test_s5_a_put_without_active_keeps_the_state() -> None:
    """A PUT that leaves out active, or a PATCH removing it, neither reactivates nor deactivates."""
    h = host()
    h.create("ann", "u1")
    out = h.send("PATCH", "/Users/u1", patch({"op": "remove", "path": "active"}))
    assert (out.response.status, "active" in out.response.data, out.changes) == (200, False, ())
    assert not h.directory.users["u1"].deprovisioned
    h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "active", "value": False}))
    out = h.send("PUT", "/Users/u1", {"userName": "ann", "displayName": "Ann"})
    assert (out.response.status, out.response.data["active"], out.changes) == (200, False, ())
    assert h.directory.users["u1"].deprovisioned
    out = h.send("PATCH", "/Users/u1", patch({"op": "remove", "path": "active"}))
    assert (out.response.status, out.response.data["active"], out.changes) == (200, False, ())
    assert h.directory.users["u1"].deprovisioned


# -- S6 reactivation


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", patch({"op": "replace", "path": "active", "value": True})),
        ("PATCH", patch({"op": "Replace", "path": URN_ACTIVE, "value": "True"})),
        ("PATCH", patch({"op": "replace", "value": {"active": "TRUE"}})),
        ("PUT", {"userName": "ann", "active": True}),
    ],
)
def test_s6_reactivation_is_a_new_provisioning(method: str, body: dict[str, Any]) -> None:
    """Back under the same id with the IdP's groups; manual grants and SAML from before do not come back."""
    h = host(User("s", saml=True, manual=[Grant(OPS, TA)], email="s@example.com"), manual_edits=True, s="ann")
    h.create("ann", "unused")
    h.send("PATCH", "/Groups/marketing", patch({"op": "add", "path": "members", "value": [{"value": "s"}]}))
    assert h.roles("s") == {MKT: "MEMBER", OPS: "TEAM_ADMIN"}
    h.send("PATCH", "/Users/s", patch({"op": "replace", "path": "active", "value": False}))
    out = h.send(method, "/Users/s", body)
    assert out.response.status == 200
    assert h.directory.users["s"] == User("s", scim=True, groups=["marketing"], email="ann@example.com")
    assert h.roles("s") == {MKT: "MEMBER"}
    assert described(out) == ["s: added to mkt as Member"]


# -- S7 delete


def test_s7_delete_removes_the_user_everywhere() -> None:
    """204; gone from users, groups, reads; every membership removed; touched says None."""
    h = host()
    h.create("ann", "u1")
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    out = h.send("DELETE", "/Users/u1")
    assert (out.response.status, out.response.body, out.response.headers) == (204, b"", ())
    assert out.changes == (Change("u1", ENG, TA, None),)
    assert dict(out.touched) == {"u1": None}
    assert "u1" not in h.directory.users
    assert dict(h.directory.members("leads")) == {}
    assert h.directory.user("ann") is None
    assert h.directory.resource("u1") is None
    assert h.send("GET", "/Users/u1").response.status == 404
    assert h.send("GET", "/Users").response.data["totalResults"] == 0
    assert "members" not in h.send("GET", "/Groups/leads").response.data


def test_s7_delete_after_deactivation_and_twice() -> None:
    """Entra disables, then deletes: 204; the second DELETE and a PATCH after it are 404."""
    h = host()
    h.create("ann", "u1")
    h.send("PATCH", "/Users/u1", patch({"op": "Replace", "path": "active", "value": "False"}))
    assert h.send("DELETE", "/Users/u1").response.status == 204
    assert h.send("DELETE", "/Users/u1").response.status == 404
    assert (
        h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "active", "value": True})).response.status == 404
    )
    assert h.send("PUT", "/Users/u1", {"userName": "ann"}).response.status == 404


def test_s7_non_scim_users_are_not_scim_resources() -> None:
    """A SAML or manual user is 404 to every SCIM request by id, and absent from lists."""
    h = host(User("s", saml=True, email="s@example.com"), User("m", manual=[Grant(OPS, M)]))
    for uid in ("s", "m", "ghost"):
        for method, body in (("GET", None), ("DELETE", None), ("PUT", {"userName": uid}), ("PATCH", patch())):
            assert h.send(method, f"/Users/{uid}", body).response.status == 404
    assert h.send("GET", "/Users").response.data["totalResults"] == 0
    assert set(h.directory.users) == {"s", "m"}


# -- S8 password


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/Users", {"userName": "bob", "password": "hunter2"}),
        ("POST", "/Users", {"userName": "bob", "PASSWORD": "hunter2"}),
        ("POST", "/Users", {"userName": "bob", USER_URN + "password": "hunter2"}),
        ("PUT", "/Users/u1", {"userName": "ann", "Password": "hunter2"}),
        ("PUT", "/Users/u1", {"userName": "ann", (USER_URN + "password").upper(): "hunter2"}),
        ("PATCH", "/Users/u1", patch({"op": "replace", "path": "password", "value": "hunter2"})),
        ("PATCH", "/Users/u1", patch({"op": "add", "path": "PassWord", "value": "hunter2"})),
        ("PATCH", "/Users/u1", patch({"op": "replace", "path": USER_URN + "password", "value": "hunter2"})),
        ("PATCH", "/Users/u1", patch({"op": "replace", "value": {"password": "hunter2"}})),
        ("PATCH", "/Users/u1", patch({"op": "replace", "value": {USER_URN + "Password": "hunter2"}})),
        ("PATCH", "/Users/u1", patch({"op": "remove", "path": "password"})),
        (
            "PATCH",
            "/Users/u1",
            patch(
                {"op": "replace", "path": "active", "value": False}, {"op": "replace", "path": "password", "value": "x"}
            ),
        ),
    ],
)
def test_s8_a_password_in_any_form_is_refused_whole(method: str, path: str, body: dict[str, Any]) -> None:
    """400 invalidValue, and nothing of the request applied (a deactivation beside it included)."""
    h = host()
    h.create("ann", "u1")
    before = h.directory
    out = h.send(method, path, body, new_id="bob")
    assert error(out) == (400, "invalidValue")
    assert "password" in out.response.data["detail"]
    assert out.directory is before
    assert (out.changes, dict(out.touched)) == ((), {})


def test_s8_password_is_not_in_the_published_schema() -> None:
    """A client must not be told it may send a password."""
    h = host()
    schema = h.send("GET", "/Schemas/" + CORE_USER).response.data
    assert "password" not in {a["name"] for a in schema["attributes"]}
    config = h.send("GET", "/ServiceProviderConfig").response.data
    assert config["changePassword"] == {"supported": False}


# -- S9 groups


def test_s9_a_pushed_group_gets_the_hosts_id_and_a_blank_mapping() -> None:
    """POST /Groups: the host's id, blank mapping (R2: members get the defaults), members listed."""
    h = host()
    h.create("ann", "u1")
    h.send("PATCH", "/Groups/marketing", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    out = h.send(
        "POST", "/Groups", {"displayName": "Design", "members": [{"value": "u1", "display": "Ann"}]}, new_id="g1"
    )
    assert out.response.status == 201
    assert out.response.data["members"] == [
        {"value": "u1", "$ref": "https://app.example.com/scim/v2/Users/u1", "type": "User", "display": "Ann"}
    ]
    assert h.directory.org.group("g1") == IdpGroup("g1")
    assert described(out) == ["u1: added to eng as Member"]  # R3: the blank group contributes the defaults


def test_s9_renames_keep_the_id_and_the_mapping() -> None:
    """displayName changes by PATCH (path or path-less) or PUT; the group's id and mapping stay."""
    h = host()
    for method, body in (
        ("PATCH", patch({"op": "replace", "path": "displayName", "value": "Leads 2"})),
        ("PATCH", patch({"op": "replace", "value": {"id": "leads", "displayName": "Leads 3"}})),
        ("PUT", {"displayName": "Leads 4"}),
    ):
        out = h.send(method, "/Groups/leads", body)
        assert out.response.status == 200
    assert h.directory.org.group("leads") == IdpGroup("leads", teams=[ENG], role=TA)
    assert h.send("GET", "/Groups/leads").response.data["displayName"] == "Leads 4"
    out = h.send("PATCH", "/Groups/leads", patch({"op": "replace", "value": {"id": "other", "displayName": "x"}}))
    assert error(out) == (400, "mutability")
    # A renamed group's old name is free again; its new one is taken.
    assert h.send("POST", "/Groups", {"displayName": "LEADS 2"}, new_id="g2").response.status == 201
    assert h.directory.group_named("leads 2") == "g2"
    assert error(h.send("POST", "/Groups", {"displayName": "leads 4"}, new_id="g3")) == (409, "uniqueness")


def test_s9_members_are_scim_users_of_the_org() -> None:
    """An unknown member, a SAML-only user, a nested group: 400 naming it; deprovisioned users are members."""
    h = host(User("s", saml=True, email="s@example.com"))
    h.create("ann", "u1")
    h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "active", "value": False}))
    for members in ([{"value": "ghost"}, {"value": "s"}], [{"value": "u1"}, {"value": "leads", "type": "Group"}]):
        out = h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": members}))
        assert error(out) == (400, "invalidValue")
        assert "'ghost', 's'" in out.response.data["detail"] or "'leads'" in out.response.data["detail"]
    out = h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    assert (out.response.status, out.changes) == (200, ())
    assert set(h.directory.members("leads")) == {"u1"}
    out = h.send("PATCH", "/Groups/leads", patch({"op": "replace", "path": "active", "value": True}))
    assert out.response.status == 400


def test_s9_member_filters_follow_the_grammar() -> None:
    """members[value eq "..."] with escapes, or-joined values; other filters are refused; non-members are no-ops."""
    h = host()
    for uid in ('a"b', "c\\d", "e"):
        h.create(uid, uid)
    all_three = [{"value": 'a"b'}, {"value": "c\\d"}, {"value": "e"}]
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": all_three}))
    out = h.send("PATCH", "/Groups/leads", patch({"op": "remove", "path": r'members[value eq "a\"b"]'}))
    assert (out.response.status, set(h.directory.members("leads"))) == (200, {"c\\d", "e"})
    out = h.send(
        "PATCH", "/Groups/leads", patch({"op": "remove", "path": r'members[value eq "c\\d" or value eq "zz"]'})
    )
    assert (out.response.status, set(h.directory.members("leads"))) == (200, {"e"})
    for bad in ('members[display eq "x"]', 'members[value ne "e"]', 'members[value eq "e"].display'):
        assert h.send("PATCH", "/Groups/leads", patch({"op": "remove", "path": bad})).response.status == 400
    assert (
        h.send(
            "PATCH", "/Groups/leads", patch({"op": "add", "path": 'members[value eq "e"]', "value": []})
        ).response.status
        == 400
    )


def test_s9_member_operations_in_every_form() -> None:
    """add, remove by value list, remove all, replace by path and path-less, PUT; display kept."""
    h = host()
    for uid in ("a", "b", "c"):
        h.create(uid, uid)

    def members() -> dict[str, str | None]:
        return dict(h.directory.members("leads"))

    h.send(
        "PATCH",
        "/Groups/leads",
        patch({"op": "ADD", "path": "members", "value": [{"value": "a", "display": "A"}, {"value": "b"}]}),
    )
    assert members() == {"a": "A", "b": None}
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": {"value": "b", "display": "B"}}))
    assert members() == {"a": "A", "b": "B"}
    h.send(
        "PATCH", "/Groups/leads", patch({"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "c"}]})
    )
    assert members() == {"b": "B"}
    h.send("PATCH", "/Groups/leads", patch({"op": "replace", "path": "members", "value": [{"value": "c"}]}))
    assert members() == {"c": None}
    h.send(
        "PATCH", "/Groups/leads", patch({"op": "replace", "value": {"Members": [{"value": "a"}], "displayName": "L"}})
    )
    assert members() == {"a": None}
    h.send(
        "PATCH",
        "/Groups/leads",
        patch({"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "b"}]}}),
    )
    assert members() == {"a": None, "b": None}
    h.send("PATCH", "/Groups/leads", patch({"op": "remove", "path": "members"}))
    assert members() == {}
    out = h.send("PUT", "/Groups/leads", {"displayName": "L", "members": [{"value": "c", "display": "C"}]})
    assert (out.response.status, out.response.data["members"][0]["display"]) == (200, "C")
    assert members() == {"c": "C"}
    add_a = patch({"op": "add", "path": "members", "value": [{"value": "a"}]})
    out = h.send("PATCH", "/Groups/leads", add_a, query="attributes=members")
    assert (out.response.status, [m["value"] for m in out.response.data["members"]]) == (200, ["a", "c"])
    out = h.send(
        "PATCH",
        "/Groups/leads",
        patch({"op": "remove", "path": 'members[value eq "a"]'}),
        query="excludedAttributes=members",
    )
    assert (out.response.status, "members" in out.response.data, out.response.header("ETag")) == (200, False, 'W/"10"')
    assert h.send("PATCH", "/Groups/leads", patch({"op": "replace", "path": "members"})).response.status == 400
    h.send("PATCH", "/Groups/leads", patch({"op": "replace", "path": "members", "value": []}))
    assert members() == {}
    assert (
        h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": ["a"]})).response.status == 400
    )


def test_s9_a_patch_of_a_large_group_answers_without_its_members() -> None:
    """Past 100 members a group PATCH is a 204 (its cost stays flat), or 200 without members when asked."""
    people = [User(f"m{i:04}", scim=True, groups=["leads"], email="user@example.com") for i in range(101)]
    at_the_cap = Host(Directory(article_org(), [*people[:99], User("new", scim=True, email="new@example.com")]))
    add = patch({"op": "add", "path": "members", "value": [{"value": "new"}]})
    out = at_the_cap.send("PATCH", "/Groups/leads", add)
    assert (out.response.status, len(out.response.data["members"])) == (200, 100)  # 100 still render
    h = Host(Directory(article_org(), [*people, User("new", scim=True, email="new@example.com")]))
    out = h.send("PATCH", "/Groups/leads", add)
    assert (out.response.status, out.response.body, len(h.directory.members("leads"))) == (204, b"", 102)
    out = h.send("PATCH", "/Groups/leads", patch({"op": "remove", "path": 'members[value eq "new"]'}))
    assert out.response.status == 204
    out = h.send("PATCH", "/Groups/leads", add, query="excludedAttributes=members")
    assert (out.response.status, "members" in out.response.data) == (200, False)
    out = h.send("PATCH", "/Groups/leads", add, query="attributes=displayName")
    assert (out.response.status, out.response.data["displayName"]) == (200, "leads")


def test_s9_deleting_a_group_removes_it_and_its_mapping() -> None:
    """DELETE /Groups/{id}: its members fall back (R3); the group is gone from the org and reads."""
    h = host()
    h.create("ann", "u1")
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    out = h.send("DELETE", "/Groups/leads")
    assert (out.response.status, described(out)) == (204, ["u1: eng Team Admin -> Member"])
    assert "leads" not in {g.id for g in h.directory.org.groups}
    assert h.directory.users["u1"].groups == frozenset()
    assert h.send("GET", "/Groups/leads").response.status == 404
    assert h.send("DELETE", "/Groups/leads").response.status == 404


# -- S10 reads


def test_s10_meta_times_are_utc_whatever_the_clock_and_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's aware clock in any zone, on a machine in any zone: meta's times are UTC with a ``Z``."""
    import time  # noqa: PLC0415

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        now = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
        out = handle(
            Directory(article_org()), ScimRequest("POST", "/Users", {"userName": "a@example.com"}, new_id="a", now=now)
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    meta = out.response.data["meta"]
    assert (meta["created"], meta["lastModified"], meta["version"]) == ("2026-01-01T17:00:00Z",) * 2 + ('W/"1"',)


def test_s9_leaving_a_group_keeps_the_users_manual_grants() -> None:
    """With manual edits on, a SCIM user taken out of a group keeps the grants an admin gave it."""
    h = host(manual_edits=True)
    h.create("ann", "u1")
    h.directory = h.directory.with_user(User("u1", scim=True, manual=[Grant(OPS, TA)], email="u1@example.com"))
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    h.send("PATCH", "/Groups/leads", patch({"op": "remove", "path": 'members[value eq "u1"]'}))
    assert h.directory.users["u1"] == User("u1", scim=True, manual=[Grant(OPS, TA)], email="u1@example.com")


def test_s10_resources_carry_what_the_idp_sent_plus_id_and_meta() -> None:
    """Every attribute sent comes back, with id, groups and meta (resourceType, created, lastModified, location...)."""
    h = host()
    sent = {
        "schemas": [CORE_USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": "ann@example.com",
        "externalId": "ext-1",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "displayName": "Ann Lee",
        "emails": [{"value": "ann@example.local", "type": "work", "primary": True}, {"value": "ann@[10.0.0.1]"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "7",
            "manager": {"value": "boss"},
        },
    }
    out = h.send("POST", "/Users", sent, new_id="u1")
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "displayName", "value": "A. Lee"}))
    got = h.send("GET", "/Users/u1").response
    data = got.data
    assert {k: data[k] for k in sent if k != "displayName"} == {k: v for k, v in sent.items() if k != "displayName"}
    assert data["displayName"] == "A. Lee"
    assert data["id"] == "u1"
    assert data["active"] is True
    assert data["groups"] == [
        {"value": "leads", "$ref": "https://app.example.com/scim/v2/Groups/leads", "display": "leads", "type": "direct"}
    ]
    assert data["meta"] == {
        "resourceType": "User",
        "created": "2026-01-01T00:00:01Z",
        "lastModified": "2026-01-01T00:00:03Z",
        "location": "https://app.example.com/scim/v2/Users/u1",
        "version": 'W/"2"',
    }
    assert got.header("etag") == 'W/"2"'
    assert got.header("Content-Type") == "application/scim+json"
    assert out.response.data["meta"]["created"] == "2026-01-01T00:00:01Z"


def _ids(out: Any) -> list[str]:
    return [r["id"] for r in out.response.data["Resources"]]


def test_s10_filters_on_every_listed_attribute() -> None:
    """eq, and, or on userName, externalId, displayName, id, emails.value, active; userName compares as S2 does."""
    h = host()
    h.create("ann@example.com", "u1", externalId="e1", displayName="Ann", emails=[{"value": "ann@example.com"}])
    h.create("bob@example.com", "u2", externalId="e2", displayName="Bob", emails=[{"value": "bob@y.com"}])
    h.create("JOSÉ", "u3", active=False)
    cases = {
        'userName eq "ANN@EXAMPLE.COM"': ["u1"],
        'userName eq "jose\u0301"': ["u3"],
        'USERNAME eq "bob@example.com"': ["u2"],
        'externalId eq "e2"': ["u2"],
        'displayName eq "Ann" or displayName eq "Bob"': ["u1", "u2"],
        'id eq "u3"': ["u3"],
        'id eq "nobody"': [],
        'emails.value eq "bob@y.com"': ["u2"],
        'emails[value co "ann"]': ["u1"],
        "active eq false": ["u3"],
        'active eq true and userName sw "b"': ["u2"],
        f'{USER_URN}userName eq "ann@example.com"': ["u1"],
        "not (active eq false)": ["u1", "u2"],
        'userName eq "oﬃce"': [],
    }
    for expression, expected in cases.items():
        out = h.send("GET", "/Users", query="filter=" + expression.replace("&", "%26"))
        assert out.response.status == 200, (expression, out.response.data)
        assert _ids(out) == expected, expression
        assert out.response.data["totalResults"] == len(expected)
    for bad in ('userName eq "unclosed', "nosuch eq 1", "userName zz 1"):
        assert error(h.send("GET", "/Users", query="filter=" + bad)) == (400, "invalidFilter")


def test_s10_paging_attributes_search_and_sorting() -> None:
    """startIndex/count pages in id order; attributes and excludedAttributes select; .search takes a body."""
    h = host()
    for i in range(5):
        h.create(f"user{i}", f"u{i}", displayName=f"D{4 - i}")
    page = h.send("GET", "/Users", query="startIndex=2&count=2").response.data
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [r["id"] for r in page["Resources"]] == ["u1", "u2"]
    assert h.send("GET", "/Users", query="startIndex=0&count=0").response.data["Resources"] == []
    out = h.send("GET", "/Users", query="attributes=userName&count=1")
    assert out.response.data["Resources"] == [{"schemas": [CORE_USER], "id": "u0", "userName": "user0"}]
    out = h.send("GET", "/Users/u0", query="excludedAttributes=displayName,meta")
    assert "displayName" not in out.response.data
    out = h.send("POST", "/Users/.search", {"filter": 'userName sw "user"', "sortBy": "displayName", "count": 2})
    assert _ids(out) == ["u4", "u3"]
    out = h.send("POST", "/Users/.search", {"sortBy": "displayName", "sortOrder": "descending", "attributes": ["id"]})
    assert _ids(out) == ["u0", "u1", "u2", "u3", "u4"]
    assert h.send("GET", "/Users/.search").response.status == 405
    assert error(h.send("GET", "/Users", query="count=1&count=2")) == (400, "invalidSyntax")
    assert error(h.send("POST", "/Users/.search", ["x"])) == (400, "invalidSyntax")
    assert h.send("GET", "/Users?count=1", query="startIndex=3").response.data["Resources"][0]["id"] == "u2"
    assert error(h.send("GET", "/Users", query="count=%ff")) == (400, "invalidSyntax")


def test_s10_group_reads_with_and_without_members() -> None:
    """Groups by id and by filter; excludedAttributes=members leaves them out; filters on members work."""
    h = host()
    h.create("ann", "u1")
    h.send(
        "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1", "display": "Ann"}]})
    )
    full = h.send("GET", "/Groups/leads").response.data
    assert full["members"][0]["value"] == "u1"
    assert "members" not in h.send("GET", "/Groups/leads", query="excludedAttributes=members").response.data
    assert "members" not in h.send("GET", "/Groups/leads", query="attributes=displayName").response.data
    assert h.send("GET", "/Groups/leads", query="attributes=members").response.data["members"][0]["display"] == "Ann"
    out = h.send("GET", "/Groups", query='filter=displayName eq "LEADS"&excludedAttributes=members')
    assert _ids(out) == ["leads"]
    out = h.send("GET", "/Groups", query='filter=members[value eq "u1"]')
    assert _ids(out) == ["leads"]
    out = h.send("GET", "/Groups", query="count=2")
    assert out.response.data["totalResults"] == len(article_org().groups)
    h.send("PATCH", "/Groups/marketing", patch({"op": "replace", "path": "displayName", "value": "A marketing"}))
    out = h.send("GET", "/Groups", query="sortBy=displayName&count=2&excludedAttributes=members")
    assert _ids(out) == ["marketing", "admins-blank-teams"]


def test_s10_discovery_documents() -> None:
    """/ServiceProviderConfig, /Schemas and /ResourceTypes, each with meta.location; unknown ones 404."""
    h = host()
    config = h.send("GET", "/ServiceProviderConfig").response.data
    assert config["patch"] == {"supported": True}
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["meta"]["location"] == "https://app.example.com/scim/v2/ServiceProviderConfig"
    schemas = h.send("GET", "/Schemas").response.data
    assert {s["id"] for s in schemas["Resources"]} == {
        CORE_USER,
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    }
    types = h.send("GET", "/ResourceTypes").response.data
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    assert h.send("GET", "/ResourceTypes/user").response.data["name"] == "User"
    base = "https://app.example.com/scim/v2"
    assert config["meta"] == {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"}
    for listed, endpoint, kind in ((schemas, "Schemas", "Schema"), (types, "ResourceTypes", "ResourceType")):
        assert (listed["schemas"], listed["startIndex"]) == (["urn:ietf:params:scim:api:messages:2.0:ListResponse"], 1)
        assert listed["totalResults"] == listed["itemsPerPage"] == len(listed["Resources"])
        for doc in listed["Resources"]:
            key = doc["id"]
            assert doc["meta"] == {"resourceType": kind, "location": f"{base}/{endpoint}/{key}"}
            out = h.send("GET", f"/{endpoint}/{key.upper()}")
            assert (out.response.status, out.response.data) == (200, doc)
    user_schema = next(s for s in schemas["Resources"] if s["id"] == CORE_USER)
    assert "password" not in {a["name"] for a in user_schema["attributes"]}  # S8: not in the published schema
    assert "userName" in {a["name"] for a in user_schema["attributes"]}
    for path, status, detail in (
        ("/ResourceTypes/Pet", 404, "no ResourceType 'Pet'"),
        ("/Schemas/urn:x", 404, "no Schema 'urn:x'"),
        ("/Schemas/a/b", 404, "no such Schema"),
        ("/ServiceProviderConfig/x", 404, "/ServiceProviderConfig has no sub-resources"),
    ):
        out = h.send("GET", path)
        assert (out.response.status, out.response.data["detail"]) == (status, detail)
    slash = handle(h.directory, ScimRequest("GET", "/ServiceProviderConfig", base_url="https://h.example/v2/"))
    assert slash.response.data["meta"]["location"] == "https://h.example/v2/ServiceProviderConfig"
    ends_in_x = handle(h.directory, ScimRequest("GET", "/Schemas", base_url="https://h.example/scimX/"))
    assert ends_in_x.response.data["Resources"][0]["meta"]["location"].startswith("https://h.example/scimX/Schemas/")
    endpoints = ("ServiceProviderConfig", "Schemas", "ResourceTypes")
    assert [h.send("GET", f"/{endpoint}").response.status for endpoint in endpoints] == [200, 200, 200]
    out = h.send("PUT", "/Schemas", {})
    assert (out.response.status, out.response.header("Allow"), out.response.data["detail"]) == (
        405,
        "GET",
        "PUT is not allowed here; allowed: GET",
    )


# -- S11 the app's own


def test_s11_teams_bulk_and_other_paths() -> None:
    """/Teams 404 (the app's own), /Bulk 501, unknown paths 404, wrong methods 405 with Allow; RFC 7644 error bodies."""
    h = host()
    assert error(h.send("POST", "/Teams", {"displayName": "new"})) == (404, None)
    assert "app" in h.send("GET", "/Teams/eng").response.data["detail"]
    assert error(h.send("POST", "/Bulk", {"Operations": []})) == (501, None)
    assert error(h.send("POST", "/.search", {})) == (501, None)
    for path in ("/", "/Pets", "/Users/a/b", "/Users//x", "/Users/%ff"):
        assert error(h.send("GET", path)) == (404, None), path
    out = h.send("DELETE", "/Users")
    assert error(out) == (405, None)
    assert out.response.header("Allow") == "GET, POST"
    assert error(h.send("POST", "/Users/u1", {})) == (405, None)
    assert error(h.send("POST", "/Users", "not an object")) == (400, "invalidSyntax")
    assert error(h.send("POST", "/Users", {"userName": "a", "unknown": 1})) == (400, "invalidValue")
    assert error(h.send("POST", "/Users", {"userName": "a", "active": False, "ACTIVE": True})) == (400, "invalidSyntax")
    assert error(h.send("PATCH", "/Groups/leads", {"Operations": [{"op": "frob"}]}))[0] == 400
    assert error(h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "bogus[", "value": 1})))[0] == 400
    assert error(h.send("POST", "/Groups", {"members": []}, new_id="g"))[0] == 400


# -- S12 atomic and deterministic


GROUP_MEMBERS = "urn:ietf:params:scim:schemas:core:2.0:Group:members"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/Users", ["x"], (400, "invalidSyntax", "this request needs a JSON object body")),
        ("POST", "/Users", {"userName": "ANN"}, (409, "uniqueness", "userName 'ANN' is taken by the SCIM user 'u1'")),
        ("PUT", "/Users/u2", {"userName": "ann"}, (409, "uniqueness", "userName 'ann' is taken by the user 'u1'")),
        ("PUT", "/Users/s", {"userName": "sam"}, (404, None, "no SCIM user with id 's'")),
        ("DELETE", "/Groups/nosuch", None, (404, None, "no group with id 'nosuch'")),
        (
            "PATCH",
            "/Users/u1",
            patch({"op": "replace", "path": "active", "value": "yes"}),
            (400, "invalidValue", "active must be true or false, got 'yes'"),
        ),
        (
            "PATCH",
            "/Users/u1",
            patch({"op": "replace", "value": {"ACTIVE": 3}}),
            (400, "invalidValue", "active must be true or false, got 3"),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "replace", "path": "members.display", "value": "x"}),
            (400, "invalidPath", "'members.display': a member's attributes cannot be changed"),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "add", "path": "members", "value": ["u1"]}),
            (400, "invalidValue", "a member must be an object with a value, got 'u1'"),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "add", "path": 'members[value eq "u1"]', "value": [{"value": "u1"}]}),
            (400, "invalidPath", "add cannot select members by a filter; list them"),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "remove", "path": 'members[display eq "u1"]'}),
            (400, "invalidFilter", 'members are selected by value eq (joined by or), not by display eq "u1"'),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "add", "path": "members", "value": [{"value": "u1", "type": "Group"}]}),
            (400, "invalidValue", "member 'u1' is a Group: only users are members (no nested groups)"),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "replace", "path": "displayName", "value": {"id": "leads"}}),
            (400, "invalidValue", "display_name: Input should be a valid string"),
        ),
        (
            "POST",
            "/Users",
            {"userName": "c", "x509Certificates": [{"value": "abc"}]},
            (400, "invalidValue", "x509Certificates.0.value: Base64 decoding error: 'Incorrect padding'"),
        ),
        (
            "POST",
            "/Users",
            {"schemas": ["urn:x"], "userName": "c"},
            (400, "invalidValue", "schemas must contain the base schema 'urn:ietf:params:scim:schemas:core:2.0:User'"),
        ),
        (
            "POST",
            "/Users",
            {"userName": "c", "ß": 1, "ss": 2},
            (400, "invalidValue", "ß: Extra inputs are not permitted"),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "remove", "path": 'members[value eq "u1" and value eq "u2"]'}),
            (
                400,
                "invalidFilter",
                'members are selected by value eq (joined by or), not by value eq "u1" and value eq "u2"',
            ),
        ),
        (
            "PATCH",
            "/Groups/leads",
            patch({"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:foo:2.0:Group:members": []}}),
            (
                400,
                "invalidValue",
                "'urn:ietf:params:scim:schemas:extension:foo:2.0:Group:members' is not declared by the resource schema",
            ),
        ),
        ("GET", "/Groups", None, (400, "invalidFilter", "filter: Field not found: userName")),
    ],
)
def test_s12_each_refusal_names_its_status_scim_type_and_detail(
    method: str, path: str, body: Any, expected: tuple[int, str | None, str]
) -> None:
    """A refused request answers the RFC 7644 error: status, scimType and a detail naming what is wrong;
    the directory is unchanged."""
    h = host(User("s", saml=True, email="s@example.com"), s="sam")
    h.create("ann", "u1")
    h.create("bob", "u2")
    before = h.directory
    query = 'filter=userName eq "ann"' if method == "GET" else ""  # a user's attribute, filtered on groups
    out = h.send(method, path, body, query=query)
    data = out.response.data
    assert (out.response.status, data.get("scimType"), data["detail"]) == expected
    assert out.directory == before


def test_s9_entra_names_its_own_group_schema_and_it_is_left_out() -> None:
    """Entra ID sends its ADSCIM group schema URI (which defines no attribute) beside the core one: the group is
    created under the core schema alone, whatever the letter case of the URI."""
    entra = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
    core = "urn:ietf:params:scim:schemas:core:2.0:Group"
    h = host()
    for i, schemas in enumerate(([core, entra], [core, entra.upper()])):
        out = h.send("POST", "/Groups", {"schemas": schemas, "displayName": f"E{i}"}, new_id=f"g{i}")
        assert (out.response.status, out.response.data["schemas"]) == (201, [core])


def test_s10_groups_are_found_by_id_through_the_index() -> None:
    """``id eq`` on groups: the group, or none; never a user of that id."""
    h = host()
    h.create("ann", "leads2")
    assert _ids(h.send("GET", "/Groups", query='filter=id eq "leads"')) == ["leads"]
    assert _ids(h.send("GET", "/Groups", query='filter=id eq "leads2"')) == []
    assert _ids(h.send("GET", "/Users", query='filter=id eq "leads"')) == []


def test_s9_members_in_every_spelling_of_their_path_and_type() -> None:
    """A member typed ``User`` (any case) is a user; members named by the core schema's URN, or among a
    path-less value's keys beside ``ID`` and ``displayName``, are the same attribute."""
    h = host()
    h.create("ann", "u1")
    h.create("bob", "u2")
    for body, name, members in (
        (patch({"op": "add", "path": "members", "value": [{"value": "u1", "type": "User"}]}), "leads", ["u1"]),
        (patch({"op": "replace", "value": {"ID": "leads", "displayName": "L2"}}), "L2", ["u1"]),
        (patch({"op": "replace", "value": {"displayName": "L3", "members": [{"value": "u2"}]}}), "L3", ["u2"]),
        (patch({"op": "add", "path": GROUP_MEMBERS, "value": [{"value": "u1", "type": "user"}]}), "L3", ["u1", "u2"]),
    ):
        out = h.send("PATCH", "/Groups/leads", body)
        assert out.response.status == 200, out.response.data
        assert (out.response.data["displayName"], sorted(dict(h.directory.members("leads")))) == (name, members)


def test_s12_a_write_that_changes_nothing_keeps_the_version_and_touches_no_one() -> None:
    """A PUT or PATCH that leaves the stored resource as it is (POST stored ``active``): 200, the same
    version and lastModified, no user touched; one that changes it bumps the version."""
    h = host()
    h.create("ann", "u1", displayName="Ann")
    first = h.send("GET", "/Users/u1").response.data["meta"]
    for method, body in (
        ("PUT", {"userName": "ann", "displayName": "Ann", "active": True}),
        ("PATCH", patch({"op": "replace", "path": "displayName", "value": "Ann"})),
        ("PATCH", patch({"op": "replace", "value": {"displayName": "Ann", "active": True}})),
    ):
        out = h.send(method, "/Users/u1", body)
        assert (out.response.status, out.response.data["meta"], dict(out.touched)) == (200, first, {})
    out = h.send("PUT", "/Users/u1", {"userName": "ann", "displayName": "Ann L."})
    assert out.response.data["meta"]["version"] == 'W/"2"'


def test_s12_a_body_names_each_attribute_once_in_any_spelling() -> None:
    """Two keys for one attribute are refused naming both; the core schema's URN as a key holds the core
    attributes (its own ``schemas`` key left out); ``active`` as a word is a boolean, anything else is named."""
    h = host()
    nested = {"schemas": [CORE_USER], CORE_USER: {"schemas": [CORE_USER], "userName": "a@example.com"}}
    assert h.send("POST", "/Users", nested, new_id="u1").response.status == 201
    for body, detail in (
        (
            {"userName": "b", "USERNAME": "c"},
            (400, "invalidSyntax", "attributes 'userName' and 'USERNAME' name the same attribute"),
        ),
        (
            {"userName": "b", "active": "yes"},
            (400, "invalidValue", "active: Value error, must be true or false, got 'yes'"),
        ),
    ):
        out = h.send("POST", "/Users", body, new_id="u2")
        assert (out.response.status, out.response.data["scimType"], out.response.data["detail"]) == detail
    out = h.send("POST", "/Users", {"userName": "b", "active": "FALSE"}, new_id="u2")
    assert (out.response.status, h.directory.users["u2"].deprovisioned) == (201, True)


def test_s12_a_stored_resource_the_models_refuse_is_the_hosts_500() -> None:
    """A resource the host stored broken is answered 500 naming it and what is wrong, not blamed on the IdP."""
    d = Directory(
        article_org(),
        [User("u1", scim=True, email="u1@example.com")],
        resources={"u1": {"userName": "a", "emails": "x"}},
        groups={"leads": {"displayName": "L", "externalId": 3}},
    )
    for path, detail in (
        ("/Users/u1", "the stored resource 'u1' is not valid: emails: Input should be a valid list"),
        ("/Groups/leads", "the stored resource 'leads' is not valid: externalId: Input should be a valid string"),
    ):
        out = handle(d, ScimRequest("PATCH", path, patch({"op": "replace", "path": "displayName", "value": "x"})))
        assert (out.response.status, out.response.data["detail"]) == (500, detail)


def test_t1_stored_resources_are_canonical_json() -> None:
    """What the directory stores and compares: sorted keys, no spaces, text as it is (not escaped)."""
    from scim_roles.scim._resources import canonical, unstamped  # noqa: PLC0415

    assert canonical({"b": [1, {"d": 2, "c": "é"}], "a": None}) == '{"a":null,"b":[1,{"c":"é","d":2}]}'
    assert unstamped('{"meta":{"version":"W/\\"1\\""},"z":1,"a":2}') == '{"a":2,"z":1}'


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        ("GET", "/Users/%ff", "", None, (404, "no such resource: the path is not valid UTF-8", None)),
        ("GET", "/Users/a/b", "", None, (404, "no such resource: 'Users/a/b'", None)),
        ("GET", "/Users/.search", "", None, (405, "GET is not allowed here; allowed: POST", "POST")),
        ("PUT", "/Users", "", {}, (405, "PUT is not allowed here; allowed: GET, POST", "GET, POST")),
        ("GET", "/Users", "filter=a&filter=b", None, (400, "query parameter 'filter' is given more than once", None)),
        ("POST", "/Users/.search", "", [1], (400, "a search needs a JSON object body", None)),
        ("GET", "/Users", "%ff=1", None, (400, "the query string is not valid", None)),
    ],
)
def test_s10_s11_each_routing_and_query_refusal_is_named(
    method: str, path: str, query: str, body: Any, expected: tuple[int, str, str | None]
) -> None:
    """Paths that name nothing, methods an endpoint does not take (with ``Allow``), query strings and search
    bodies that cannot be read: each answered with its status and a detail naming it."""
    out = host().send(method, path, body, query=query)
    assert (out.response.status, out.response.data["detail"], out.response.header("Allow")) == expected


def test_s10_queries_and_resources_render_as_given() -> None:
    """Unknown query parameters are skipped, not the end of the query; a query in the path counts; a search
    without a body lists everyone; a member without a display has none; a user's groups show their names;
    members excluded by the core schema's URN are left out; a base URL's trailing slash is not doubled."""
    h = host()
    h.create("ann", "u1")
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    h.send("PATCH", "/Groups/leads", patch({"op": "replace", "path": "displayName", "value": "Leads"}))
    assert _ids(h.send("GET", "/Users", query='foo=1&filter=userName eq "nobody"')) == []
    assert _ids(h.send("GET", '/Users?filter=userName eq "ann"')) == ["u1"]
    assert _ids(h.send("POST", "/Users/.search")) == ["u1"]
    group = h.send("GET", "/Groups/leads").response.data
    base = "https://app.example.com/scim/v2"
    assert (group["members"], group["meta"]["resourceType"]) == (
        [{"value": "u1", "$ref": f"{base}/Users/u1", "type": "User"}],
        "Group",
    )
    assert h.send("GET", "/Users/u1").response.data["groups"] == [
        {"value": "leads", "$ref": f"{base}/Groups/leads", "display": "Leads", "type": "direct"}
    ]
    urn = "urn:ietf:params:scim:schemas:core:2.0:Group:members"
    assert "members" not in h.send("GET", "/Groups/leads", query=f"excludedAttributes={urn}").response.data
    slash = handle(h.directory, ScimRequest("GET", "/Users/u1", base_url=base + "/"))
    assert slash.response.data["meta"]["location"] == f"{base}/Users/u1"


def test_s1_the_hosts_arguments_are_named_when_wrong() -> None:
    """handle() of something not a directory or not a request, or a request with a part not a string."""
    d = Directory(article_org())
    for directory, request, problem in (
        ("d", ScimRequest("GET", "/Users"), Problem("handle", "directory", "must be a Directory, got 'd'")),
        (d, "x", Problem("handle", "request", "must be a ScimRequest, got 'x'")),
        (d, ScimRequest("GET", "/Users", query=3), Problem("ScimRequest", "query", "must be a string, got 3")),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidArgument) as err:
            handle(directory, request)  # type: ignore[arg-type]
        assert err.value.problems == (problem,)


def test_s12_a_request_applies_wholly_or_not_at_all() -> None:
    """The first refused operation refuses the whole PATCH; the directory given is never changed."""
    h = host()
    h.create("ann", "u1")
    h.create("bob", "u2")
    before = h.directory
    snapshot = pickle.dumps(before)
    out = h.send(
        "PATCH",
        "/Groups/leads",
        patch(
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "add", "path": "members", "value": [{"value": "ghost"}]},
        ),
    )
    assert out.response.status == 400
    assert out.directory is before
    out = h.send(
        "PATCH",
        "/Users/u1",
        patch(
            {"op": "replace", "path": "active", "value": False}, {"op": "replace", "path": "userName", "value": "bob"}
        ),
    )
    assert error(out) == (409, "uniqueness")
    assert not h.directory.users["u1"].deprovisioned
    ok = handle(before, ScimRequest("DELETE", "/Users/u1"))
    assert ok.directory is not before
    assert pickle.dumps(before) == snapshot


def test_s12_same_request_same_state_same_outcome() -> None:
    """Equal inputs give equal outcomes, responses byte for byte."""
    h = host(User("s", saml=True, email="s@example.com"))
    h.create("ann", "u1")
    request = ScimRequest(
        "PATCH",
        "/Groups/leads",
        patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}),
        now=datetime.fromisoformat("2026-02-02T00:00:00+00:00"),
    )
    first, second = handle(h.directory, request), handle(pickle.loads(pickle.dumps(h.directory)), request)  # noqa: S301
    assert first == second
    assert first.response.body == second.response.body


# -- the Directory


def test_directory_keeps_what_a_host_stores() -> None:
    """resource(), group_resource() and members() give back, through the constructor, an equal directory."""
    h = host(User("s", saml=True, manual=[Grant(OPS, M)], email="s@example.com"), s="sam")
    h.create("ann", "u1", name={"givenName": "Ann"})
    h.send(
        "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1", "display": "A"}]})
    )
    h.send("POST", "/Groups", {"displayName": "New", "externalId": "x"}, new_id="g1")
    d = h.directory
    again = Directory(
        d.org,
        d.users.values(),
        user_names={uid: d.user_name(uid) for uid in d.users if not d.users[uid].scim},
        resources={uid: d.resource(uid) or {} for uid in d.users if d.users[uid].scim},
        groups={
            gid: {
                **(d.group_resource(gid) or {}),
                "members": [{"value": u, "display": v} for u, v in d.members(gid).items()],
            }
            for gid in ("leads", "g1")
        },
    )
    assert again == d
    assert hash(again) == hash(d)
    assert pickle.loads(pickle.dumps(d)) == d  # noqa: S301
    assert repr(d).startswith("Directory(org=")
    assert d.resource("s") is None
    assert d.resource("nobody") is None
    assert d.group_resource("nosuch") is None
    assert Directory(article_org(), [User("x", scim=True, deprovisioned=True, email="x@example.com")]).resource(
        "x"
    ) == {
        "userName": "x",
        "active": False,
    }


def _p(subject: str, field: str, detail: str, pid: str | None = "a") -> Problem:
    return Problem(subject, field, detail, pid)


A = "user 'a'"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        (
            {"users": [User("a", scim=True, groups=["nosuch"], email="a@example.com")]},
            _p(A, "groups", "IdP group 'nosuch' is not synced to the org"),
        ),
        (
            {"users": [User("a", saml=True, email="a@example.com"), User("a", scim=True, email="a@example.com")]},
            _p(A, "id", "appears more than once among the users"),
        ),
        ({"users": [1]}, _p("users", "user", "must be a User, got int 1", None)),
        (
            {
                "users": [User("a", scim=True, email="a@example.com")],
                "resources": {"a": {"userName": "a", "active": False}},
            },
            _p(A, "resources", "active is False but deprovisioned is False"),
        ),
        (
            {"users": [User("a", scim=True, email="a@example.com")], "resources": {"a": {"name": {}}}},
            _p(A, "resources", "must be a SCIM resource with a string userName"),
        ),
        (
            {"users": [User("a", scim=True, email="a@example.com")], "resources": {"a": {"userName": "a", "id": "b"}}},
            _p(A, "resources", "its id 'b' is not the user's id"),
        ),
        (
            {"users": [User("a", saml=True, email="a@example.com")], "resources": {"a": {"userName": "a"}}},
            _p(A, "resources", "is not a SCIM user of the directory"),
        ),
        (
            {
                "users": [User("a", scim=True, email="a@example.com")],
                "resources": {"a": {"userName": "a"}},
                "user_names": {"a": "b"},
            },
            _p(A, "user_names", "'b' is not the resource's userName 'a'"),
        ),
        ({"users": [], "user_names": {"a": "b"}}, _p(A, "user_names", "is not a user of the directory")),
        (
            {"users": [User("a", saml=True, email="a@example.com")], "user_names": {"a": 3}},
            _p(A, "user_names", "must be a string, got 3"),
        ),
        (
            {"users": [], "groups": {"nosuch": {"displayName": "x"}}},
            _p("group 'nosuch'", "groups", "is not a group synced to the org", "nosuch"),
        ),
        (
            {"users": [], "groups": {"leads": {"name": "x"}}},
            _p("group 'leads'", "groups", "must be a SCIM resource with a string displayName", "leads"),
        ),
        (
            {"users": [], "groups": {"leads": {"displayName": "x", "members": {}}}},
            _p("group 'leads'", "members", "must be a list", "leads"),
        ),
        (
            {"users": [], "groups": {"leads": {"displayName": "x", "members": [{"value": "a"}]}}},
            _p("group 'leads'", "members", "'a' is not a member: the users' groups say who is", "leads"),
        ),
    ],
)
def test_directory_refuses_inconsistent_state(kwargs: dict[str, Any], problem: Problem) -> None:
    """Every disagreement between users, names, resources and groups is an InvalidUser naming its subject,
    field and id, and nothing else."""
    with pytest.raises(InvalidUser) as err:
        Directory(article_org(), **kwargs)
    assert err.value.problems == (problem,)


def test_directory_reports_every_problem_once_in_id_order() -> None:
    """Several problems at once: each reported, users then names then groups, each by id as text (ids that
    are not strings are reported too, not a TypeError); a member that is not an object is no member."""
    with pytest.raises(InvalidUser) as err:
        Directory(
            article_org(),
            [
                User("a", saml=True, email="a@example.com"),
                User("b", scim=True, email="b@example.com"),
                User("c", saml=True, email="c@example.com"),
            ],
            user_names={"z": "x", 1: "y", "a": "A@example.com"},  # type: ignore[dict-item]
            resources={"c": {"userName": "c"}, 2: {"userName": "c"}, "b": {"userName": "a@example.com"}},  # type: ignore[dict-item]
            groups={
                "nosuch": {"displayName": "x"},
                3: {"displayName": "y"},  # type: ignore[dict-item]
                "leads": {"displayName": "L", "members": ["u"]},
            },
        )
    assert err.value.problems == (
        _p("user 'b'", "userName", "'a@example.com' is the userName of 'a' too (S2)", "b"),
        _p("user 2", "resources", "is not a SCIM user of the directory", "2"),
        _p("user 'c'", "resources", "is not a SCIM user of the directory", "c"),
        _p("user 1", "user_names", "is not a user of the directory", "1"),
        _p("user 'z'", "user_names", "is not a user of the directory", "z"),
        _p("group 3", "groups", "is not a group synced to the org", "3"),
        _p("group 'leads'", "members", "None is not a member: the users' groups say who is", "leads"),
        _p("group 'nosuch'", "groups", "is not a group synced to the org", "nosuch"),
    )


def test_directory_keeps_the_display_of_members_and_drops_ids_from_stored_resources() -> None:
    """A stored group's members keep the display the IdP sent (a non-string display is none); an ``id`` in a
    stored user or group resource is not stored twice."""
    d = Directory(
        article_org(),
        [
            User("a", scim=True, groups=["leads"], email="a@example.com"),
            User("b", scim=True, groups=["leads"], email="b@example.com"),
        ],
        resources={"a": {"userName": "a", "id": "a"}, "b": {"userName": "b"}},
        groups={
            "leads": {
                "id": "leads",
                "displayName": "L",
                "members": [{"value": "a", "display": "Ann"}, {"value": "b", "display": 3}],
            }
        },
    )
    assert dict(d.members("leads")) == {"a": "Ann", "b": None}
    assert d.group_resource("leads") == {"displayName": "L"}
    assert d.resource("a") == {"userName": "a"}


def test_directory_refuses_arguments_of_the_wrong_kind() -> None:
    """Not an org, users not an iterable of users, mappings that are not mappings: typed errors naming them."""
    from scim_roles import InvalidOrg  # noqa: PLC0415

    with pytest.raises(InvalidOrg):
        Directory("org")  # type: ignore[arg-type]
    for bad in ("ab", 3, {"a": User("a", saml=True, email="a@example.com")}):
        with pytest.raises(InvalidArgument) as err:
            Directory(article_org(), bad)  # type: ignore[arg-type]
        assert err.value.problems == (Problem("Directory", "users", f"must be an iterable of User, got {bad!r}"),)
    for name in ("user_names", "resources", "groups"):
        with pytest.raises(InvalidArgument) as err:
            Directory(article_org(), (), **{name: ["x"]})  # type: ignore[arg-type]
        assert err.value.problems == (Problem("Directory", name, "must be a mapping by id, got ['x']"),)


def test_outcome_and_response_are_frozen_values() -> None:
    """Outcomes compare, hash and pickle by value; a response decodes its body and finds headers in any case."""
    h = host()
    out = h.create("ann", "u1")
    assert pickle.loads(pickle.dumps(out)) == out  # noqa: S301
    assert isinstance(hash(out), int)
    assert out.status == 201
    assert out.touched["u1"] == Resolution("u1", out.touched["u1"].memberships, (), locked=True)  # type: ignore[union-attr]
    assert ScimResponse(204, (), b"").data is None
    assert ScimResponse(200, (("X-A", "1"),), b"{}").header("x-a") == "1"
    assert ScimResponse(200, (), b"{}").header("x-a") is None
    assert json.loads(out.response.body) == out.response.data


def test_a_directory_built_by_requests_matches_one_built_whole() -> None:
    """The indexes a request leaves equal those the constructor builds from the same state."""
    h = host(User("s", saml=True, email="s@example.com"), s="sam")
    h.create("ann", "u1")
    h.create("sam", "ignored")
    h.send(
        "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "s"}]})
    )
    h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": "userName", "value": "ann2"}))
    h.send("DELETE", "/Users/s")
    d = h.directory
    rebuilt = pickle.loads(pickle.dumps(d))  # noqa: S301 -- through the constructor
    assert rebuilt == d
    assert rebuilt._keys == d._keys
    assert Org(teams=[Team("a")], default_teams=["a"], default_role=M) != d.org


def test_s10_users_known_without_a_stored_resource() -> None:
    """A SCIM user given without a resource reads as its userName and state, and can be deleted."""
    h = Host(
        Directory(
            article_org(),
            [
                User("x", scim=True, email="x@example.com"),
                User("y", scim=True, deprovisioned=True, email="y@example.com"),
            ],
        )
    )
    data = h.send("GET", "/Users/x", query="unknownParameter=1").response.data
    assert (data["userName"], data["active"], data["meta"]["resourceType"]) == ("x", True, "User")
    assert "version" not in data["meta"]
    assert h.send("GET", "/Users/y").response.data["active"] is False
    assert h.send("DELETE", "/Users/x").response.status == 204
    assert set(h.directory.users) == {"y"}


def test_s12_a_broken_stored_resource_is_the_hosts_error() -> None:
    """A resource the host stored that the models refuse: 500 naming it, never a traceback or a 400."""
    d = Directory(
        article_org(),
        [User("x", scim=True, email="x@example.com")],
        resources={"x": {"userName": "x", "name": "not an object"}},
    )
    h = Host(d)
    assert h.send("GET", "/Users/x").response.status == 200  # served as stored
    for method, path, body, query in (
        ("GET", "/Users/x", None, "attributes=userName"),
        ("GET", "/Users", None, 'filter=name.givenName eq "a"'),
        ("POST", "/Users/.search", {"sortBy": "userName"}, ""),
        ("PATCH", "/Users/x", patch({"op": "replace", "path": "displayName", "value": "X"}), ""),
    ):
        out = h.send(method, path, body, query=query)
        assert error(out) == (500, None)
        assert "'x' is not valid" in out.response.data["detail"]
    assert h.directory is d


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "value": ["a"]},
        {"op": "replace", "value": {"bad[": 1}},
        {"op": "replace", "path": "nosuch", "value": 1},
        {"op": "replace", "path": CORE_USER, "value": {"active": "no"}},
        {"op": "replace", "path": CORE_USER, "value": {"Password": "x"}},
        {"op": "replace", "path": "emails[type eq", "value": 1},
        {"op": "replace", "path": CORE_USER, "value": "x"},
        {"op": "replace", "path": CORE_USER, "value": {"password": "x"}},
        {"op": "replace", "path": CORE_USER, "value": {"name.givenName": "x", "bad[": 1}},
    ],
)
def test_s5_s8_malformed_user_operations_are_refused(operation: dict[str, Any]) -> None:
    """Values and paths the models cannot read: 400, nothing applied."""
    h = host()
    h.create("ann", "u1")
    before = h.directory
    assert h.send("PATCH", "/Users/u1", patch(operation)).response.status == 400
    assert h.directory is before


def test_s10_the_enterprise_extension_as_a_whole() -> None:
    """add, replace and remove of the whole extension by its URN path, and path-less."""
    h = host()
    h.create("ann", "u1")
    urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    for operation in (
        {"op": "add", "path": urn, "value": {"department": "Sales", "manager": "boss"}},
        {"op": "replace", "path": urn, "value": {"department": "Ops"}},
        {"op": "replace", "value": {urn: {"costCenter": "7"}}},
        {"op": "replace", "path": urn + ":division", "value": "D"},
    ):
        out = h.send("PATCH", "/Users/u1", patch(operation))
        assert out.response.status == 200, (operation, out.response.data)
    assert out.response.data[urn]["division"] == "D"
    assert h.send("PATCH", "/Users/u1", patch({"op": "remove", "path": urn})).response.status == 200
    assert urn not in h.send("GET", "/Users/u1").response.data
    assert not h.directory.users["u1"].deprovisioned


def test_s5_deactivation_through_the_core_schema_path() -> None:
    """The core schema URN as the path, the attributes in the value (schemas listed or not): still a deactivation."""
    for value in ({"active": False}, {"schemas": [CORE_USER], "Active": "false"}):
        h = host()
        h.create("ann", "u1")
        out = h.send("PATCH", "/Users/u1", patch({"op": "replace", "path": CORE_USER, "value": value}))
        assert out.response.status == 200
        assert h.directory.users["u1"].deprovisioned
        h = host()
        h.create("ann", "u1")
        out = h.send("PATCH", "/Users/u1", patch({"op": "replace", "value": value}))
        assert h.directory.users["u1"].deprovisioned


@pytest.mark.parametrize(
    "body",
    [
        {"userName": "a", USER_URN + "bad[": 1},
        {"userName": "a", USER_URN + "name.givenName": "x"},
        {"userName": "a", USER_URN + 'emails[type eq "work"]': "x"},
    ],
)
def test_s11_urn_keys_that_are_not_one_attribute_are_refused(body: dict[str, Any]) -> None:
    """A URN-qualified key that is not a plain core attribute is an unknown attribute: 400."""
    h = host()
    assert h.send("POST", "/Users", body, new_id="a").response.status == 400


def test_s9_malformed_member_operations_are_refused() -> None:
    """A member that is not an object with a string value, or a path-less key the models cannot read: 400."""
    h = host()
    h.create("ann", "u1")
    for operation in (
        {"op": "add", "path": "members", "value": [{"value": 3}]},
        {"op": "add", "path": "members", "value": [3]},
        {"op": "add", "value": {"bad[": 1}},
    ):
        assert h.send("PATCH", "/Groups/leads", patch(operation)).response.status == 400


def test_s10_group_filters_that_read_members_or_combine() -> None:
    """not, and/or and value paths over groups; members are read only when the filter names them."""
    h = host()
    h.create("ann", "u1")
    h.send("PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    everyone = sorted(g.id for g in article_org().groups)
    cases = {
        'not (displayName eq "leads")': [g for g in everyone if g != "leads"],
        'displayName eq "nothing" or members pr': ["leads"],
        'displayName sw "l" and not (members pr)': [],
        'members[value eq "u1"] and displayName co "ead"': ["leads"],
    }
    for expression, expected in cases.items():
        assert _ids(h.send("GET", "/Groups", query="filter=" + expression)) == expected, expression


def test_with_user_changes_one_user_the_app_owns() -> None:
    """An admin's edit or a SAML sign-in: added or changed, checked against the org and the userNames."""
    d = Directory(
        article_org(manual_edits=True),
        [User("s", scim=True, groups=["leads"], email="s@example.com")],
        user_names={"s": "sam"},
    )
    d2 = d.with_user(User("a", saml=True, email="a@example.com"), user_name="Ann")
    assert (d2.user("ANN"), d.user("ann")) == (User("a", saml=True, email="a@example.com"), None)
    d3 = d2.with_user(User("a", saml=True, manual=[Grant(OPS, TA)], email="a@example.com"))
    assert d3.user_name("a") == "Ann"
    d4 = d3.with_user(User("a", saml=True, email="a@example.com"), user_name="ann2")
    assert (d4.user("ann"), d4.user("ann2")) == (None, User("a", saml=True, email="a@example.com"))
    edited = d4.with_user(User("s", scim=True, groups=["leads"], manual=[Grant(MKT, M)], email="s@example.com"))
    assert edited.users["s"].manual == frozenset({Grant(MKT, M)})
    assert dict(edited.members("leads")) == {"s": None}
    assert Directory(edited.org, edited.users.values(), user_names={"a": "ann2", "s": "sam"}) == edited
    b, s = "user 'b'", "user 's'"
    scim_owns = Problem(s, "scim", "SCIM owns scim, groups and deprovisioned of a SCIM user", "s")
    for user, name, problem in (
        (
            User("b", scim=True, email="b@example.com"),
            None,
            Problem(b, "scim", "a SCIM user is provisioned by the IdP, through a request", "b"),
        ),
        (User("s", scim=True, email="s@example.com"), None, scim_owns),
        (User("s", scim=True, groups=["leads"], deprovisioned=True, email="s@example.com"), None, scim_owns),
        (
            User("b", saml=True, email="b@example.com"),
            "SAM",
            Problem(b, "userName", "'SAM' is the userName of 's' too (S2)", "b"),
        ),
        (
            User("b", saml=True, email="b@example.com"),
            "oﬃce",
            Problem(b, "userName", "not a valid user name (RFC 8265): DISALLOWED/has_compat", "b"),
        ),
        (User("b", manual=[Grant("nosuch", M)]), None, Problem(b, "manual", "grant on unknown team 'nosuch'", "b")),
        ("b", None, Problem("users", "user", "must be a User, got str 'b'")),
    ):
        with pytest.raises(InvalidUser) as err:
            d.with_user(user, user_name=name)  # type: ignore[arg-type]
        assert err.value.problems == (problem,)


def test_s10_username_and_id_filters_take_the_indexes_and_agree_with_the_scan() -> None:
    """`userName eq` (users) and `id eq` (both) are answered from the indexes, any case, with or without
    the core schema's URN; every other form scans. Both give the same ids."""
    from scim2_models import SearchRequest  # noqa: PLC0415

    from scim_roles.scim._reads import _by_index  # noqa: PLC0415
    from scim_roles.scim._render import GROUPS, USERS  # noqa: PLC0415
    from scim_roles.scim._work import Work  # noqa: PLC0415

    h = host()
    h.create("ann@example.com", "u1")
    h.create("bob@example.com", "u2", active=False)
    work = Work(h.directory, ScimRequest("GET", "/Users"))
    group_urn = "urn:ietf:params:scim:schemas:core:2.0:Group:"
    indexed = {
        ('userName eq "ANN@example.com"', USERS): ["u1"],
        (f'{USER_URN}UserName eq "bob@example.com"', USERS): ["u2"],
        ('userName eq "nobody"', USERS): [],
        ('userName eq "o\ufb03ce"', USERS): [],
        ('ID eq "u2"', USERS): ["u2"],
        ('id eq "leads"', USERS): [],
        ('id EQ "leads"', GROUPS): ["leads"],
        (f'{group_urn}id eq "leads"', GROUPS): ["leads"],
        ('id eq "u1"', GROUPS): [],
    }
    scanned = [
        ('userName eq "ann@example.com"', GROUPS),
        ('displayName eq "Leads"', GROUPS),
        ('userName ne "ann@example.com"', USERS),
        ('userName eq "ann@example.com" or id eq "u2"', USERS),
        ('name.givenName eq "Ann"', USERS),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"', USERS),
        ("active eq false", USERS),
    ]

    def parsed(expression: str) -> Any:
        request: Any = SearchRequest.model_validate({"filter": expression})
        return request.filter.ast

    for (expression, kind), expected in indexed.items():
        assert _by_index(work, kind, parsed(expression)) == expected, expression
        endpoint = "/Users" if kind is USERS else "/Groups"
        assert _ids(h.send("GET", endpoint, query="filter=" + expression)) == expected, expression
    for expression, kind in scanned:
        assert _by_index(work, kind, parsed(expression)) is None, expression
    assert error(h.send("GET", "/Groups", query='filter=userName eq "ann@example.com"')) == (400, "invalidFilter")


def test_s7_a_user_the_host_gave_renders_whole_and_compact_under_any_base() -> None:
    """A SCIM user the host built the directory with (no stored resource) renders its userName, active,
    groups and meta, and nothing else, as compact JSON; locations under a base ending in X keep it."""
    d = Directory(
        article_org(), [User("x", scim=True, groups=["leads"], email="x@example.com")], user_names={"x": "Xavière"}
    )
    base = "https://h.example/scimX"
    out = handle(d, ScimRequest("GET", "/Users/x", base_url=base + "/"))
    assert (
        out.response.body
        == json.dumps(
            {
                "schemas": [CORE_USER],
                "id": "x",
                "userName": "Xavière",
                "active": True,
                "groups": [{"value": "leads", "$ref": f"{base}/Groups/leads", "display": "leads", "type": "direct"}],
                "meta": {"resourceType": "User", "location": f"{base}/Users/x"},
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    )


def test_s10_a_query_in_the_path_is_read_whole_blank_values_included() -> None:
    """A query given in the path is split at its first '?', so a filter value may hold one; a blank filter
    is a blank filter (400), not no filter."""
    h = host()
    h.create("a?b", "u1")
    out = h.send("GET", '/Users?filter=userName eq "a?b"')
    assert (out.response.status, _ids(out)) == (200, ["u1"])
    assert error(h.send("GET", "/Users?filter=")) == (400, "invalidFilter")
    assert error(h.send("GET", "/Users?count=1&filter=")) == (400, "invalidFilter")


def test_s7_paths_of_ids_made_of_the_characters_trimmed_around_them() -> None:
    """A user whose id is 'X' is /Users/X, not the list; a search with no body lists all and reads no query."""
    h = Host(
        Directory(
            article_org(),
            [User("X", scim=True, email="X@example.com"), User("Y", scim=True, email="Y@example.com")],
            user_names={"X": "x", "Y": "y"},
        )
    )
    assert h.send("GET", "/Users/X").response.data["id"] == "X"
    assert h.send("GET", "/Users/X/").response.data["id"] == "X"
    out = h.send("POST", "/Users/.search", None, query="count=1&filter=" + 'userName eq "x"')
    assert (out.response.status, _ids(out)) == (200, ["X", "Y"])


def test_s1_a_refusal_inside_the_service_is_a_problem_of_the_request() -> None:
    """ScimError, the service's own refusal, carries one problem naming the request and its status."""
    from scim_roles.scim._errors import ScimError  # noqa: PLC0415

    refused = ScimError(404, None, "no such user")
    assert refused.problems == (Problem("request", "status 404", "no such user"),)
