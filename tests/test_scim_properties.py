"""Random SCIM request sequences: after each, the indexes, the resolutions and atomicity hold (S5, S7, S12)."""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from scim_roles import Change, Grant, Resolution, Role, User, diff, resolve_memberships
from scim_roles.scim import Directory

from helpers import OPS, article_org
from scim_helpers import GROUPS, IDS, Host, requests


class ScimLife(RuleBasedStateMachine):
    """An IdP sending random valid and invalid requests, one after another, to a host that mints ids."""

    def __init__(self) -> None:
        super().__init__()
        users = [
            User("saml1", saml=True, manual=[Grant(OPS, Role.TEAM_ADMIN)], email="saml1@example.com"),
            User("man1", manual=[Grant(OPS, Role.MEMBER)]),
        ]
        self.host = Host(Directory(article_org(manual_edits=True), users, user_names={"saml1": "sam", "man1": "ann"}))
        self.minted = 0

    @rule(request=requests(), toggle=st.booleans())
    def send(self, request: tuple[str, str, Any, str], toggle: bool) -> None:  # noqa: FBT001
        """Refused: the same directory, no changes. Accepted: changes and touched are exactly what changed."""
        method, path, body, query = request
        before = self.host.directory
        if toggle and method == "POST":
            new_id = IDS[self.minted % 3] if path == "/Users" else GROUPS[4 + self.minted % 2]
            taken = before.users if path == "/Users" else {g.id for g in before.org.groups}
            if new_id in taken:
                new_id = f"n{self.minted}"
        else:
            new_id = f"n{self.minted}"
        self.minted += 1
        out = self.host.send(method, path, body, query=query, new_id=new_id)
        status = out.response.status
        if status >= 400 or method == "GET":
            assert out.directory is before
            assert (out.changes, dict(out.touched)) == ((), {})
            assert out.response.data["schemas"]
            return
        after = out.directory
        changed = {uid for uid in set(before.users) | set(after.users) if before.users.get(uid) != after.users.get(uid)}
        assert changed <= set(out.touched)
        expected: list[Change] = []
        for uid in sorted(out.touched):
            user = after.users.get(uid)
            resolution = resolve_memberships(after.org, user) if user is not None else None
            assert out.touched[uid] == resolution
            old = before.users.get(uid)
            old_res = resolve_memberships(before.org, old) if old is not None else Resolution(uid, ())
            expected += diff(old_res, resolution if resolution is not None else Resolution(uid, ()))
        assert out.changes == tuple(expected)
        for uid in set(before.users) - set(out.touched):  # everyone else: the same access
            assert resolve_memberships(before.org, before.users[uid]) == resolve_memberships(
                after.org, after.users[uid]
            )

    @invariant()
    def indexes_match_a_fresh_build(self) -> None:
        """The directory a request leaves equals the one its public state builds: members, userNames, keys."""
        d = self.host.directory
        rebuilt = pickle.loads(pickle.dumps(d))  # noqa: S301 -- our own state, through the constructor
        assert rebuilt == d
        assert rebuilt._keys == d._keys
        for gid in {g.id for g in d.org.groups}:
            assert set(d.members(gid)) == {u.id for u in d.users.values() if gid in u.groups}

    @invariant()
    def deactivated_users_have_nothing(self) -> None:
        """S5, R10: no deprovisioned user has access; what reads say of active is the state."""
        d = self.host.directory
        for user in d.users.values():
            if user.deprovisioned:
                assert resolve_memberships(d.org, user).memberships == ()
                assert not user.manual
                assert not user.saml
            if user.scim:
                assert (d.resource(user.id) or {}).get("active", True) is (not user.deprovisioned)


test_s12_scim_request_sequences = ScimLife.TestCase
