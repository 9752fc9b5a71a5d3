"""The command line on a live SQLite state and `serve` (extras scim and serve: Python 3.11 or later)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import ORG, USERS, cli


def test_explain_and_check_read_a_live_state(tmp_path: Path) -> None:
    """`--db STATE` in place of a users document: the users SCIM and the app stored, explained and checked."""
    from scim_roles import Grant, Role, User  # noqa: PLC0415
    from scim_roles.io import load_org  # noqa: PLC0415
    from scim_roles.scim import ScimRequest, handle  # noqa: PLC0415
    from scim_roles.store import SqliteStore  # noqa: PLC0415

    db = tmp_path / "state.db"
    store = SqliteStore(db, load_org(json.loads(Path(ORG).read_text(encoding="utf-8"))))
    store.put_user(
        User("sam", saml=True, manual=[Grant("ops", Role.TEAM_ADMIN)], email="sam@example.com"),
        user_name="sam@example.com",
    )
    snapshot = store.load()
    body = {"userName": "ann@example.com"}
    assert store.commit(snapshot, handle(snapshot.directory, ScimRequest("POST", "/Users", body, new_id="u-ann")))
    code, out, _ = cli("explain", ORG, "--db", str(db), "--user", "u-ann")
    assert (code, out.splitlines()[0]) == (0, "User 'u-ann': 1 membership, locked (SCIM-managed; manual edits are off)")
    code, out, _ = cli("explain", ORG, "--db", str(db), "--json")
    assert (code, sorted(json.loads(out))) == (0, ["sam", "u-ann"])
    code, out, _ = cli("check", ORG, "--db", str(db))
    assert (code, out) == (0, f"{ORG}: ok (4 teams, 4 groups); {db}: ok (2 users, 1 SCIM-managed; no drift)\n")
    code, out, _ = cli("check", "--db", str(db))
    assert (code, out) == (0, f"{db}: ok (2 users, 1 SCIM-managed; no drift)\n")
    code, _, err = cli("check", ORG, "--db", str(tmp_path / "missing.db"))
    assert (code, err) == (1, f"scim-roles: {tmp_path / 'missing.db'}: no such state file\n")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    code, _, err = cli("check", ORG, "--db", str(tmp_path / "junk.db"))
    assert code == 1
    assert err.startswith(f"scim-roles: {tmp_path / 'junk.db'}: not a scim-roles state: ")
    no_ops = json.loads(Path(ORG).read_text(encoding="utf-8"))
    no_ops["teams"] = [t for t in no_ops["teams"] if t["id"] != "ops"]
    (tmp_path / "no-ops.json").write_text(json.dumps(no_ops), encoding="utf-8")
    for command in ("check", "explain"):
        code, out, err = cli(command, str(tmp_path / "no-ops.json"), "--db", str(db))
        assert (code, out) == (2, "")
        assert err.startswith(f"scim-roles: {db}: org: settings: the org document is not the stored settings")
        assert "`scim-roles edit --db STATE AFTER`" in err


@pytest.fixture
def service_log() -> Iterator[logging.Logger]:
    """The package's logger, given back as it was: serve sets it up for the process it runs in."""
    log = logging.getLogger("scim_roles")
    handlers, level = log.handlers[:], log.level
    log.handlers.clear()
    yield log
    log.handlers[:] = handlers
    log.setLevel(level)


def test_serve_builds_the_app_and_runs_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_log: logging.Logger
) -> None:
    """serve: the token from the environment, the state created, the app on /scim/v2, one quiet server run
    (no access log: the service logs what matters itself, one line each, on standard error)."""
    import uvicorn  # noqa: PLC0415

    from scim_roles.asgi import TenantApp  # noqa: PLC0415

    ran: list[tuple[object, str, int, dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: ran.append((app, host, port, kw)))
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "secret")
    code, _, err = cli("serve", ORG, "--db", str(tmp_path / "state.db"), "--port", "9999")
    assert code == 0
    assert err == "scim-roles: serving SCIM 2.0 at http://127.0.0.1:9999/scim/v2/default (and /scim/v2)\n"
    ((app, host, port, options),) = ran
    assert isinstance(app, TenantApp)
    assert (app._base, app._default, app.cached, host, port) == ("/scim/v2", "default", (), "127.0.0.1", 9999)
    assert options == {"log_level": "warning", "access_log": False}
    assert (tmp_path / "state.db").is_file()
    (handler,) = service_log.handlers
    assert (service_log.level, handler.formatter._fmt) == (logging.INFO, "%(asctime)s %(name)s %(message)s")  # type: ignore[union-attr]
    assert isinstance(handler, logging.StreamHandler)
    code, _, err = cli("serve", "--db", str(tmp_path / "state.db"))
    assert (code, err, ran[1][2]) == (
        0,
        "scim-roles: serving SCIM 2.0 at http://127.0.0.1:8000/scim/v2/default (and /scim/v2)\n",
        8000,
    )
    assert len(service_log.handlers) == 1  # set up once
    assert app._public_url is None  # locations from the address a request came in on
    code, _, err = cli("serve", "--db", str(tmp_path / "state.db"), "--public-url", "https://scim.example.com/")
    assert (code, ran[2][0]._public_url) == (0, "https://scim.example.com")  # type: ignore[attr-defined]


def test_serve_refuses_a_token_with_spaces_around_it_and_a_bad_public_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token that no request could match, a public URL that is no http(s) URL: exit 2, nothing created."""
    db = str(tmp_path / "state.db")
    for token in (" secret", "secret\n"):
        monkeypatch.setenv("SCIM_ROLES_TOKEN", token)
        assert cli("serve", ORG, "--db", db) == (
            2,
            "",
            (
                "scim-roles: SCIM_ROLES_TOKEN has spaces or line breaks around it: no request's token would match;"
                " remove them\n"
            ),
        )
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "secret")
    assert cli("serve", ORG, "--db", db, "--public-url", "scim.example.com") == (
        2,
        "",
        "scim-roles: --public-url must be an http(s):// URL without query or fragment, got 'scim.example.com'\n",
    )
    assert not (tmp_path / "state.db").exists()


def test_serve_needs_a_token_in_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No SCIM_ROLES_TOKEN: exit 2 before anything is opened."""
    monkeypatch.delenv("SCIM_ROLES_TOKEN", raising=False)
    code, _, err = cli("serve", ORG, "--db", str(tmp_path / "state.db"))
    assert (code, err) == (
        2,
        (
            "scim-roles: set SCIM_ROLES_TOKEN to the bearer token the IdP will send (never on the command line),"
            " or add a stored token to an existing state: scim-roles tokens add TENANT --db STATE\n"
        ),
    )
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize(
    ("missing", "what"), [("uvicorn", "serve needs"), ("scim_roles.store", "the SQLite state needs")]
)
def test_serve_without_its_extra_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str, what: str
) -> None:
    """Without uvicorn or the scim extra: one line naming the extra to install, exit 2."""
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "secret")
    code, _, err = cli("serve", ORG, "--db", str(tmp_path / "state.db"))
    expected = f"scim-roles: {what} the serve extra (Python 3.11+): python -m pip install '.[serve]' in a clone of "
    assert (code, err) == (2, expected + "scim_roles\n")


def _state_with_users(tmp_path: Path) -> Path:
    """A state seeded from the example org: a SCIM user in okta-eng-leads, a pushed group, a SAML user."""
    from scim_roles import User  # noqa: PLC0415
    from scim_roles.io import load_org  # noqa: PLC0415
    from scim_roles.scim import ScimRequest, handle  # noqa: PLC0415
    from scim_roles.store import SqliteStore  # noqa: PLC0415

    db = tmp_path / "state.db"
    with SqliteStore(db, load_org(json.loads(Path(ORG).read_text(encoding="utf-8")))) as store:
        store.put_user(User("sam", saml=True, email="sam@example.com"), user_name="sam@example.com")
        for method, path, body, new_id in [
            ("POST", "/Users", {"userName": "ann@example.com"}, "u-ann"),
            (
                "PATCH",
                "/Groups/okta-eng-leads",
                {"Operations": [{"op": "add", "path": "members", "value": [{"value": "u-ann"}]}]},
                None,
            ),
            ("POST", "/Groups", {"displayName": "Design", "members": [{"value": "u-ann"}]}, "g-design"),
        ]:
            snapshot = store.load()
            assert store.commit(snapshot, handle(snapshot.directory, ScimRequest(method, path, body, new_id=new_id)))
    return db


def test_settings_edit_changes_and_groups_on_a_state(tmp_path: Path) -> None:
    """settings prints what edit reads; edit previews, --apply saves exactly that; changes shows the feed in
    order with origins; groups lists what the IdP pushed for an admin to map."""
    db = _state_with_users(tmp_path)
    code, out, _ = cli("groups", "--db", str(db))
    assert code == 0
    assert out.splitlines()[0] == "'g-design' 'Design': 1 members -> (default teams) as (default role)"
    assert "'okta-eng-leads' 'okta-eng-leads': 1 members -> 'eng' as team_admin" in out.splitlines()
    code, out, _ = cli("groups", "--db", str(db), "--json")
    assert json.loads(out)[0] == {"id": "g-design", "displayName": "Design", "members": 1, "teams": [], "role": None}
    code, out, _ = cli("settings", "--db", str(db))
    settings = json.loads(out)
    assert {"id": "g-design"} in settings["groups"]
    for group in settings["groups"]:
        if group["id"] == "g-design":
            group.update(teams=["mkt"], role="org_admin")
    after = tmp_path / "after.json"
    after.write_text(json.dumps(settings), encoding="utf-8")
    code, out, err = cli("edit", "--db", str(db), str(after))
    assert (code, err) == (0, "")
    assert "WARNING gains_org_admin: user 'u-ann' would become an org admin" in out
    assert "  u-ann: added to mkt as Org Admin" in out
    code, out, err = cli("edit", "--db", str(db), str(after), "--strict")
    assert (code, err) == (1, "scim-roles: --strict: a guardrail fired: gains_org_admin\n")
    code, out, err = cli("edit", "--db", str(db), str(after), "--apply", "--strict", "--json")
    assert (code, err) == (1, "scim-roles: --strict: a guardrail fired: gains_org_admin; nothing was saved\n")
    assert json.loads(out)["findings"][0]["kind"] == "gains_org_admin"
    code, out, _ = cli("changes", "--db", str(db), "--json")
    assert [json.loads(line)["origin"] for line in out.splitlines()] == ["admin", "scim", "scim"]
    code, out, err = cli("edit", "--db", str(db), str(after), "--apply")
    assert (code, err) == (0, f"scim-roles: {db}: saved\n")
    code, out, _ = cli("settings", "--db", str(db))
    assert json.loads(out) == settings
    code, out, _ = cli("changes", "--db", str(db), "--after", "3", "--json")
    entries = [json.loads(line) for line in out.splitlines()]
    assert [(e["seq"], e["user_id"], e["team"], e["before"], e["after"], e["origin"]) for e in entries] == [
        (4, "u-ann", "mkt", None, "org_admin", "settings")
    ]
    assert entries[0]["at"].endswith("Z")
    code, out, _ = cli("changes", "--db", str(db), "--after", "3")
    assert out == f"4 {entries[0]['at']} settings 'u-ann' 'mkt' - -> org_admin\n"
    code, out, _ = cli("check", "--db", str(db))
    assert code == 0
    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        cli("changes", "--db", str(db), "--after", "x")
    assert usage.value.code == 2


def test_edit_names_every_guardrail_fired_and_the_feed_shows_both_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapping raised to two teams as Org Admin, then taken back: groups lists both teams; --strict names
    every guardrail that fired, in order (--max-share moves the mass-change one); the feed shows the role
    before and after; settings, groups --json and edit --json print indented JSON, exit 0."""
    import io  # noqa: PLC0415

    from scim_roles._cli import main  # noqa: PLC0415

    db = _state_with_users(tmp_path)
    code, out, _ = cli("settings", "--db", str(db))
    settings = json.loads(out)
    assert (code, out) == (0, json.dumps(settings, indent=2) + "\n")
    design = next(g for g in settings["groups"] if g["id"] == "g-design")
    design.update(teams=["mkt", "it"], role="org_admin")
    after = tmp_path / "after.json"
    after.write_text(json.dumps(settings), encoding="utf-8")
    code, out, _ = cli("edit", "--db", str(db), str(after), "--json")
    assert (code, out) == (0, json.dumps(json.loads(out), indent=2) + "\n")
    assert cli("edit", "--db", str(db), str(after), "--apply")[0] == 0
    code, out, _ = cli("groups", "--db", str(db))
    assert (code, out.splitlines()[0]) == (0, "'g-design' 'Design': 1 members -> 'it', 'mkt' as org_admin")
    code, out, _ = cli("groups", "--db", str(db), "--json")
    assert (code, out) == (0, json.dumps(json.loads(out), indent=2) + "\n")
    design.update(teams=[], role=None)
    after.write_text(json.dumps(settings), encoding="utf-8")
    every = "loses_org_admin, no_org_admin, mass_change"
    for extra, fired in (((), every), (("--max-share", "1"), "loses_org_admin, no_org_admin")):
        code, _, err = cli("edit", "--db", str(db), str(after), "--strict", *extra)
        assert (code, err) == (1, f"scim-roles: --strict: a guardrail fired: {fired}\n")
        code, _, err = cli("edit", "--db", str(db), str(after), "--strict", "--apply", *extra)
        assert (code, err) == (1, f"scim-roles: --strict: a guardrail fired: {fired}; nothing was saved\n")
    assert cli("edit", "--db", str(db), str(after), "--apply")[0] == 0
    code, out, _ = cli("changes", "--db", str(db), "--after", "5")
    assert (code, [line.split(" ", 2)[2] for line in out.splitlines()]) == (
        0,
        ["settings 'u-ann' 'it' org_admin -> -", "settings 'u-ann' 'mkt' org_admin -> -"],
    )
    for option, value, detail in (
        ("--after", "-1", "must be a sequence number (0 or more), got '-1'"),
        ("--max-share", "2", "must be a number from 0 to 1, got '2'"),
    ):
        command = "changes" if option == "--after" else "edit"
        argv = [command, "--db", str(db), *([str(after)] if command == "edit" else []), option, value]
        stderr = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stderr)
        with pytest.raises(SystemExit) as usage:
            main(argv, stdin=io.StringIO(), stdout=io.StringIO())
        monkeypatch.undo()
        assert (usage.value.code, stderr.getvalue().splitlines()[-1].endswith(detail)) == (2, True), stderr.getvalue()


def test_check_names_drift_and_repair_rewrites_it(tmp_path: Path) -> None:
    """Rows written behind the store: check exits 1 naming each; serve refuses to start on it; repair fixes
    the table and check is clean again."""
    from serve_helpers import behind_the_store  # noqa: PLC0415

    db = _state_with_users(tmp_path)
    with behind_the_store(db) as conn:
        conn.execute("INSERT INTO memberships VALUES ('default', 'u-ann', 'it', 'org_admin')")
    code, out, err = cli("check", "--db", str(db))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"scim-roles: {db}: membership: user 'u-ann' on team 'it': stored Org Admin, the rules give no membership",
        f"scim-roles: {db}: feed: user 'u-ann' on team 'it': the feed gives no membership, stored Org Admin",
    ]
    code, _, err = cli("repair", "--db", str(db))
    assert code == 0
    code, out, _ = cli("check", "--db", str(db))
    assert code == 0
    with behind_the_store(db) as conn:
        conn.execute("DELETE FROM changes")
    code, out, _ = cli("repair", "--db", str(db))
    assert out.splitlines() == [
        "  sam: added to eng as Member",
        "  u-ann: added to eng as Team Admin",
        f"{db}: repaired (2 feed entries appended)",
    ]


def test_serve_opens_an_existing_state_without_its_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """serve --db STATE alone serves a stored state; a missing state without a document, or another document
    than the stored settings, is a usage error naming what to do; a drifted state refuses to start."""
    import uvicorn  # noqa: PLC0415

    from serve_helpers import behind_the_store  # noqa: PLC0415

    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **_: None)
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "secret")
    db = _state_with_users(tmp_path)
    assert cli("serve", "--db", str(db))[0] == 0
    assert cli("serve", ORG, "--db", str(db))[0] == 0  # the document it was seeded with
    code, _, err = cli("serve", "--db", str(tmp_path / "new.db"))
    assert (code, err) == (
        2,
        f"scim-roles: {tmp_path / 'new.db'}: no such state file; give the org document to create it\n",
    )
    toggled = json.loads(Path(ORG).read_text(encoding="utf-8")) | {"manual_edits": True}
    (tmp_path / "toggled.json").write_text(json.dumps(toggled), encoding="utf-8")
    code, _, err = cli("serve", str(tmp_path / "toggled.json"), "--db", str(db))
    assert code == 2
    assert "scim-roles edit" in err
    with behind_the_store(db) as conn:
        conn.execute("DELETE FROM memberships")
    code, _, err = cli("serve", "--db", str(db))
    assert code == 1
    assert err.splitlines()[-1] == f"scim-roles: {db}: the state has drifted: see `scim-roles repair --db {db}`"


def test_state_commands_name_what_is_missing_or_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """check/explain with neither a document nor --db: exit 2. Stored users that no longer fit the stored
    settings: check lists them as drift, explain and repair name them (exit 1); a repair that cannot be made
    durable is one line, exit 1."""
    from scim_roles.store import SqliteStore, StoreUnavailable  # noqa: PLC0415

    from serve_helpers import behind_the_store  # noqa: PLC0415

    assert cli("check")[0::2] == (2, "scim-roles: give an org document (and a users document), or --db STATE\n")
    assert cli("explain")[0::2] == (2, "scim-roles: give an org document (and a users document), or --db STATE\n")
    db = _state_with_users(tmp_path)
    for command in ("check", "explain"):
        assert cli(command, ORG, USERS, "--db", str(db))[0::2] == (
            2,
            "scim-roles: give a users document or --db STATE, one of them\n",
        )
    with behind_the_store(db) as conn:  # a row written behind the store: a grant on a team the org lacks
        conn.execute("INSERT INTO manual VALUES ('default', 'sam', 'nosuch', 'member')")
        conn.execute("UPDATE tenants SET version = version + 1")
    code, _, err = cli("check", "--db", str(db))
    assert (code, err) == (1, f"scim-roles: {db}: state: user 'sam': manual: grant on unknown team 'nosuch'\n")
    for command in ("explain", "repair"):
        code, out, err = cli(command, "--db", str(db))
        assert (code, out, err) == (1, "", f"scim-roles: {db}: user 'sam': manual: grant on unknown team 'nosuch'\n")

    def unavailable(_: SqliteStore) -> None:
        msg = f"{db}: the write could not be made durable: disk I/O error"
        raise StoreUnavailable(msg)

    monkeypatch.setattr(SqliteStore, "repair", unavailable)
    assert cli("repair", "--db", str(db))[0::2] == (
        1,
        f"scim-roles: {db}: the write could not be made durable: disk I/O error\n",
    )
