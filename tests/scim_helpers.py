"""What the SCIM tests share: a tiny host (a clock, minted ids, one request at a time), the recorded IdP
lifecycles, and generated request sequences."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from scim_roles import resolve_memberships
from scim_roles.scim import Directory, Outcome, ScimRequest, handle

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


class Host:
    """Sends requests to ``handle`` the way a host does, keeping the state it answers with."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.ticks = 0
        self.last: Outcome | None = None

    def send(self, method: str, path: str, body: Any = None, *, query: str = "", new_id: str | None = None) -> Outcome:
        """Send a request; a user's POST or PUT whose plain userName is no email gets a primary email (S13).

        ``{userName}@example.com``, in the domain the test orgs claim, unless
        the body gives ``emails`` itself: the tests of other rules send plain
        names, the tests of S13 send emails of their own.
        """
        self.ticks += 1
        if method in ("POST", "PUT") and path.startswith("/Users") and isinstance(body, dict):
            name = body.get("userName")
            if isinstance(name, str) and "@" not in name and "emails" not in body:
                body = {**body, "emails": [{"value": f"{name}@example.com", "primary": True}]}
        request = ScimRequest(
            method,
            path,
            body,
            query=query,
            new_id=new_id,
            now=START + timedelta(seconds=self.ticks),
            base_url="https://app.example.com/scim/v2",
        )
        out = handle(self.directory, request)
        self.directory = out.directory
        self.last = out
        return out

    def create(self, user_name: str, uid: str, **attributes: Any) -> Outcome:
        out = self.send("POST", "/Users", {"userName": user_name, **attributes}, new_id=uid)
        assert out.response.status == 201, out.response.data
        return out

    def roles(self, uid: str) -> dict[str, Any]:
        return {
            team: role.name
            for team, role in resolve_memberships(self.directory.org, self.directory.users[uid]).roles.items()
        }


def described(out: Outcome) -> list[str]:
    return [c.describe() for c in out.changes]


# -- recorded lifecycles

RECORDINGS = Path(__file__).with_name("recordings")


def subset(expected: Any, got: Any, where: str = "body") -> None:
    """Every key and list item of ``expected`` is in ``got``, recursively."""
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: {got!r}"
        for key, value in expected.items():
            assert key in got, f"{where}.{key} missing from {got!r}"
            subset(value, got[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list), f"{where}: {got!r}"
        assert len(expected) <= len(got), f"{where}: {got!r}"
        for i, (want, have) in enumerate(zip(expected, got, strict=False)):
            subset(want, have, f"{where}[{i}]")
    else:
        assert expected == got, f"{where}: {got!r} != {expected!r}"


# -- generated requests

IDS = ["u0", "u1", "u2", "saml1", "man1", "ghost", "a/b"]
GROUPS = ["leads", "marketing", "everyone", "it-admins", "g0", "g1", "nosuch"]
NAMES = ["ann", "ANN", "Ann ", "bob", "josé", unicodedata.normalize("NFD", "JOSÉ"), "maße", "MASSE", "oﬃce", "sam"]
ACTIVE = [True, False, "True", "False", "FALSE", "no", 0]
ACTIVE_KEYS = ["active", "Active", "ACTIVE", CORE_USER + ":active"]


def members() -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.builds(lambda v: {"value": v}, st.sampled_from(IDS)), max_size=3)


def user_operations() -> st.SearchStrategy[dict[str, Any]]:
    ops = st.sampled_from(["add", "replace", "Replace", "remove"])
    return st.one_of(
        st.builds(
            lambda o, k, v: {"op": o, "path": k, "value": v}, ops, st.sampled_from(ACTIVE_KEYS), st.sampled_from(ACTIVE)
        ),
        st.builds(
            lambda k, v: {"op": "replace", "value": {k: v}}, st.sampled_from(ACTIVE_KEYS), st.sampled_from(ACTIVE)
        ),
        st.builds(lambda v: {"op": "replace", "path": "userName", "value": v}, st.sampled_from(NAMES)),
        st.just({"op": "replace", "path": "name.givenName", "value": "G"}),
        st.just({"op": "replace", "path": "password", "value": "pw"}),
        st.just({"op": "replace", "value": {CORE_USER + ":password": "pw"}}),
    )


def group_operations() -> st.SearchStrategy[dict[str, Any]]:
    ops = st.sampled_from(["add", "remove", "replace", "Add", "Remove"])
    return st.one_of(
        st.builds(lambda o, v: {"op": o, "path": "members", "value": v}, ops, members()),
        st.builds(lambda v: {"op": "remove", "path": f'members[value eq "{v}"]'}, st.sampled_from(IDS)),
        st.just({"op": "remove", "path": "members"}),
        st.builds(lambda o, v: {"op": o, "value": {"members": v, "displayName": "x"}}, ops, members()),
        st.builds(lambda v: {"op": "replace", "path": "displayName", "value": v}, st.sampled_from(NAMES)),
    )


def requests() -> st.SearchStrategy[tuple[str, str, Any, str]]:
    uid = st.sampled_from(IDS)
    gid = st.sampled_from(GROUPS)
    return st.one_of(
        st.builds(
            lambda n, a, k: ("POST", "/Users", {"userName": n, k: a}, ""),
            st.sampled_from(NAMES),
            st.sampled_from(ACTIVE),
            st.sampled_from(ACTIVE_KEYS),
        ),
        st.builds(
            lambda u, n, a: ("PUT", f"/Users/{u}", {"userName": n, "active": a}, ""),
            uid,
            st.sampled_from(NAMES),
            st.sampled_from(ACTIVE),
        ),
        st.builds(
            lambda u, o: ("PATCH", f"/Users/{u}", patch(*o), ""),
            uid,
            st.lists(user_operations(), min_size=1, max_size=3),
        ),
        st.builds(lambda u: ("DELETE", f"/Users/{u}", None, ""), uid),
        st.builds(lambda m: ("POST", "/Groups", {"displayName": "new", "members": m}, ""), members()),
        st.builds(lambda g, m: ("PUT", f"/Groups/{g}", {"displayName": g, "members": m}, ""), gid, members()),
        st.builds(
            lambda g, o: ("PATCH", f"/Groups/{g}", patch(*o), ""),
            gid,
            st.lists(group_operations(), min_size=1, max_size=3),
        ),
        st.builds(lambda g: ("DELETE", f"/Groups/{g}", None, ""), gid),
        st.builds(lambda n: ("GET", "/Users", None, f'filter=userName eq "{n}"'), st.sampled_from(NAMES)),
        st.builds(lambda g: ("GET", f"/Groups/{g}", None, "excludedAttributes=members"), gid),
    )
