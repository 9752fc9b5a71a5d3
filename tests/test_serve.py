"""`scim-roles serve` and the ASGI app on a real HTTP server: lifecycles, crashes, concurrent clients."""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest

from scim_roles import Grant, Role, User
from scim_roles.asgi import ScimApp
from scim_roles.store import SqliteStore

from helpers import article_org, run_module
from scim_helpers import RECORDINGS, subset
from serve_helpers import ROOT, TOKEN, free_port, kill_9_during, request, serve_process, serve_thread

ORG = ROOT / "examples" / "org.json"


def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    """No SCIM_ROLES_TOKEN (or a blank one): exit 2, one line, nothing created; a bad org document: exit 1."""
    base = {k: v for k, v in os.environ.items() if k != "SCIM_ROLES_TOKEN"}
    for env in (base, {**base, "SCIM_ROLES_TOKEN": "  "}):
        done = run_module("serve", str(ORG), "--db", str(tmp_path / "s.db"), env=env)
        assert done.returncode == 2
        assert done.stderr.startswith(b"scim-roles: set SCIM_ROLES_TOKEN")
        assert b"Traceback" not in done.stderr
    assert not (tmp_path / "s.db").exists()
    (tmp_path / "bad.json").write_text('{"teams": []}', encoding="utf-8")
    env = {**base, "SCIM_ROLES_TOKEN": "t"}
    done = run_module("serve", str(tmp_path / "bad.json"), "--db", str(tmp_path / "s.db"), env=env)
    assert done.returncode == 1
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["okta", "entra"])
def test_s1_s12_t1_idp_lifecycles_over_http_with_a_restart(name: str, tmp_path: Path) -> None:
    """Each recorded request, sent over HTTP to a real server, gets the recorded status and body, the server
    restarted from the file halfway (T1); the membership table ends as the recorded changes say, and the
    state checks clean."""
    recording = json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))
    path = tmp_path / "state.db"
    org = article_org(manual_edits=recording.get("manual_edits", False))
    org = attrs.evolve(org, domains=recording.get("domains", org.domains))  # the domains the IdP's users are in
    with SqliteStore(path, org) as store:
        for u in recording["users"]:
            grants = [Grant(g["team"], Role(g["role"])) for g in u.get("manual", [])]
            user = User(u["id"], saml=u.get("saml", False), manual=grants, email=u["userName"])
            store.put_user(user, user_name=u["userName"])
        expected: dict[str, dict[str, str]] = {uid: dict(roles) for uid, roles in _roles(store).items()}
    steps = list(enumerate(recording["steps"]))
    for part in (steps[: len(steps) // 2], steps[len(steps) // 2 :]):
        minted: list[str] = []
        with SqliteStore(path) as store:  # a new process's view: nothing but the file
            app = ScimApp(store, token=TOKEN, base_path="/scim/v2", mint_id=minted.pop)
            with serve_thread(app) as base:
                for number, step in part:
                    req, expect = step["request"], step["expect"]
                    minted.append(req.get("new_id", f"unused-{number}"))
                    target = req["path"] + ("?" + req["query"] if req.get("query") else "")
                    status, body = request(base + "/scim/v2", req["method"], target, req.get("body"))
                    label = f"{name} step {number} ({step['note']})"
                    assert status == expect["status"], (label, body)
                    if "body" in expect:
                        subset(expect["body"], body, label)
                    for change in expect.get("changes", []):
                        _apply(expected, change)
    with SqliteStore(path) as store:
        assert _roles(store) == {uid: roles for uid, roles in expected.items() if roles}
        assert store.check() == ()


def _roles(store: SqliteStore) -> dict[str, dict[str, str]]:
    return {uid: {team: role.label for team, role in teams.items()} for uid, teams in store.memberships().items()}


def _apply(expected: dict[str, dict[str, str]], change: str) -> None:
    """Apply one described change: 'u: added to eng as Member', 'u: eng Member -> Team Admin', 'u: removed from ...'."""
    uid, _, what = change.partition(": ")
    roles = expected.setdefault(uid, {})
    if what.startswith("added to "):
        team, _, role = what.removeprefix("added to ").partition(" as ")
        roles[team] = role
    elif what.startswith("removed from "):
        roles.pop(what.removeprefix("removed from ").split(" (")[0])
    else:
        team, _, moves = what.partition(" ")
        roles[team] = moves.split(" -> ")[1]


@pytest.mark.processes
def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    """A server killed mid-stream (SIGKILL, at random moments) loses no write it answered, and its state loads."""
    db = tmp_path / "state.db"
    acknowledged: list[str] = []
    rng = random.Random(7)  # noqa: S311 -- timings, not secrets
    for round_ in range(3):
        port = free_port()
        with serve_process(ORG, db, port) as process:
            base = f"http://127.0.0.1:{port}/scim/v2"

            def writer(stop: threading.Event, base: str = base, round_: int = round_) -> None:
                for i in range(100_000):
                    if stop.is_set():
                        return
                    name = f"r{round_}-user{i}@example.com"
                    try:
                        status, _ = request(base, "POST", "/Users", {"userName": name}, timeout=5)
                    except (OSError, http.client.HTTPException):
                        return  # the server died under this request (mid-answer too): not acknowledged
                    if status == 201:
                        acknowledged.append(name)

            kill_9_during(process, writer, rng)
    assert len(acknowledged) > 20
    port = free_port()
    with serve_process(ORG, db, port):
        base = f"http://127.0.0.1:{port}/scim/v2"
        status, listed = request(base, "GET", "/Users?count=1000&attributes=userName")
        assert status == 200
        stored = {r["userName"] for r in listed["Resources"]}
        total = listed["totalResults"]
        start = 1001
        while start <= total:
            page = request(base, "GET", f"/Users?count=1000&startIndex={start}&attributes=userName")[1]
            stored |= {r["userName"] for r in page["Resources"]}
            start += 1000
    assert set(acknowledged) <= stored


def _client_requests(client: int) -> list[tuple[str, str, Any]]:
    """200 mixed requests of one client: its own users, shared groups; order within the client matters only."""
    rng = random.Random(client)  # noqa: S311 -- test data
    names = [f"c{client}-u{i}@example.com" for i in range(10)]
    out: list[tuple[str, str, Any]] = [("POST", "/Users", {"userName": name}) for name in names]
    groups = ["okta-eng-leads", "okta-marketing", "okta-everyone", "okta-it-admins"]
    while len(out) < 200:
        name = rng.choice(names)
        kind = rng.randrange(5)
        if kind == 0:
            active = {"op": "replace", "path": "active", "value": rng.random() < 0.6}
            out.append(("PATCH", f"/Users/user:{name}", {"Operations": [active]}))
        elif kind == 1:
            shown = {"op": "replace", "path": "displayName", "value": str(rng.random())}
            out.append(("PATCH", f"/Users/user:{name}", {"Operations": [shown]}))
        elif kind == 2:
            member = {"op": rng.choice(["add", "remove"]), "path": "members", "value": [{"value": f"user:{name}"}]}
            out.append(("PATCH", f"/Groups/{rng.choice(groups)}", {"Operations": [member]}))
        else:
            out.append(("GET", f'/Users?filter=userName eq "{name}"', None))
    return out


def _run(
    base: str, requests_: list[tuple[str, str, Any]], ids: dict[str, str], lock: threading.Lock, errors: list[str]
) -> None:
    for method, planned_path, planned_body in requests_:
        with lock:
            text = json.dumps([planned_path, planned_body])
            for name, uid in ids.items():
                text = text.replace(f"user:{name}", uid)
        path, body = json.loads(text)
        status, data = request(base, method, path, body)
        if status not in (200, 201, 204):
            errors.append(f"{method} {path}: {status} {data}")
        if status == 201:
            with lock:
                ids[data["userName"]] = data["id"]


def _state(base: str, store_path: Path) -> Any:
    """The final state by userName: active, display name, groups, access."""
    users = request(base, "GET", "/Users?count=1000")[1]["Resources"]
    store = SqliteStore(store_path, readonly=True)
    access = store.memberships()
    return sorted(
        (
            u["userName"],
            u.get("active", True),
            u.get("displayName"),
            sorted(g["value"] for g in u.get("groups", [])),
            sorted((t, r.value) for t, r in access.get(u["id"], {}).items()),
        )
        for u in users
    )


@pytest.mark.processes
def test_concurrent_clients_lose_no_update(tmp_path: Path) -> None:
    """8 clients x 200 mixed requests at once end in the same state as the same requests one client after another."""
    plans = [_client_requests(c) for c in range(8)]
    finals = []
    for concurrent in (True, False):
        db = tmp_path / f"state-{concurrent}.db"
        port = free_port()
        with serve_process(ORG, db, port):
            base = f"http://127.0.0.1:{port}/scim/v2"
            ids: dict[str, str] = {}
            lock = threading.Lock()
            errors: list[str] = []
            if concurrent:
                threads = [threading.Thread(target=_run, args=(base, plan, ids, lock, errors)) for plan in plans]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=300)
            else:
                for plan in plans:
                    _run(base, plan, ids, lock, errors)
            assert errors == []
            assert len(ids) == 80
            finals.append(_state(base, db))
    assert finals[0] == finals[1]
