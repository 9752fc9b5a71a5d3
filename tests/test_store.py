"""scim_roles.store.SqliteStore: what is committed is what is loaded back, from a real SQLite file."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_roles import Grant, IdpGroup, InvalidOrg, InvalidUser, Role, User, resolve_all, to_builtins
from scim_roles import store as store_module
from scim_roles.scim import ScimRequest, handle
from scim_roles.store import SettingsDiffer, Snapshot, SqliteStore, StoreUnavailable

from helpers import OPS, article_org
from scim_helpers import patch, requests
from serve_helpers import behind_the_store, send


@settings(max_examples=25)
@given(st.lists(st.tuples(requests(), st.booleans()), min_size=1, max_size=12), st.booleans())
def test_s12_a_reopened_store_holds_exactly_what_was_committed(steps: list[Any], toggle: bool) -> None:  # noqa: FBT001
    """After any request sequence, a fresh store on the same file loads an equal directory, its
    memberships table equals every user's resolution, and check finds nothing: the rows a load takes
    unchecked are what the directory's own checks give."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        store = SqliteStore(path, article_org(manual_edits=toggle))
        for i, ((method, target, body, query), _) in enumerate(steps):
            send(store, method, target, body, new_id=f"n{i}", query=query)
        live = store.load().directory
        again = SqliteStore(path, article_org(manual_edits=toggle))
        loaded = again.load().directory
        assert loaded == live
        resolved = resolve_all(loaded.org, loaded.users.values())
        expected = {uid: dict(res.roles) for uid, res in resolved.items() if res.memberships}
        assert again.memberships() == expected
        assert again.check() == ()  # what a load takes unchecked is what the checks give
        store.close()
        again.close()


def test_t4_the_documents_groups_are_synced_and_pushed_groups_are_mapped_by_an_edit(tmp_path: Path) -> None:
    """Groups the org document maps exist from the start; pushed groups are blank until an edit maps them.
    Reopening with the seeding document (pushed groups aside) is fine; with another one it is refused (T4)."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "POST", "/Groups", {"displayName": "Design", "members": [{"value": "u1"}]}, new_id="g-design")
    assert store.load().directory.org.group("g-design") == IdpGroup("g-design")
    assert SqliteStore(path, article_org()).org == store.org  # the document it was seeded with, and a pushed group
    org = article_org()
    mapped = attrs.evolve(org, groups=[*org.groups, IdpGroup("g-design", teams=[OPS], role=Role.TEAM_ADMIN)])
    with pytest.raises(SettingsDiffer, match="scim-roles edit"):
        SqliteStore(path, mapped)
    store.put_org(mapped, actor=None)
    reopened = SqliteStore(path, mapped).load().directory
    assert reopened.org.group("g-design").role is Role.TEAM_ADMIN
    assert reopened.group_resource("g-design") is not None
    assert reopened.group_resource("g-design")["displayName"] == "Design"  # type: ignore[index]


def test_a_commit_against_an_old_snapshot_is_refused(tmp_path: Path) -> None:
    """Compare-and-swap: two writers on one file; the one that loaded first and commits second loses."""
    path = tmp_path / "s.db"
    first, second = SqliteStore(path, article_org()), SqliteStore(path, article_org())
    a, b = first.load(), second.load()
    out_a = handle(a.directory, ScimRequest("POST", "/Users", {"userName": "ann@example.com"}, new_id="u1"))
    out_b = handle(b.directory, ScimRequest("POST", "/Users", {"userName": "ann@example.com"}, new_id="u2"))
    assert first.commit(a, out_a)
    assert not second.commit(b, out_b)
    fresh = second.load()
    assert fresh.version == a.version + 1
    assert set(fresh.directory.users) == {"u1"}
    assert first.load() is first.load()  # cached while the version stands


def test_readonly_opens_never_write(tmp_path: Path) -> None:
    """A read-only store reads the live state; it refuses to commit and never creates a file."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    reader = SqliteStore(path, article_org(), readonly=True)
    snapshot = reader.load()
    assert set(snapshot.directory.users) == {"u1"}
    out = handle(snapshot.directory, ScimRequest("DELETE", "/Users/u1"))
    with pytest.raises(StoreUnavailable, match="readonly"):
        reader.commit(snapshot, out)
    assert set(SqliteStore(path, readonly=True).load().directory.users) == {"u1"}
    with pytest.raises(StoreUnavailable, match="unable to open database file"):
        SqliteStore(tmp_path / "missing.db", article_org(), readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_t6_stored_state_that_no_longer_fits_its_settings_is_refused_and_reported(tmp_path: Path) -> None:
    """Settings written behind the store's back that drop a team still granted by hand: the edit that would
    do it is refused; a load says InvalidUser naming it; check() reports it as drift."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    store.put_user(User("m", manual=[Grant(OPS, Role.MEMBER)]))
    org = article_org()
    smaller = attrs.evolve(
        org, teams=[t for t in org.teams if t.id != OPS], groups=[g for g in org.groups if OPS not in g.teams]
    )
    with pytest.raises(InvalidUser, match="user 'm': manual: has a manual grant on 'ops'"):
        store.put_org(smaller, actor=None)
    with behind_the_store(path) as db:  # another writer, not through the store
        db.execute("UPDATE tenants SET settings = ?, version = version + 1", (json.dumps(to_builtins(smaller)),))
    with pytest.raises(InvalidUser, match="unknown team 'ops'"):
        SqliteStore(path).load()
    assert [str(d) for d in store.check()] == ["state: user 'm': manual: grant on unknown team 'ops'"]


def test_member_displays_and_renames_survive_a_reopen(tmp_path: Path) -> None:
    """What a group PATCH changes without changing access (display, displayName) is stored too."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(
        store,
        "PATCH",
        "/Groups/leads",
        patch({"op": "add", "path": "members", "value": [{"value": "u1", "display": "A"}]}),
    )
    send(
        store,
        "PATCH",
        "/Groups/leads",
        patch({"op": "add", "path": "members", "value": [{"value": "u1", "display": "B"}]}),
    )
    send(store, "PATCH", "/Groups/leads", patch({"op": "replace", "path": "displayName", "value": "Leads"}))
    send(store, "PATCH", "/Users/u1", patch({"op": "replace", "path": "userName", "value": "ann2@example.com"}))
    loaded = SqliteStore(path, article_org()).load().directory
    assert dict(loaded.members("leads")) == {"u1": "B"}
    assert loaded.group_resource("leads")["displayName"] == "Leads"  # type: ignore[index]
    assert loaded.user_name("u1") == "ann2@example.com"
    send(store, "PATCH", "/Groups/leads", patch({"op": "replace", "path": "members", "value": [{"value": "u1"}]}))
    assert dict(SqliteStore(path, article_org()).load().directory.members("leads")) == {"u1": None}  # display gone
    send(store, "DELETE", "/Groups/leads")
    send(store, "DELETE", "/Users/u1")
    loaded = SqliteStore(path, article_org()).load().directory
    assert loaded.users == {}
    assert "leads" not in {g.id for g in loaded.org.groups}  # deleted by the IdP: not synced again


def test_t1_a_write_rewrites_only_what_changed_of_a_users_grants_and_member_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's manual grants and member rows that did not change are not written again (on PostgreSQL each
    statement is a round trip); what did change is (the test above reopens it)."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    ran: list[Any] = []
    real_run = store_module._run

    def spy(conn: Any, statement: Any, params: Any) -> Any:
        ran.append(statement)
        return real_run(conn, statement, params)

    monkeypatch.setattr(store_module, "_run", spy)
    send(store, "PATCH", "/Users/u1", patch({"op": "replace", "path": "displayName", "value": "Ann"}))
    rows_of_grants_and_groups = {
        store_module._Sql.DELETE_MANUAL,
        store_module._Sql.ADD_MANUAL,
        store_module._Sql.DELETE_MEMBER,
        store_module._Sql.PUT_MEMBER,
    }
    assert store_module._Sql.PUT_USER in ran
    assert not rows_of_grants_and_groups.intersection(ran)
    store.close()


def test_put_user_saves_an_app_edit_and_its_membership_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """put_user: the user and their memberships written; retried when another commit won the race."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    real_commit = store.commit
    calls: list[int] = []

    def once_refused(snapshot: Snapshot, outcome: Any, *, origin: str) -> bool:
        calls.append(1)
        return len(calls) > 1 and real_commit(snapshot, outcome, origin=origin)

    monkeypatch.setattr(store, "commit", once_refused)
    resolution = store.put_user(
        User("a", saml=True, manual=[Grant(OPS, Role.TEAM_ADMIN)], email="a@example.com"), user_name="ann"
    )
    assert (dict(resolution.roles), len(calls)) == ({OPS: Role.TEAM_ADMIN}, 2)
    assert store.memberships() == {"a": {OPS: Role.TEAM_ADMIN}}
    store.put_user(User("a", saml=True, email="a@example.com"))
    assert store.memberships() == {"a": {"eng": Role.MEMBER}}
    assert SqliteStore(tmp_path / "s.db", article_org()).load().directory.user_name("a") == "ann"


def test_put_org_saves_settings_and_their_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """put_org: the settings and the preview's changes written; kept across a reopen; retried on a lost race."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    other = SqliteStore(path)  # the settings come from the file
    assert other.org == store.org == article_org()
    real_load = store.load
    raced: list[bool] = []

    def load() -> Snapshot:
        snapshot = real_load()
        if not raced:  # another writer commits right after this load
            raced.append(True)
            send(other, "POST", "/Users", {"userName": "bob@example.com"}, new_id="u2")
        return snapshot

    edited = store.org.with_group(IdpGroup("leads", [OPS], Role.ORG_ADMIN))
    monkeypatch.setattr(store, "load", load)
    result = store.put_org(edited, actor=None)
    assert raced == [True]
    assert [c.describe() for c in result.changes] == [
        "u1: removed from eng (was Team Admin)",
        "u1: added to ops as Org Admin",
    ]
    assert store.memberships() == {"u1": {OPS: Role.ORG_ADMIN}, "u2": {"eng": Role.MEMBER}}
    assert SqliteStore(path).org == edited
    with pytest.raises(InvalidOrg, match="a new store needs the org's settings"):
        SqliteStore(tmp_path / "new.db")
