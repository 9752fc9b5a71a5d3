"""Okta and Entra ID lifecycles, replayed request by request from tests/recordings/."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from scim_roles import Grant, Role, User, resolve_memberships
from scim_roles.scim import Directory

from helpers import article_org
from scim_helpers import RECORDINGS, Host, described, subset


def start(recording: dict[str, Any]) -> Host:
    users = [
        User(
            u["id"],
            saml=u.get("saml", False),
            manual=[Grant(g["team"], Role(g["role"])) for g in u.get("manual", [])],
            email=u["userName"],
        )
        for u in recording["users"]
    ]
    names = {u["id"]: u["userName"] for u in recording["users"]}
    org = article_org(manual_edits=recording.get("manual_edits", False))
    org = attrs.evolve(org, domains=recording.get("domains", org.domains))  # the domains the IdP's users are in
    return Host(Directory(org, users, user_names=names))


@pytest.mark.parametrize("name", ["okta", "entra"])
def test_s1_s12_idp_lifecycles_replay(name: str) -> None:
    """Each recorded request gets the recorded status, body and changes; no deprovisioned user keeps access."""
    recording = json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))
    host = start(recording)
    for number, step in enumerate(recording["steps"]):
        request, expect = step["request"], step["expect"]
        out = host.send(
            request["method"],
            request["path"],
            request.get("body"),
            query=request.get("query", ""),
            new_id=request.get("new_id"),
        )
        label = f"{name} step {number} ({step['note']})"
        assert out.response.status == expect["status"], (label, out.response.data)
        if "changes" in expect:
            assert described(out) == expect["changes"], label
        if "body" in expect:
            subset(expect["body"], out.response.data, label)
        for key in expect.get("absent", []):
            assert key not in out.response.data, label
        for uid in expect.get("deleted", []):
            assert uid not in host.directory.users
            assert out.touched[uid] is None
        for user in host.directory.users.values():
            res = resolve_memberships(host.directory.org, user)
            assert not (user.deprovisioned and res.memberships), label
