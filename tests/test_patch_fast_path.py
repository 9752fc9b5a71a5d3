"""The fast path of a user PATCH gives what the models give (S5, S12): the same state, response and changes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from unittest import mock

from hypothesis import event, given, settings
from hypothesis import strategies as st

from scim_roles import User
from scim_roles.scim import Directory, Outcome, ScimRequest, _writes, handle

from helpers import article_org

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
# Stored resources as a host may hold them: as this service writes them, bare, deprovisioned, with names, and
# ones the models refuse (a wrong type, a password that is never returned).
RESOURCES: dict[str, dict[str, Any]] = {
    "plain": {"schemas": [CORE], "userName": "plain@example.com", "active": True},
    "full": {
        "schemas": [CORE],
        "userName": "full@example.com",
        "active": True,
        "displayName": "Full",
        "name": {"givenName": "F", "familyName": "Ull"},
        "emails": [{"value": "full@example.com", "primary": True, "type": "work"}],
        "meta": {"version": 'W/"3"'},
    },
    "gone": {"schemas": [CORE], "userName": "gone@example.com", "active": False, "name": {"formatted": "G"}},
    "bare": {"userName": "bare@example.com", "active": True},
    "unsaid": {"schemas": [CORE], "userName": "unsaid@example.com"},  # active not stored: the user's state says
    "broken": {"userName": "broken@example.com", "active": True, "emails": "x"},
    "secret": {"userName": "secret@example.com", "active": True, "password": "p"},
}
PATHS = [
    "active", "Active", "ACTIVE", "displayName", "displayname", "name.givenName", "NAME.FamilyName",
    "name.middleName", "name.formatted", "name.honorificPrefix", "name", "title", "userName", "password",
    "emails", 'emails[type eq "work"].value', f"{CORE}:displayName", f"{CORE}:active", "nickName", "",
]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=4),
    st.booleans(),
    st.sampled_from(["true", "False", "TRUE", "yes", "", " ", "x@example.com"]),
    st.none(),
    st.integers(-1, 1),
    st.lists(st.text(max_size=2), max_size=1),
)


def directory() -> Directory:
    users = [
        User(uid, scim=True, deprovisioned=not resource.get("active", True), email=f"{uid}@example.com")
        for uid, resource in RESOURCES.items()
    ]
    return Directory(article_org(), users, resources=RESOURCES)


QUICK_PATHS = ["active", "Active", "displayName", "displayname", "name.givenName", "NAME.FamilyName", "name.formatted"]


def quick_value(path: str) -> st.SearchStrategy[object]:
    """A value the fast path takes for ``path``."""
    if path.lower() == "active":
        return st.one_of(st.booleans(), st.sampled_from(["true", "False", "TRUE"]))
    return st.text(min_size=1, max_size=4)


@st.composite
def operations(draw: st.DrawFn) -> dict[str, Any]:
    """Most of them of the fast path's shapes, the rest anything (near misses among them)."""
    if draw(st.sampled_from([True, True, True, False])):
        op: dict[str, Any] = {"op": draw(st.sampled_from(["replace", "Replace"]))}
        paths = draw(st.lists(st.sampled_from(QUICK_PATHS), min_size=1, max_size=3, unique_by=str.lower))
        if len(paths) == 1 and draw(st.booleans()):
            op["path"] = paths[0]
            op["value"] = draw(quick_value(paths[0]))
        else:
            op["value"] = {path: draw(quick_value(path)) for path in paths}
    else:
        op = {"op": draw(st.sampled_from(["replace", "add", "remove", "REPLACE", 1]))}
        if draw(st.booleans()):
            op["path"] = draw(st.sampled_from(PATHS))
            op["value"] = draw(VALUES)
        else:
            op["value"] = draw(
                st.one_of(st.dictionaries(st.sampled_from(PATHS), VALUES, min_size=1, max_size=3), VALUES)
            )
    if draw(st.sampled_from([False] * 9 + [True])):
        op[draw(st.sampled_from(["foo", "Path", "value"]))] = "x"
    return op


@st.composite
def bodies(draw: st.DrawFn) -> object:
    """Mostly well-formed bodies; some without their schemas, with another, with a stray key or no list."""
    body: dict[str, Any] = {"schemas": [PATCH_OP], "Operations": draw(st.lists(operations(), min_size=1, max_size=2))}
    shape = draw(st.sampled_from(["as sent"] * 8 + ["no schemas", "two schemas", "a stray key", "no list", "none"]))
    if shape == "no schemas":
        del body["schemas"]
    elif shape == "two schemas":
        body["schemas"] = [PATCH_OP, CORE]
    elif shape == "a stray key":
        body["id"] = "x"
    elif shape == "no list":
        body["Operations"] = body["Operations"][0] if body["Operations"] else {}
    elif shape == "none":
        body["Operations"] = []
    return body


def both(directory: Directory, uid: str, body: object) -> tuple[Outcome, Outcome]:
    request = ScimRequest("PATCH", f"/Users/{uid}", body, now=NOW, base_url="https://app.example.com/scim/v2")
    fast = handle(directory, request)
    with mock.patch.object(_writes, "_quick_patch", return_value=None):
        models = handle(directory, request)
    return fast, models


@settings(max_examples=400)
@given(st.sampled_from(["plain", "full", "gone", *sorted(RESOURCES)]), bodies())
def test_s12_a_patch_on_the_fast_path_gives_what_the_models_give(uid: str, body: object) -> None:
    """Any body on any stored resource: the same outcome with the fast path as through the models alone."""
    event("the fast path" if quick(directory(), uid, body) else "the models")


def quick(directory: Directory, uid: str, body: object) -> bool:
    """Whether the fast path took the request (and it agreed with the models)."""
    taken: list[bool] = []
    real = _writes._quick_patch

    def spy(*args: Any) -> Any:
        result = real(*args)
        taken.append(result is not None)
        return result

    with mock.patch.object(_writes, "_quick_patch", side_effect=spy):
        fast, models = both(directory, uid, body)
    assert fast == models
    return taken == [True]


def test_s5_the_idps_common_patches_take_the_fast_path_and_agree() -> None:
    """Entra's single-attribute replaces and Okta's path-less deactivation take the fast path; a stored resource
    the models refuse, a password, one without its schemas, an unknown attribute, an empty name and a repeated
    attribute go through the models."""
    taken = [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "displayName", "value": "Ann Lee"},
        {"op": "Replace", "path": "name.givenName", "value": "Ann"},
        {"op": "replace", "value": {"active": False}},
        {"op": "replace", "value": {"displayName": "A", "name.familyName": "Lee", "active": True}},
    ]
    d = directory()
    for uid in ("plain", "full", "gone", "unsaid"):
        for op in taken:
            assert quick(d, uid, {"schemas": [PATCH_OP], "Operations": [op]}), (uid, op)
    left = [
        ("broken", {"op": "replace", "path": "displayName", "value": "B"}),  # the models refuse it: the host's 500
        ("secret", {"op": "replace", "path": "displayName", "value": "S"}),
        ("bare", {"op": "replace", "path": "displayName", "value": "B"}),  # the models add its schemas
        ("full", {"op": "replace", "path": "title", "value": "T"}),
        ("full", {"op": "replace", "path": "displayName", "value": ""}),
        ("full", {"op": "replace", "value": {"active": False, "ACTIVE": True}}),
    ]
    for uid, op in left:
        assert not quick(d, uid, {"schemas": [PATCH_OP], "Operations": [op]}), (uid, op)


def test_s12_an_empty_path_is_an_invalid_path_not_a_crash() -> None:
    """A remove with an empty path (found by the property test above: it crashed the models' path, 500) is
    400 invalidPath on users and groups alike, and nothing changes."""
    d = directory()
    for path in ("/Users/plain", "/Groups/leads"):
        for op in ({"op": "remove", "path": "", "value": None}, {"op": "remove", "path": ""}):
            out = handle(d, ScimRequest("PATCH", path, {"schemas": [PATCH_OP], "Operations": [op]}, now=NOW))
            assert (out.response.status, out.response.data["scimType"]) == (400, "invalidPath"), (path, op)
            assert out.directory is d


USER_KEYS = [
    *["schemas", "userName", "name", "displayName", "emails", "active", "externalId", "username", "password"],
    *["groups", "id", "title", f"{CORE}:userName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
]
NAME_KEYS = ["givenName", "familyName", "middleName", "formatted", "GivenName", "honorificPrefix"]
EMAIL_KEYS = ["value", "type", "primary", "display", "Value"]
SCALARS = st.one_of(
    st.sampled_from(["ann@example.com", "ANN@example.com", "bob@example.com", "x@other.org", "", "oﬃce", "work"]),
    st.booleans(),
    st.sampled_from(["true", "False"]),
    st.none(),
    st.integers(-1, 1),
)
TEXT = st.one_of(st.text(max_size=3), st.sampled_from(["ann@example.com", "x@other.org", "work"]))
EMAIL_TYPES = ["work", "WORK", "Home", "oTHER", "İ", "", "oﬃce"]
QUICK = {  # the fast path's attributes, with values of their types
    "name": st.dictionaries(st.sampled_from(["givenName", "familyName", "middleName", "formatted"]), TEXT, max_size=3),
    "displayName": TEXT,
    "emails": st.lists(  # an empty one, a canonical type in another case: what the models drop or respell
        st.fixed_dictionaries(
            {},
            optional={"value": TEXT, "type": st.one_of(TEXT, st.sampled_from(EMAIL_TYPES)), "primary": st.booleans()},
        ),
        max_size=2,
    ),
    "active": st.booleans(),
    "externalId": TEXT,
}


@st.composite
def user_bodies(draw: st.DrawFn) -> object:
    """POST bodies: mostly of the fast path's shape (or nearly), some anything."""
    body: dict[str, Any] = {
        "schemas": [CORE],
        "userName": draw(st.sampled_from(["ann@example.com", "bob@example.com"])),
    }
    if draw(st.sampled_from([True, True, False])):
        for key in draw(st.lists(st.sampled_from(sorted(QUICK)), max_size=5, unique=True)):
            body[key] = draw(QUICK[key])
        return body
    for key in draw(st.lists(st.sampled_from(USER_KEYS), max_size=4, unique=True)):
        if key == "name":
            body[key] = draw(st.one_of(st.dictionaries(st.sampled_from(NAME_KEYS), SCALARS, max_size=3), SCALARS))
        elif key == "emails":
            email = st.dictionaries(st.sampled_from(EMAIL_KEYS), SCALARS, max_size=3)
            body[key] = draw(st.one_of(st.lists(email, max_size=2), SCALARS))
        elif key == "schemas":
            body[key] = draw(st.sampled_from([[CORE], [], [CORE, "urn:x"], CORE]))
        else:
            body[key] = draw(SCALARS)
    return body


@settings(max_examples=400)
@given(user_bodies())
def test_s1_a_post_on_the_fast_path_gives_what_the_models_give(body: object) -> None:
    """Any body: the same outcome with the fast path as through the models alone; the IdPs' own shape takes it."""
    d = directory()
    request = ScimRequest("POST", "/Users", body, new_id="new", now=NOW, base_url="https://app.example.com/scim/v2")
    taken: list[bool] = []
    real = _writes._quick_user

    def spy(given: object) -> Any:
        model = real(given)
        taken.append(model is not None)
        return model

    with mock.patch.object(_writes, "_quick_user", side_effect=spy):
        fast = handle(d, request)
    with mock.patch.object(_writes, "_quick_user", return_value=None):
        models = handle(d, request)
    assert fast == models
    event("the fast path" if taken == [True] else "the models")


def test_s1_the_idps_post_takes_the_fast_path() -> None:
    """Okta's and Entra ID's provisioning body shape is validated by its types alone."""
    okta = {
        "schemas": [CORE],
        "userName": "ann@example.com",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"primary": True, "value": "ann@example.com", "type": "work"}],
        "displayName": "Ann Lee",
        "active": True,
        "externalId": "00u1",
    }
    assert _writes._quick_user(okta) == okta
    respelled = {**okta, "name": {}, "emails": [{}, {"value": "ann@example.com", "type": "WORK"}]}
    kept = {
        key: value for key, value in okta.items() if key != "name"
    }  # an empty name is dropped, as is an empty email
    assert _writes._quick_user(respelled) == {**kept, "emails": [{"value": "ann@example.com", "type": "work"}]}
    two_primaries = [{"value": "ann@example.com", "primary": True}, {"value": "a@example.com", "primary": True}]
    others = [
        {**okta, "password": "x"},
        {**okta, "active": "true"},
        {**okta, "groups": []},
        [okta],
        {**okta, "name": {"givenName": "Ann", "honorificPrefix": "Dr"}},
        {**okta, "name": "Ann"},
        {**okta, "emails": [{"value": "ann@example.com", "display": "Ann"}]},
        {**okta, "emails": ["ann@example.com"]},
        {**okta, "emails": two_primaries},
        {**okta, "displayName": 1},  # the types refuse it: the models say why
        {**okta, "externalId": None},
        {**okta, "name": {"givenName": 1}},
        {**okta, "emails": [{"value": 1}]},
        {**okta, "emails": [{"value": "ann@example.com", "primary": "true"}]},
    ]
    for other in others:
        assert _writes._quick_user(other) is None, other
