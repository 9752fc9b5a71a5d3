"""A tiny host for the SCIM tests: a clock, minted ids, and one request at a time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

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
        self.ticks += 1
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
