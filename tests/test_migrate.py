"""Migrations: a state written before them (0.1's schema 1, schemas 2 to 4) is refused until `migrate`, then
moved into the tables of many tenants with nothing lost (extras scim, serve)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from scim_roles import Role
from scim_roles.store import SCHEMA_NUMBER, SqlStore, StateOutdated, StoreUnavailable, migrate, tenants_of

from helpers import cli

FIXTURES = Path(__file__).parent / "fixtures"
# The schema-4 fixture's token (tests/fixtures/README.md): test data of a throwaway state.
SCHEMA4_TOKEN = "scimroles_00d019b17806_OuIvJuXvodm1CLXHFP33T_78rYa6CsNDb2jbuB800iU"


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copy(FIXTURES / name, target)
    return target


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


@pytest.mark.filterwarnings("ignore:the org document claims no domain")  # 0.1 knew no domains (R14)
def test_a_0_1_state_is_refused_until_migrated_then_keeps_every_row(tmp_path: Path) -> None:
    """0.1's file: every command names `migrate`; after it, every user, group, member, grant and membership is
    there, each user's email is read from what was stored, and the feed starts with the stored memberships."""
    path = copy("state-0.1.db", tmp_path)
    users = rows(path, "SELECT id, user_name, saml, scim, deprovisioned, resource FROM users ORDER BY id")
    members = rows(path, "SELECT group_id, user_id FROM members ORDER BY 1, 2")
    memberships = rows(path, "SELECT user_id, team, role FROM memberships ORDER BY 1, 2")
    ((version,),) = rows(path, "SELECT value FROM meta WHERE key = 'version'")
    with pytest.raises(StateOutdated, match=r"older schema \(1; this release reads 5\).*scim-roles migrate --db"):
        SqlStore(path)
    for command in (["check"], ["settings"], ["changes"], ["repair"], ["tokens", "list", "default"]):
        code, out, err = cli(*command, "--db", str(path))
        assert (code, out) == (1, ""), command
        assert f"`scim-roles migrate --db {path}`" in err, command
    assert rows(path, "SELECT count(*) FROM users") == [(len(users),)]  # refused: nothing was changed

    assert cli("migrate", "--db", str(path)) == (0, f"{path}: migrated from schema 1 to 5\n", "")
    assert cli("migrate", "--db", str(path)) == (0, f"{path}: up to date (schema 5)\n", "")
    assert tenants_of(path) == ("default",)
    store = SqlStore(path)
    directory = store.load().directory
    assert store.load().version == int(version)
    assert sorted(
        (u.id, directory.user_name(u.id), u.saml, u.scim, u.deprovisioned) for u in directory.users.values()
    ) == [(uid, name, bool(saml), bool(scim), bool(gone)) for uid, name, saml, scim, gone, _ in users]
    assert {uid: directory.resource(uid) for uid in directory.users} == {
        uid: None if resource is None else json.loads(resource) for uid, *_, resource in users
    }
    assert {u.id: u.email for u in directory.users.values()} == {
        "sam": None, "u-ann": "ann@example.com", "u-bob": "bob@example.com", "u-cy": "cy@example.com"
    }  # fmt: skip
    assert sorted((g.id, u) for g in directory.org.groups for u in directory.members(g.id)) == members
    assert [(g.team, g.role) for g in directory.users["sam"].manual] == [("mkt", Role.TEAM_ADMIN)]
    stored = [(uid, team, role.value) for uid, teams in store.memberships().items() for team, role in teams.items()]
    assert sorted(stored) == memberships
    assert [(e.user_id, e.team, e.before, e.after, e.origin) for e in store.changes()] == [
        (uid, team, None, Role(role), "repair") for uid, team, role in memberships
    ]
    assert not [d for d in store.check() if d.what == "feed"]  # the feed folds to the stored memberships (T7)
    store.close()


def test_a_schema_4_state_keeps_its_tenant_tokens_log_feed_and_deleted_groups(tmp_path: Path) -> None:
    """The last single-tenant schema: its tenant id, its token (it still authenticates), its request log, its
    feed with its sequence numbers, the groups the IdP deleted and the claimed domain all carry over."""
    path = copy("state-schema4.db", tmp_path)
    feed = rows(path, "SELECT seq, at, user_id, team, before, after, origin FROM changes ORDER BY seq")
    tokens = rows(path, "SELECT id, created, expires, last_used, revoked FROM tokens")
    logged = rows(path, "SELECT at, method, path, status, reason, ms FROM requests")
    assert migrate(path) == (4, SCHEMA_NUMBER)
    assert migrate(path) == (SCHEMA_NUMBER, SCHEMA_NUMBER)
    store = SqlStore(path, tenant="acme")
    assert store.tenant == "acme"
    assert [(t.id, t.created, t.expires, t.last_used, t.revoked) for t in store.tokens()] == tokens
    assert store.check_token(SCHEMA4_TOKEN)
    assert [(r.at, r.method, r.path, r.status, r.reason, r.ms) for r in store.requests()] == logged
    assert [(e.seq, e.at, e.user_id, e.team, e.before and e.before.value, e.after and e.after.value, e.origin)
            for e in store.changes()] == feed  # fmt: skip
    assert rows(path, "SELECT tenant, id FROM deleted_groups") == [("acme", "okta-marketing")]
    assert rows(path, "SELECT domain, tenant FROM domains") == [("example.com", "acme")]
    assert store.check() == ()
    store.close()


def test_r14_a_schema_2_state_gains_its_users_emails(tmp_path: Path) -> None:
    """Before emails were stored (schema 2): each is read as S13 reads it, from the userName or the primary
    email of the stored resource; a state with no tenant id becomes tenant `default`."""
    path = copy("state-schema4.db", tmp_path)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE old_users AS SELECT id, key, user_name, saml, scim, deprovisioned, resource FROM users"
        )
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DROP TABLE users")
        db.execute("ALTER TABLE old_users RENAME TO users")
        db.execute("DROP TABLE tokens")
        db.execute("DROP TABLE requests")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
        db.execute("DELETE FROM meta WHERE key = 'tenant'")
    assert migrate(path) == (2, SCHEMA_NUMBER)
    store = SqlStore(path)
    assert (store.tenant, store.tokens(), store.requests()) == ("default", (), ())
    assert {u.id: u.email for u in store.load().directory.users.values()} == {
        "u-ann": "ann@example.com", "u-bob": "bob@example.com", "sam": None
    }  # fmt: skip
    assert len(store.changes()) == 4
    store.close()


def test_migrate_refuses_what_it_cannot_migrate_and_changes_nothing(tmp_path: Path) -> None:
    """No file, a database of something else, a state it cannot write: each refused, exit 1, unchanged."""
    assert cli("migrate", "--db", str(tmp_path / "none.db")) == (
        1,
        "",
        f"scim-roles: {tmp_path / 'none.db'}: no such state file\n",
    )
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as db, db:
        db.execute("CREATE TABLE notes (text TEXT)")
    code, out, err = cli("migrate", "--db", str(other))
    assert (code, out, err) == (1, "", f"scim-roles: {other}: not a scim-roles state (tables notes)\n")
    with pytest.raises(StoreUnavailable, match="not a scim-roles state"):
        SqlStore(other)
    locked = copy("state-0.1.db", tmp_path)
    before = locked.read_bytes()
    code, out, err = cli("migrate", "--db", f"sqlite:///file:{locked}?mode=ro&uri=true")  # cannot be written
    assert (code, out, err) == (
        1,
        "",
        (
            f"scim-roles: {locked}: the state could not be migrated (nothing changed): attempt to write a readonly"
            " database\n"
        ),
    )
    assert locked.read_bytes() == before
    with pytest.raises(StateOutdated):
        SqlStore(locked)


def test_a_new_state_is_made_at_the_current_schema_and_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    """A new database gets the tables of this release; a revision this release does not know is refused."""
    path = tmp_path / "s.db"
    from helpers import article_org  # noqa: PLC0415

    SqlStore(path, article_org()).close()
    assert rows(path, "SELECT version_num FROM alembic_version") == [("v5",)]
    (tmp_path / "empty.db").touch()
    assert tenants_of(tmp_path / "empty.db") == ()
    with pytest.raises(StoreUnavailable, match="cannot be read"):
        tenants_of(tmp_path / "missing.db")
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = 'v9'")
    with pytest.raises(StateOutdated, match=r"older schema \(0; this release reads 5\)"):
        SqlStore(path)


def test_a_state_with_no_users_and_no_tokens_migrates_and_there_is_no_way_down(tmp_path: Path) -> None:
    """A schema-4 state whose users and tokens are all gone migrates to an empty tenant; the revision's
    downgrade refuses, naming the backup."""
    import importlib.util  # noqa: PLC0415

    path = copy("state-schema4.db", tmp_path)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM users")
        db.execute("DELETE FROM tokens")
        db.execute("DELETE FROM memberships")
    assert migrate(path) == (4, SCHEMA_NUMBER)
    with SqlStore(path) as store:
        assert (store.tenant, len(store.load().directory.users), store.tokens()) == ("acme", 0, ())
        assert [d.what for d in store.check()] == ["feed"] * 3  # the feed still gives the deleted users' access
        assert [c.after for c in store.repair()] == [None] * 3  # taken back; no membership is left to write
        assert store.check() == ()
    revision = Path(__file__).parent.parent / "src/scim_roles/_migrations/versions/v5_tenants.py"
    spec = importlib.util.spec_from_file_location("v5_tenants", revision)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(NotImplementedError, match="restore the backup taken before `scim-roles migrate`"):
        module.downgrade()


def test_open_database_takes_a_path_or_a_sqlite_or_postgresql_url_and_nothing_else(tmp_path: Path) -> None:
    """A path and sqlite:/// are SQLite; postgresql:// means psycopg; any other URL, or none, is refused."""
    from scim_roles.store import open_database  # noqa: PLC0415

    for db in (str(tmp_path / "a.db"), f"sqlite:///{tmp_path / 'b.db'}"):
        engine = open_database(db)
        assert engine.url.drivername == "sqlite"
        engine.dispose()
    engine = open_database("postgresql://user@/nowhere?host=/nonexistent")  # no connection made yet
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()
    with pytest.raises(ValueError, match=r"db: url: 'mysql://x/y': give a SQLite file .* or PostgreSQL"):
        open_database("mysql://x/y")
    with pytest.raises(ValueError, match=r"db: url: 'not a url://' is not a database URL"):
        open_database("not a url://")
