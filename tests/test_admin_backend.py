"""The example admin backend (examples/admin_backend), over FastAPI's TestClient and a real SQLite file.

FastAPI's TestClient needs httpx2; the dev extra installs both.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from types import ModuleType

from fastapi.testclient import TestClient

from scim_roles.io import load_org

from helpers import example_module
from serve_helpers import ROOT

ORG = load_org(json.loads((ROOT / "examples" / "org.json").read_text(encoding="utf-8")))
SCIM = {"Authorization": "Bearer scim-token"}


def backend() -> ModuleType:
    return example_module("admin_backend", "admin_backend/app.py")


def test_the_admin_backend_end_to_end(tmp_path: Path) -> None:
    """SCIM in, access with reasons out, locked edits refused, risky settings refused until confirmed, drift found."""
    db = str(tmp_path / "admin.db")
    client = TestClient(backend().create_app(db, ORG, "scim-token"))
    ann = client.post("/scim/v2/Users", json={"userName": "ann@example.com"}, headers=SCIM).json()["id"]
    members = {"Operations": [{"op": "add", "path": "members", "value": [{"value": ann}]}]}
    assert client.patch("/scim/v2/Groups/okta-it-admins", json=members, headers=SCIM).status_code == 200
    access = client.get(f"/users/{ann}/access").json()
    assert (access["user_id"], access["org_admin"], access["locked"]) == (ann, True, True)
    assert access["memberships"][0]["reasons"][0]["text"] == "IdP group 'okta-it-admins' (Org Admin)"
    assert client.get("/users/nobody/access").status_code == 404
    grants = [{"team": "ops", "role": "team_admin"}]
    assert client.put(f"/users/{ann}/manual", json=grants).status_code == 409  # R8: locked
    sam = client.put("/users/sam/manual?user_name=sam@example.com", json=grants).json()  # an invite
    assert [m["team"] for m in sam["memberships"]] == ["ops"]
    bad = client.put("/users/sam/manual", json=[{"team": "nosuch", "role": "member"}])
    assert (bad.status_code, bad.json()["detail"][0]["text"]) == (
        422,
        "user 'sam': manual: grant on unknown team 'nosuch'",
    )
    as_sam, as_ann = {"X-Acting-User": "sam"}, {"X-Acting-User": ann}
    not_admin = client.put("/settings/manual-edits", json={"on": True}, headers=as_sam)  # R15: sam is no org admin
    assert (not_admin.status_code, not_admin.json()["detail"][0]["text"]) == (
        403,
        "put_org: actor: user 'sam' is no org admin; settings are an org admin's (R15)",
    )
    unlocked = client.put("/settings/manual-edits", json={"on": True}, headers=as_ann)
    assert unlocked.status_code == 200
    assert unlocked.json()["states"] == [
        {"user": ann, "state": "locked", "before": True, "after": False, "text": f"{ann}: unlocked"}
    ]
    assert client.put(f"/users/{ann}/manual", json=grants).status_code == 200  # no longer locked
    demote = {"teams": ["it"], "role": "team_admin"}
    refused = client.put("/settings/groups/okta-it-admins", json=demote, headers=as_ann)
    assert refused.status_code == 409
    assert {f["kind"] for f in refused.json()["detail"]["findings"]} >= {"no_org_admin", "loses_org_admin"}
    assert client.get(f"/users/{ann}/access").json()["org_admin"] is True  # nothing saved
    saved = client.put("/settings/groups/okta-it-admins?confirm=true", json=demote, headers=as_ann)
    assert saved.status_code == 200
    assert client.get(f"/users/{ann}/access").json()["org_admin"] is False
    assert client.get("/drift").json() == []
    assert client.get(f"/app/access/{ann}").json() == {"it": "team_admin", "ops": "team_admin"}  # mirrored (T7)
    assert client.get("/app/access/sam").json() == {"ops": "team_admin"}
    with closing(sqlite3.connect(db + ".app")) as own:
        mirrored = own.execute("SELECT user_id, team, role FROM access ORDER BY 1, 2").fetchall()
    with closing(sqlite3.connect(db)) as state:
        assert mirrored == state.execute("SELECT user_id, team, role FROM memberships ORDER BY 1, 2").fetchall()
    with closing(sqlite3.connect(db)) as tampered, tampered:
        tampered.execute("UPDATE memberships SET role = 'org_admin' WHERE user_id = 'sam'")
    assert client.get("/drift").json() == [
        "membership: user 'sam' on team 'ops': stored Org Admin, the rules give Team Admin",
        "feed: user 'sam' on team 'ops': the feed gives Team Admin, stored Org Admin",
    ]
    again = TestClient(backend().create_app(db, None, "scim-token"))  # restarted: settings kept in the file
    assert again.get(f"/users/{ann}/access").json()["locked"] is False
