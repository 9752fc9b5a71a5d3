"""Fuzz target: the SCIM request handler, fed generated bodies, paths and queries (Python 3.11+)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from scim_roles import Grant, Role, User
from scim_roles.scim import Directory, ScimRequest, handle

from helpers import OPS, article_org, mutated, values
from scim_helpers import RECORDINGS, START

BODIES = [
    step["request"]["body"]
    for name in ("okta", "entra")
    for step in json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))["steps"]
    if step["request"].get("body") is not None
]
PATHS = [
    "/Users", "/Users/u1", "/Users/u2", "/Users/s", "/Users/.search", "/Groups", "/Groups/leads", "/Groups/it-admins",
    "/Groups/.search", "/Schemas", "/ResourceTypes/User", "/ServiceProviderConfig", "/Teams", "/Bulk", "/",
    "/Users/%ff", "/Users/u1?attributes=userName", "/Users/a%2Fb", "//", "/Users/u1/x",
]  # fmt: skip
QUERIES = [
    "",
    'filter=userName eq "ann"',
    "filter=(((",
    "startIndex=-5&count=99999",
    "attributes=&excludedAttributes=,",
]
DIRECTORY = Directory(
    article_org(manual_edits=True),
    [
        User("u1", scim=True, groups=["leads"], email="u1@example.com"),
        User("u2", scim=True, deprovisioned=True, email="u2@example.com"),
        User("s", saml=True, manual=[Grant(OPS, Role.TEAM_ADMIN)], email="s@example.com"),
    ],
    user_names={"u1": "ann", "u2": "bob", "s": "sam"},
)


@given(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get", "FROB"]),
    st.sampled_from(PATHS),
    st.one_of(st.none(), values(), st.sampled_from(BODIES).flatmap(mutated)),
    st.sampled_from(QUERIES),
)
def test_fuzz_scim_handle(method: str, path: str, body: Any, query: str) -> None:
    """handle answers every request with a response, never an exception; a refusal leaves the state as it was."""
    out = handle(DIRECTORY, ScimRequest(method, path, body, query=query, new_id="n1", now=START))
    status = out.response.status
    assert status in (200, 201, 204, 400, 404, 405, 409, 501), out.response.data
    if status >= 400:
        assert out.directory is DIRECTORY
        assert out.response.data["status"] == str(status)
    elif status != 204:
        json.loads(out.response.body)
