"""The stored state is the truth (T1-T7): random SCIM requests, admin edits, settings edits and reopens.

Every test here reopens the store from its file: what a server acknowledged is
what a fresh process reads back.
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from scim_roles import (
    Finding,
    FindingKind,
    Grant,
    IdpGroup,
    InvalidOrg,
    InvalidUser,
    LockedUser,
    Org,
    Problem,
    Role,
    User,
    resolve_all,
    to_builtins,
)
from scim_roles.scim import ScimRequest, handle
from scim_roles.store import Drift, GuardrailFired, SettingsDiffer, SqliteStore, StateOutdated, StoreUnavailable

from helpers import ENG, IT, OPS, article_org
from scim_helpers import START, patch, requests
from serve_helpers import behind_the_store, send

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class Clock:
    """A clock that ticks one second a call."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return START + timedelta(seconds=self.ticks)


def folded(store: SqliteStore) -> dict[str, dict[str, Role]]:
    """The feed replayed from its start, as a host mirroring it would."""
    out: dict[str, dict[str, Role]] = {}
    last = 0
    for entry in store.changes():
        assert entry.seq > last
        last = entry.seq
        assert out.get(entry.user_id, {}).get(entry.team) is entry.before
        if entry.after is None:
            del out[entry.user_id][entry.team]
        else:
            out.setdefault(entry.user_id, {})[entry.team] = entry.after
    return {uid: teams for uid, teams in out.items() if teams}


def the_rules(store: SqliteStore) -> dict[str, dict[str, Role]]:
    directory = store.load().directory
    resolved = resolve_all(directory.org, directory.users.values())
    return {uid: dict(res.roles) for uid, res in resolved.items() if res.memberships}


def assert_one_truth(path: Path, live: SqliteStore) -> None:
    """T1, T6, T7: a fresh process reads what the live store holds; memberships, rules and feed agree."""
    with SqliteStore(path) as again:
        assert again.load().directory == live.load().directory
        assert again.memberships() == the_rules(again) == folded(again)
        assert again.check() == ()


class StoredState(RuleBasedStateMachine):
    """SCIM requests, admin edits, settings edits and reopens, in any order, against a real SQLite file."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp()  # removed by teardown
        self.path = Path(self.folder) / "state.db"
        self.store = SqliteStore(self.path, article_org(), clock=Clock())
        self.count = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder)

    @rule(request=requests())
    def scim_request(self, request: tuple[str, str, Any, str]) -> None:
        method, target, body, query = request
        self.count += 1
        send(self.store, method, target, body, new_id=f"n{self.count}", query=query)

    @rule(
        uid=st.sampled_from(["u0", "n1", "n2", "saml1", "man1"]),
        grants=st.lists(st.tuples(st.sampled_from([ENG, OPS, IT]), st.sampled_from(list(Role))), max_size=2),
        saml=st.booleans(),
    )
    def admin_edit(self, uid: str, grants: list[tuple[str, Role]], saml: bool) -> None:  # noqa: FBT001
        old = self.store.load().directory.users.get(uid)
        if old is None and uid.startswith("n"):
            return  # ids n1, n2 ... are the host's for SCIM users (S1): an admin only edits them
        manual = list({team: Grant(team, role) for team, role in grants}.values())
        try:
            user = User(uid, saml=saml, manual=manual) if old is None else attrs.evolve(old, manual=manual)
        except InvalidUser:
            return  # no source left (V4): no user to save
        try:
            self.store.put_user(user)
        except InvalidUser:  # a locked user (T5), a userName taken: nothing written
            assert self.store.load().directory.users.get(uid) == old

    @rule(
        kind=st.sampled_from(["toggle", "map", "defaults"]),
        gid=st.sampled_from(["leads", "marketing", "everyone"]),
        role=st.sampled_from([None, *Role]),
    )
    def settings_edit(self, kind: str, gid: str, role: Role | None) -> None:
        org = self.store.org
        if kind == "toggle":
            after = org.with_manual_edits(on=not org.manual_edits)
        elif kind == "defaults":
            after = org.with_defaults([OPS] if org.default_teams == {ENG} else [ENG], Role.MEMBER)
        elif gid in {g.id for g in org.groups}:
            after = org.with_group(IdpGroup(gid, [IT], role))
        else:
            return
        previewed = self.store.preview_org(after)
        saved = self.store.put_org(after, actor=None)
        assert saved == previewed  # T4: what the preview shows is what is saved

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = SqliteStore(self.path, clock=Clock())

    @invariant()
    def one_truth(self) -> None:
        assert_one_truth(self.path, self.store)


StoredState.TestCase.settings = settings(
    max_examples=max(10, settings().max_examples // 4), stateful_step_count=12, deadline=None
)
test_t1_t4_t6_t7_the_stored_state_is_the_truth = StoredState.TestCase


# -- the defects, one regression test each


def test_t1_group_writes_that_do_not_list_members_keep_them_on_disk(tmp_path: Path) -> None:
    """Okta's path-less replace {id, displayName}, Entra's displayName Replace and a rename keep every member
    after a reopen; a PUT keeps the members it lists."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    for i in range(3):
        send(store, "POST", "/Users", {"userName": f"user{i}@example.com"}, new_id=f"u{i}")
    send(store, "POST", "/Groups", {"displayName": "Eng", "members": [{"value": "u0"}, {"value": "u1"}]}, new_id="g")
    writes = [
        ("PATCH", patch({"op": "replace", "value": {"id": "g", "displayName": "Eng 2"}})),
        ("PATCH", patch({"op": "Replace", "path": "displayName", "value": "Eng 3"})),
        ("PATCH", patch({"op": "add", "path": "members", "value": [{"value": "u2"}]})),
        ("PUT", {"displayName": "Eng 4", "members": [{"value": "u0"}, {"value": "u1"}, {"value": "u2"}]}),
    ]
    for method, body in writes:
        assert send(store, method, "/Groups/g", body).status in (200, 204)
        assert_one_truth(path, store)
    with SqliteStore(path) as again:
        assert set(again.load().directory.members("g")) == {"u0", "u1", "u2"}


def test_t1_a_deactivated_user_keeps_nothing_in_the_table_apps_read(tmp_path: Path) -> None:
    """An org admin through a group, deactivated: no row left, check clean."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "PATCH", "/Groups/it-admins", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    send(store, "PATCH", "/Groups/it-admins", patch({"op": "replace", "value": {"displayName": "IT admins"}}))
    assert store.memberships() == {"u1": {IT: Role.ORG_ADMIN}}
    send(store, "PATCH", "/Users/u1", patch({"op": "replace", "path": "active", "value": False}))
    assert store.memberships() == {}
    assert_one_truth(path, store)


def test_t3_members_in_every_spelling_are_applied_and_a_repeated_attribute_refused(tmp_path: Path) -> None:
    """members named through the core URN, in a path or as a URN-keyed path-less value, in any case, are
    applied; two keys naming one attribute in one value are 400 and change nothing."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    for i in range(4):
        send(store, "POST", "/Users", {"userName": f"user{i}@example.com"}, new_id=f"u{i}")
    spellings: list[dict[str, Any]] = [
        {"op": "add", "path": CORE_GROUP + ":members", "value": [{"value": "u0"}]},
        {"op": "add", "value": {CORE_GROUP: {"members": [{"value": "u1"}]}}},
        {"op": "add", "path": CORE_GROUP, "value": {"MEMBERS": [{"value": "u2"}]}},
        {"op": "add", "value": {CORE_GROUP + ":Members": [{"value": "u3"}]}},
    ]
    for op in spellings:
        assert send(store, "PATCH", "/Groups/leads", patch(op)).status == 200
    assert set(store.load().directory.members("leads")) == {"u0", "u1", "u2", "u3"}
    send(store, "PATCH", "/Groups/leads", patch({"op": "remove", "path": CORE_GROUP + ":members"}))
    assert set(store.load().directory.members("leads")) == set()
    twice = [
        ("/Users/u0", {"op": "replace", "value": {"active": False, "ACTIVE": True}}),
        (
            "/Users/u0",
            {
                "op": "replace",
                "value": {"active": False, "urn:ietf:params:scim:schemas:core:2.0:User": {"active": True}},
            },
        ),
        ("/Groups/leads", {"op": "add", "value": {"members": [{"value": "u0"}], "MEMBERS": [{"value": "u1"}]}}),
    ]
    before = store.load()
    for target, op in twice:
        out = send(store, "PATCH", target, patch(op))
        assert (out.status, out.response.data["scimType"]) == (400, "invalidSyntax")
        assert "name the same attribute" in out.response.data["detail"]
    assert store.load() is before
    assert_one_truth(path, store)


def test_s9_entra_creates_groups_with_its_own_schema_and_display_names_are_unique(tmp_path: Path) -> None:
    """Entra's ADSCIM group schema URI is accepted; a displayName taken (in any case) is 409 uniqueness,
    on create and on rename."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    entra = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
    out = send(store, "POST", "/Groups", {"schemas": [CORE_GROUP, entra], "displayName": "Sales"}, new_id="g1")
    assert out.status == 201
    assert out.response.data["schemas"] == [CORE_GROUP]
    out = send(store, "POST", "/Groups", {"displayName": "SALES"}, new_id="g2")
    assert (out.status, out.response.data["scimType"]) == (409, "uniqueness")
    assert out.response.data["detail"] == "displayName 'SALES' is taken by the group 'g1'"
    out = send(store, "POST", "/Groups", {"displayName": "leads"}, new_id="g3")  # a document group, named by its id
    assert (out.status, out.response.data["detail"]) == (409, "displayName 'leads' is taken by the group 'leads'")
    out = send(store, "PATCH", "/Groups/leads", patch({"op": "replace", "path": "displayName", "value": "sales"}))
    assert out.status == 409
    assert (
        send(store, "PATCH", "/Groups/g1", patch({"op": "replace", "path": "displayName", "value": "SALES"})).status
        == 200
    )
    assert send(store, "DELETE", "/Groups/g1").status == 204
    assert send(store, "POST", "/Groups", {"displayName": "Sales"}, new_id="g4").status == 201  # free again
    assert store.load().directory.group_named("sALES") == "g4"


def test_t4_preview_and_save_refuse_the_same_edit_with_the_same_message(tmp_path: Path) -> None:
    """Dropping a group that still has members: the preview refuses it as the save does, word for word."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    after = store.org.without_group("leads")
    with pytest.raises(InvalidUser) as previewed:
        store.preview_org(after)
    with pytest.raises(InvalidUser) as saved:
        store.put_org(after, actor=None)
    assert previewed.value.problems == saved.value.problems
    assert str(saved.value) == "user 'u1': groups: is a member of 'leads', which the new org drops"


def test_t4_t5_locked_means_locked_and_waking_a_grant_is_a_finding(tmp_path: Path) -> None:
    """An admin's manual grant on a locked (or deprovisioned) user is refused with LockedUser naming the
    user; a manual grant kept from before linking, woken by the toggle, is a gains_org_admin finding, and
    strict refuses the save."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    store.put_user(
        User("sam", saml=True, manual=[Grant(IT, Role.ORG_ADMIN)], email="sam@example.com"), user_name="sam@example.com"
    )
    send(store, "POST", "/Users", {"userName": "sam@example.com"}, new_id="x")  # S3: sam is now SCIM-managed, locked
    sam = store.load().directory.users["sam"]
    with pytest.raises(LockedUser) as locked:
        store.put_user(attrs.evolve(sam, manual=[Grant(OPS, Role.ORG_ADMIN)]))
    assert locked.value.problems == (
        Problem(
            "user 'sam'",
            "manual",
            "is locked: SCIM manages the user and 'Editing users manually' is off (R8); the manual edit is "
            "refused (T5)",
            "sam",
        ),
    )
    store.put_user(attrs.evolve(sam, saml=False))  # not a manual edit: allowed
    toggle = store.org.with_manual_edits(on=True)
    previewed = store.preview_org(toggle)
    assert [(f.kind, f.user_id) for f in previewed.findings] == [(FindingKind.GAINS_ORG_ADMIN, "sam")]
    with pytest.raises(GuardrailFired, match="gains_org_admin: user 'sam' would become an org admin") as refused:
        store.put_org(toggle, actor=None, strict=True)
    assert refused.value.preview == previewed
    assert not store.org.manual_edits
    send(store, "PATCH", "/Users/sam", patch({"op": "replace", "path": "active", "value": False}))
    with pytest.raises(LockedUser) as locked:
        store.put_user(
            User("sam", scim=True, deprovisioned=True, manual=[Grant(OPS, Role.MEMBER)], email="sam@example.com")
        )
    assert locked.value.problems == (
        Problem(
            "user 'sam'",
            "manual",
            "is deprovisioned: manual grants of a deprovisioned user are never kept (R10); the manual edit is "
            "refused (T5)",
            "sam",
        ),
    )
    assert_one_truth(path, store)


def test_t4_a_mapping_raised_to_org_admin_is_a_finding(tmp_path: Path) -> None:
    """Mapping a group to Org Admin makes its members org admins: each one a gains_org_admin finding."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    result = store.put_org(store.org.with_group(IdpGroup("leads", [ENG], Role.ORG_ADMIN)), actor=None)
    assert [f.detail for f in result.findings] == ["user 'u1' would become an org admin"]
    assert store.memberships() == {"u1": {ENG: Role.ORG_ADMIN}}


def test_t4_a_document_never_replaces_stored_settings(tmp_path: Path) -> None:
    """Reopening with another document is refused naming `scim-roles edit`; a second process's settings edit
    is seen by the first at its next load."""
    path = tmp_path / "s.db"
    first = SqliteStore(path, article_org())
    send(first, "POST", "/Groups", {"displayName": "Pushed"}, new_id="p")
    toggled = article_org(manual_edits=True)
    with pytest.raises(Exception, match="scim-roles edit"):
        SqliteStore(path, toggled)
    assert SqliteStore(path, article_org()).org == first.org  # the seeding document, a pushed group aside
    second = SqliteStore(path)
    second.put_org(second.org.with_manual_edits(on=True), actor=None)
    assert first.org.manual_edits
    assert first.org.group("p") == IdpGroup("p")
    send(first, "DELETE", "/Groups/leads")
    assert SqliteStore(path, toggled).org == first.org  # a group the IdP deleted is not asked of the document


def test_t6_drift_is_visible_and_repaired_with_feed_entries(tmp_path: Path) -> None:
    """Rows written behind the store's back: check names each difference; repair rewrites the memberships
    and appends the feed entries that take a mirror there."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org(), clock=Clock())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    store.put_user(User("m", manual=[Grant(OPS, Role.MEMBER)]))
    with behind_the_store(path) as db:
        db.execute("INSERT INTO memberships VALUES ('default', 'u1', 'it', 'org_admin')")
        db.execute("DELETE FROM memberships WHERE user_id = 'm'")
        db.execute("INSERT INTO members (tenant, group_id, user_id) VALUES ('default', 'leads', 'm')")
    assert [str(d) for d in store.check()] == [
        "member: group 'leads' lists 'm', who is not a SCIM user",
        "membership: user 'm' on team 'ops': stored no membership, the rules give Member",
        "membership: user 'u1' on team 'it': stored Org Admin, the rules give no membership",
        "feed: user 'm' on team 'ops': the feed gives Member, stored no membership",
        "feed: user 'u1' on team 'it': the feed gives no membership, stored Org Admin",
    ]
    assert all(isinstance(d, Drift) for d in store.check())
    assert store.repair() == ()  # the feed already folds to what the rules give: no entry needed
    assert_one_truth(path, store)
    with behind_the_store(path) as db:
        db.execute("DELETE FROM changes")
    changes = store.repair()
    assert [c.describe() for c in changes] == ["m: added to ops as Member", "u1: added to eng as Member"]
    assert {e.origin for e in store.changes()} == {"repair"}
    assert_one_truth(path, store)


def test_t6_a_user_row_unlike_its_resource_is_drift_and_repair_writes_it_anew(tmp_path: Path) -> None:
    """A load takes each user's userName, its key and the resource's text as stored, unchecked: check
    compares them with what the resource gives and names each user that differs; repair writes those rows
    anew and moves the tenant's version, so that every server loads them again."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    for uid in ("u1", "u2", "u3"):
        send(store, "POST", "/Users", {"userName": f"{uid}@example.com"}, new_id=uid)
    before = store.load()
    with behind_the_store(path) as db:
        (text,) = db.execute("SELECT resource FROM users WHERE id = 'u1'").fetchone()
        db.execute("UPDATE users SET resource = ? WHERE id = 'u1'", (json.dumps(json.loads(text), indent=1),))
        db.execute("UPDATE users SET key = 'someone-else' WHERE id = 'u2'")
        db.execute("UPDATE users SET user_name = 'U3@example.com' WHERE id = 'u3'")
    assert [str(d) for d in store.check()] == [
        "user: user 'u1': the stored resource is not written as the store writes it",
        "user: user 'u2': the stored key of its userName 'u2@example.com' is not the name's key (S2)",
        "user: user 'u3': the stored userName is 'U3@example.com', its resource's is 'u3@example.com'",
    ]
    assert store.repair() == ()  # no membership differs
    assert store.check() == ()
    after = store.load()
    assert after.version == before.version + 1
    assert after.directory == before.directory
    assert store.repair() == ()
    assert store.load().version == after.version  # nothing to write: the version stays


def test_the_collector_runs_after_a_load_as_it_ran_before(tmp_path: Path) -> None:
    """A load pauses Python's cyclic collector while it builds the state, and leaves it as it found it."""
    path = tmp_path / "s.db"
    SqliteStore(path, article_org()).close()
    assert gc.isenabled()
    with SqliteStore(path) as store:
        store.load()
    assert gc.isenabled()
    gc.disable()
    try:
        with SqliteStore(path) as store:
            store.load()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_t7_every_change_is_in_the_feed_with_its_origin(tmp_path: Path) -> None:
    """SCIM, admin and settings changes each appended with their origin, time and roles; read after a seq.
    (The clock's first tick is the tenant's creation.)"""
    store = SqliteStore(tmp_path / "s.db", article_org(), clock=Clock())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    store.put_user(User("m", manual=[Grant(OPS, Role.TEAM_ADMIN)]))
    store.put_org(store.org.with_defaults([OPS], Role.MEMBER), actor=None)
    entries = [e.to_builtins() for e in store.changes()]
    assert entries == [
        {"seq": 1, "at": "2026-01-01T00:00:02Z", "user_id": "u1", "team": "eng", "before": None,
         "after": "member", "origin": "scim"},
        {"seq": 2, "at": "2026-01-01T00:00:03Z", "user_id": "m", "team": "ops", "before": None,
         "after": "team_admin", "origin": "admin"},
        {"seq": 3, "at": "2026-01-01T00:00:04Z", "user_id": "u1", "team": "eng", "before": "member",
         "after": None, "origin": "settings"},
        {"seq": 4, "at": "2026-01-01T00:00:04Z", "user_id": "u1", "team": "ops", "before": None,
         "after": "member", "origin": "settings"},
    ]  # fmt: skip
    assert [e.seq for e in store.changes(2)] == [3, 4]
    assert [e.seq for e in store.changes(1, limit=1)] == [2]
    for wrong in ("1", True, 1.5):
        with pytest.raises(ValueError, match="changes: after: must be a whole number"):
            store.changes(wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="changes: limit: must be a whole number from 1"):
        store.changes(0, limit=0)


def test_a_store_refuses_what_is_not_an_org() -> None:
    """SqliteStore(path, org) with something else than an Org: InvalidOrg naming it, no file created."""
    with tempfile.TemporaryDirectory() as folder, pytest.raises(ValueError, match="SqlStore: org: must be"):
        SqliteStore(Path(folder) / "s.db", {"teams": []})  # type: ignore[arg-type]


def test_settings_round_trip_through_the_org_document(tmp_path: Path) -> None:
    """The stored settings, printed as a document, load back to the same Org (what `settings` prints)."""
    from scim_roles.io import load_org  # noqa: PLC0415

    store = SqliteStore(tmp_path / "s.db", article_org())
    send(store, "POST", "/Groups", {"displayName": "Pushed"}, new_id="p")
    org: Org = load_org(json.loads(json.dumps(to_builtins(store.org))))
    assert org == store.org


def test_s9_groups_that_share_a_name_from_an_older_state_load_and_go() -> None:
    """Two stored groups with one displayName (written before names were unique) load; the name belongs to
    the first by id; dropping or deleting the other leaves it there, deleting the first frees it."""
    from scim_roles.scim import Directory  # noqa: PLC0415

    org = article_org()
    directory = Directory(org, groups={"leads": {"displayName": "Same"}, "marketing": {"displayName": "same"}})
    assert directory.group_named("SAME") == "leads"
    assert directory.with_org(org.without_group("marketing")).group_named("same") == "leads"
    out = handle(directory, ScimRequest("DELETE", "/Groups/marketing"))
    assert (out.status, out.directory.group_named("same")) == (204, "leads")
    out = handle(out.directory, ScimRequest("DELETE", "/Groups/leads"))
    assert out.directory.group_named("same") is None


def test_t2_a_state_that_cannot_be_read_is_unavailable_and_the_refusal_pickles(tmp_path: Path) -> None:
    """A table gone under a running store: the next load raises StoreUnavailable naming the file.
    GuardrailFired pickles with its preview."""
    import pickle  # noqa: PLC0415

    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    with behind_the_store(path) as db:
        db.execute("DROP TABLE manual")
        db.execute("UPDATE tenants SET version = version + 1")
    with pytest.raises(StoreUnavailable, match=r"s\.db: the state cannot be read: .*no such table: manual"):
        store.load()
    preview = SqliteStore(tmp_path / "t.db", article_org()).preview_org(article_org(manual_edits=True))
    preview = attrs.evolve(preview, findings=(Finding(FindingKind.NO_ORG_ADMIN, "no user would be an org admin"),))
    refused = pickle.loads(pickle.dumps(GuardrailFired(preview)))  # noqa: S301 -- our own object
    assert refused.preview == preview


def test_t2_t7_the_store_reports_and_stamps_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's refusals read exactly; feed times are UTC whatever the clock's zone; in-memory and
    temporary databases work; the last state and the parsed settings are cached, not rebuilt."""
    with pytest.raises(InvalidOrg) as new:
        SqliteStore(tmp_path / "new.db")
    assert str(new.value) == "SqlStore: org: a new store needs the org's settings: pass org="
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org(), clock=lambda: datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the machine's own zone is never the feed's
    time.tzset()
    try:
        out = send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert store.load().directory is out.directory  # the commit's own state, cached
    assert [e.at for e in store.changes()] == ["2026-01-01T00:00:00Z"]
    with pytest.raises(SettingsDiffer) as differs:
        SqliteStore(path, article_org(manual_edits=True))
    assert str(differs.value) == (
        "org: settings: the org document is not the stored settings; change stored settings with"
        " `scim-roles edit --db STATE AFTER` (a previewed edit), or leave the document out"
    )
    fresh = SqliteStore(path)
    assert fresh.load() is fresh.load()
    text = json.dumps(to_builtins(article_org()))
    assert fresh._settings_org(text) is fresh._settings_org(text)
    for where in (":memory:", ""):
        with SqliteStore(where, article_org()) as scratch:
            assert send(scratch, "POST", "/Users", {"userName": "bob@example.com"}, new_id="b").status == 201
            assert scratch.memberships() == {"b": {ENG: Role.MEMBER}}
    with behind_the_store(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'v4'")
    with pytest.raises(StateOutdated) as older:
        SqliteStore(path, readonly=True)
    assert str(older.value) == (
        f"{path}: a state of an older schema (0; this release reads 5): upgrade it with"
        f" `scim-roles migrate --db {path}` (back it up first)"
    )


def test_t4_the_guardrail_refusal_names_each_finding_and_the_threshold_is_the_callers(tmp_path: Path) -> None:
    """GuardrailFired lists each finding as a problem of `edit`, naming the user; preview_org and put_org
    apply max_share; put_org adding and dropping groups writes them (reopened, they are there and gone)."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "PATCH", "/Groups/leads", patch({"op": "add", "path": "members", "value": [{"value": "u1"}]}))
    demote = store.org.with_group(IdpGroup("leads", [ENG], Role.MEMBER))
    assert store.preview_org(demote, max_share=1).findings == ()
    assert [f.kind for f in store.preview_org(demote).findings] == [FindingKind.MASS_CHANGE]
    with pytest.raises(GuardrailFired) as fired:
        store.put_org(demote, actor=None, strict=True)
    detail = "1 of 1 user would lose a team or a role (100%, more than 10%)"
    assert fired.value.problems == (Problem("edit", "mass_change", detail, None),)
    assert store.put_org(demote, actor=None, max_share=1, strict=True).findings == ()
    raise_ = store.org.with_group(IdpGroup("leads", [ENG], Role.ORG_ADMIN))
    with pytest.raises(GuardrailFired) as fired:
        store.put_org(raise_, actor=None, strict=True)
    assert fired.value.problems == (Problem("edit", "gains_org_admin", "user 'u1' would become an org admin", "u1"),)
    grown = store.org.with_group(IdpGroup("new-group", [IT], Role.MEMBER)).without_group("marketing")
    store.put_org(grown, actor=None)
    with SqliteStore(path) as again:
        directory = again.load().directory
        assert directory.group_resource("new-group") == {"displayName": "new-group"}
        assert directory.group_resource("marketing") is None
        assert again.check() == ()


def test_t6_a_feed_that_removes_what_it_never_added_is_drift_not_a_crash(tmp_path: Path) -> None:
    """Feed entries lost behind the store (the adds of a user later removed): check reports it, repair
    brings the feed back to the memberships."""
    path = tmp_path / "s.db"
    store = SqliteStore(path, article_org())
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "POST", "/Users", {"userName": "bob@example.com"}, new_id="u2")
    send(store, "DELETE", "/Users/u1")
    with behind_the_store(path) as db:
        db.execute("DELETE FROM changes WHERE after IS NOT NULL")
    assert [str(d) for d in store.check()] == [
        "feed: user 'u2' on team 'eng': the feed gives no membership, stored Member"
    ]
    assert [c.describe() for c in store.repair()] == ["u2: added to eng as Member"]
    assert store.check() == ()
