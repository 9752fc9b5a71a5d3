"""The store on both backends, SQLite and a real PostgreSQL: the same promises (T1-T7, S2), many tenants in
one database, and several `scim-roles serve` processes on one database (extras scim, serve, postgres)."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import attrs
import pytest
import sqlalchemy as sa

from scim_roles import resolve_all, to_builtins
from scim_roles import store as store_module
from scim_roles.scim import ScimRequest, handle
from scim_roles.store import (
    LoggedRequest,
    SqlStore,
    StoreUnavailable,
    TooManyTokens,
    migrate,
    open_database,
    tenants_of,
)

from helpers import ORG, article_org, cli
from scim_helpers import START, patch
from serve_helpers import (
    GroupWrites,
    another_writer,
    behind_the_store,
    free_port,
    held_elsewhere,
    kill_9_during,
    kill_settings_edits,
    request,
    send,
    wait_until_up,
)

BACKENDS = ("sqlite", "postgresql")
SERVED: list[subprocess.Popen[bytes]] = []  # the processes of the last `servers`


@pytest.fixture(params=[pytest.param(b, marks=[pytest.mark.postgres] if b == "postgresql" else []) for b in BACKENDS])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database on each backend: a SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("postgres_url"))


def test_t1_t2_what_is_committed_reads_back_equal_and_as_the_rules_say(db: str) -> None:
    """Users, a group and its members, a deprovisioning: a new store on the database loads the same state,
    its memberships are each user's resolution, the feed folds to them, and check finds nothing."""
    store = SqlStore(db, article_org(), tenant="acme")
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(store, "POST", "/Users", {"userName": "bob@example.com"}, new_id="u2")
    add = patch({"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]})
    send(store, "PATCH", "/Groups/leads", add)
    send(store, "PATCH", "/Users/u2", patch({"op": "replace", "value": {"active": False}}))
    live = store.load()
    again = SqlStore(db, tenant="acme")
    assert again.load().directory == live.directory
    assert again.load().version == live.version
    resolved = resolve_all(live.directory.org, live.directory.users.values())
    assert again.memberships() == {uid: dict(r.roles) for uid, r in resolved.items() if r.memberships}
    assert again.check() == ()
    assert [e.origin for e in again.changes()] == ["scim"] * len(again.changes())
    store.close()
    again.close()


def test_t2_writes_committed_together_read_back_as_the_same_writes_sent_one_at_a_time(db: str, tmp_path: Path) -> None:
    """Dependent writes sent at once are committed in one transaction (on PostgreSQL one query): the answers,
    the stored state and the feed read back as those of the same writes sent one at a time (to a SQLite file)."""
    from test_asgi import BURST, stored, together_and_alone  # noqa: PLC0415

    alone_db = str(tmp_path / "alone.db")
    stores = SqlStore(db, article_org(), tenant="acme"), SqlStore(alone_db, article_org(), tenant="acme")
    answers, expected, together, alone = together_and_alone(*stores, BURST)
    assert answers == expected
    again = SqlStore(db, tenant="acme"), SqlStore(alone_db, tenant="acme")
    assert stored(again[0]) == stored(again[1])
    assert together == [sum(alone)]
    for store in (*stores, *again):
        store.close()


def test_t2_a_commit_from_a_stale_snapshot_writes_nothing(db: str) -> None:
    """Compare-and-swap: two stores on one tenant; the second commit of the same version is refused."""
    first = SqlStore(db, article_org())
    second = SqlStore(db)
    stale = second.load()
    send(first, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    out = handle(
        stale.directory, ScimRequest("POST", "/Users", {"userName": "bob@example.com"}, new_id="u2", now=START)
    )
    assert second.commit(stale, out) is False
    assert set(second.load().directory.users) == {"u1"}
    assert second.check() == ()
    first.close()
    second.close()


def test_t2_a_tenant_removed_under_a_store_is_unavailable_to_it_not_a_crash(db: str) -> None:
    """The tenant's row deleted behind a store (its rows go with it): the next load, cached state or none,
    is StoreUnavailable in the driver's words, never a stale state or a traceback."""
    cached = SqlStore(db, article_org(), tenant="acme")
    cached.load()
    fresh = SqlStore(db, tenant="acme")
    engine = open_database(db)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tenants WHERE id = 'acme'"))
    engine.dispose()
    for store in (cached, fresh):
        with pytest.raises(StoreUnavailable, match="cannot be read: no row was found"):
            store.load()
        store.close()


def test_t2_a_commit_that_lost_its_race_writes_nothing_even_where_its_rows_clash(db: str) -> None:
    """A stale commit whose rows clash with the commit that came first (the same userName, another id): it lost
    the race (False), it did not fail (on PostgreSQL its rows are sent in one query with the compare-and-swap,
    which must stop them), and nothing of it is written."""
    first = SqlStore(db, article_org())
    second = SqlStore(db)
    stale = second.load()
    send(first, "POST", "/Users", {"userName": "ann@example.com", "displayName": "First"}, new_id="u1")
    out = handle(
        stale.directory,
        ScimRequest("POST", "/Users", {"userName": "ANN@example.com", "displayName": "Second"}, new_id="u2", now=START),
    )
    assert second.commit(stale, out) is False
    assert set(second.load().directory.users) == {"u1"}
    assert cast("dict[str, Any]", second.load().directory.resource("u1"))["displayName"] == "First"
    assert second.check() == ()
    first.close()
    second.close()


def _queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every query psycopg sends from now on (a statement sent alone, or several sent as one)."""
    import psycopg  # noqa: PLC0415 -- the postgres extra

    sent: list[str] = []
    real = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)  # Connection.execute's too
    return sent


@pytest.mark.parametrize("per_query", [500, 2], ids=["one-query", "several-queries"])
def test_t2_a_postgresql_commit_is_one_query_and_all_or_nothing(
    postgres_url: str, per_query: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each statement sent alone is a round trip: a commit sends the compare-and-swap, its rows, its feed and its
    COMMIT as one query (a large one as several, of a bounded number of statements each: the server parses a
    whole query at once). A statement failing after the compare-and-swap (here a trigger refusing a row; of several
    queries, in a later one) undoes the compare-and-swap too: nothing written, the version unmoved, and the next
    commit goes through."""
    monkeypatch.setattr(store_module, "_PER_QUERY", per_query)
    store = SqlStore(postgres_url, article_org())
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'no room for this row'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON users FOR EACH ROW"
            " WHEN (NEW.user_name = 'boom@example.com') EXECUTE FUNCTION refuse()"
        )
    snapshot = store.load()
    sent = _queries(monkeypatch)
    odd = "100% o'clock; %s %(x)s \\ $$ --"  # quoted into the query: nothing of it read as SQL or a placeholder
    ann = handle(
        snapshot.directory,
        ScimRequest("POST", "/Users", {"userName": "ann@example.com", "displayName": odd}, new_id="u1", now=START),
    )
    assert ann.changes  # a membership and its feed entry besides the user's row
    assert store.commit(snapshot, ann)
    assert len(sent) == (1 if per_query == 500 else 3)  # BEGIN, 4 statements, COMMIT: 2 a query
    assert sent[0].startswith("BEGIN;")
    assert sent[-1].endswith("COMMIT")
    snapshot = store.load()
    boom = handle(
        snapshot.directory, ScimRequest("POST", "/Users", {"userName": "boom@example.com"}, new_id="u2", now=START)
    )
    with pytest.raises(StoreUnavailable, match="no room for this row"):
        store.commit(snapshot, boom)
    monkeypatch.undo()
    with SqlStore(postgres_url) as fresh:
        assert fresh.load().version == snapshot.version
        assert set(fresh.load().directory.users) == {"u1"}
        assert cast("dict[str, Any]", fresh.load().directory.resource("u1"))["displayName"] == odd
        assert fresh.check() == ()
    bob = handle(
        snapshot.directory, ScimRequest("POST", "/Users", {"userName": "bob@example.com"}, new_id="u3", now=START)
    )
    assert store.commit(snapshot, bob)
    assert set(store.load().directory.users) == {"u1", "u3"}
    store.close()


def _end_every_connection(postgres_url: str) -> None:
    """Every other connection of the test database ended by the server, and gone (its socket closed)."""
    import psycopg  # noqa: PLC0415 -- the postgres extra

    url = sa.make_url(postgres_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        pids = [pid for (pid,) in conn.execute(query, (url.database,))]
        assert pids  # the store's pooled connection, at least
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(500):  # pg_terminate_backend only signals: until each has exited
            left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()
            if left == (0,):
                return
            time.sleep(0.01)
        pytest.fail("the ended connections did not exit")


@pytest.mark.parametrize("ping_after", [0.0, 3600.0], ids=["idle", "just-used"])
def test_t2_connections_the_postgresql_server_ended_are_replaced_not_failed(
    postgres_url: str, ping_after: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends every connection of the database (a restart, a failover, an idle timeout): the next token
    check, load and commit each get a live connection and succeed. The pool checks a connection as it hands it
    out when it sat idle (a ping), and when its socket has something to read, however short the idle."""
    monkeypatch.setattr(store_module, "_PING_AFTER", ping_after)
    store = SqlStore(postgres_url, article_org())
    _, token = store.add_token()

    _end_every_connection(postgres_url)
    assert store.check_token(token)
    _end_every_connection(postgres_url)
    snapshot = store.load()
    _end_every_connection(postgres_url)
    post = ScimRequest("POST", "/Users", {"userName": "ann@example.com"}, new_id="u1", now=START)
    out = handle(snapshot.directory, post)
    assert store.commit(snapshot, out)
    store.close()
    with SqlStore(postgres_url) as reopened:
        assert set(reopened.load().directory.users) == {"u1"}


def test_t2_a_postgresql_connection_used_a_moment_ago_is_handed_out_unpinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ping is a round trip: a pooled connection back from a request a moment ago is handed out as it is;
    one idle over the limit is pinged first (in autocommit: it is handed out with no transaction open)."""
    store = SqlStore(postgres_url, article_org())
    _, token = store.add_token()
    pings: list[object] = []
    real_ping = store.engine.dialect.do_ping

    def ping(dbapi: object) -> bool:
        pings.append(dbapi)
        return real_ping(dbapi)  # type: ignore[arg-type] # psycopg's connection

    monkeypatch.setattr(store.engine.dialect, "do_ping", ping)
    monkeypatch.setattr(store_module, "_PING_AFTER", 3600.0)  # however slow this machine: "a moment ago"
    assert store.check_token(token)
    send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    assert store.check_token(token)
    assert pings == []
    monkeypatch.setattr(store_module, "_PING_AFTER", 0.0)
    assert store.check_token(token)
    assert len(pings) == 1
    send(store, "POST", "/Users", {"userName": "bob@example.com"}, new_id="u2")
    assert len(pings) == 3  # the write's two: its read of the version, its commit
    with store.engine.connect() as conn:
        assert conn.connection.driver_connection.info.transaction_status == 0  # type: ignore[union-attr] # idle
    store.close()


def test_t2_a_pooled_connection_socket_is_watched_at_any_descriptor_number() -> None:
    """What the pool asks of an idle connection's socket (is something there to read, or was it closed?),
    answered without waiting, for a descriptor numbered over 1,023 too (``select.select`` refuses those; a
    server of many tenants and clients has them)."""
    import resource  # noqa: PLC0415 -- POSIX
    import socket  # noqa: PLC0415

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1600), hard))
    ours, theirs = socket.socketpair()
    high = os.dup2(ours.fileno(), 1500)
    try:
        assert not store_module._readable(high)
        theirs.send(b"!")
        assert store_module._readable(high)
        ours.recv(1)
        assert not store_module._readable(high)
        theirs.close()
        assert store_module._readable(high)  # closed by the other end
    finally:
        os.close(high)
        ours.close()
        theirs.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_t2_a_sqlite_write_takes_the_write_lock_at_its_begin_and_a_read_never_does(tmp_path: Path) -> None:
    """A store's write transaction holds SQLite's write lock from its BEGIN (two writers queue at once, never
    fail on upgrading a read lock); its reads never take it, so they never hold up another process's write."""
    store = SqlStore(tmp_path / "s.db", article_org())
    other = sqlite3.connect(tmp_path / "s.db", timeout=0, isolation_level=None)
    with store._transaction():  # noqa: SIM117 -- nothing written yet: the lock is the BEGIN's
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    with store._reader.begin():
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    other.close()
    store.close()


def test_t2_a_token_check_and_a_version_check_need_no_transaction_and_writes_stay_all_or_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single read sees one snapshot anyway: on PostgreSQL a request's token check and its check of a cached
    state's version run in autocommit (no ``BEGIN`` and ``ROLLBACK``, two round trips each). The connection goes
    back to the pool as it was: a write on it afterwards is still one transaction, undone whole."""
    store = SqlStore(db, article_org())
    _, token = store.add_token()
    assert store.check_token(token)  # its first use recorded (a write): not again within the minute
    store.load()
    outside: list[bool] = []
    real_run = store_module._run

    def spy(conn: sa.Connection, statement: sa.TextClause, params: Any) -> Any:
        result = real_run(conn, statement, params)
        driver: Any = conn.connection.driver_connection
        idle = driver.info.transaction_status == 0 if db.startswith("postgresql") else not driver.in_transaction
        outside.append(idle)
        return result

    monkeypatch.setattr(store_module, "_run", spy)
    assert store.check_token(token)
    version = store.load().version  # cached: its version read alone
    assert outside == [True, True]
    with pytest.raises(ZeroDivisionError), store._transaction() as conn:  # noqa: PT012 -- a write, then a failure
        real_run(conn, store_module._Sql.BUMP_VERSION, {"t": store.tenant, "new": version + 1, "old": version})
        _ = 1 / 0
    monkeypatch.undo()
    with SqlStore(db) as fresh:
        assert fresh.load().version == version
    store.close()


@contextmanager
def holding_the_lock_of(db: str, token_id: str) -> Iterator[None]:
    """Another connection holds the lock a token's use mark needs: SQLite's write lock, or the token's row."""
    if not db.startswith("postgresql"):
        with behind_the_store(db) as other:
            other.execute("BEGIN IMMEDIATE")
            yield
        return
    engine = open_database(db)
    with engine.begin() as other:
        other.execute(sa.text("SELECT 1 FROM tokens WHERE id = :id FOR UPDATE"), {"id": token_id})
        yield
    engine.dispose()


def test_a_token_check_never_waits_for_a_lock_the_use_mark_needs(db: str) -> None:
    """A server checks tokens in its event loop, so recording a token's use (at most once a minute) never waits:
    while another connection holds the lock the mark needs (SQLite's write lock, which another process's long
    write holds; the token's row on PostgreSQL), the check answers at once, and a later request records it."""
    now = [datetime(2026, 11, 30, 9, tzinfo=timezone.utc)]
    store = SqlStore(db, article_org(), tenant="acme", clock=lambda: now[0])
    token_id, token = store.add_token()
    assert store.check_token(token)
    now[0] += timedelta(minutes=5)
    checked: list[bool] = []
    checker = threading.Thread(target=lambda: checked.append(store.check_token(token)))
    with holding_the_lock_of(db, token_id):
        checker.start()
        checker.join(5)  # waiting would take 10 s (SQLite's busy timeout), or as long as the lock is held
        waited = checker.is_alive()
    checker.join()
    assert (waited, checked) == (False, [True])
    assert store.tokens()[0].last_used == "2026-11-30T09:00:00Z"  # left to a later request
    now[0] += timedelta(minutes=1)
    assert store.check_token(token)
    assert store.tokens()[0].last_used == "2026-11-30T09:06:00Z"
    with held_elsewhere(holding_the_lock_of(db, token_id)) as release:
        threading.Timer(0.3, release.set).start()
        send(store, "POST", "/Users", {"userName": "ann@example.com"}, new_id="a")  # a write still waits its turn
    assert store.load().directory.user_name("a") == "ann@example.com"
    store.close()


def test_t2_a_store_loads_and_commits_without_waiting_or_says_it_would_wait(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a server may do on its event loop's thread: on SQLite, the state in memory while the version has not
    moved, and a commit while the write lock is free (then as commit does: True, or False for a lost race);
    else None and nothing written: nothing in memory, the version moved, the write lock held elsewhere (never
    waited for; the busy timeout is restored after), this store in use by another thread. On PostgreSQL: None."""
    store, other = SqlStore(db, article_org(), tenant="acme"), SqlStore(db, tenant="acme")
    assert store.load_without_waiting(since=time.monotonic()) is None  # nothing in memory yet
    snapshot = store.load()
    ann = handle(snapshot.directory, ScimRequest("POST", "/Users", {"userName": "ann@example.com"}, new_id="a"))
    assert store.commits_without_waiting is (not db.startswith("postgresql"))
    if db.startswith("postgresql"):  # no token check read a version yet (below: what one does)
        assert (store.load_without_waiting(since=time.monotonic()), store.commit_without_waiting(snapshot, ann)) == (
            None,
            None,
        )
        assert other.load().version == snapshot.version  # nothing written
        store.close()
        other.close()
        return
    assert store.load_without_waiting(since=time.monotonic()) is snapshot
    with store._lock:  # another thread uses the store: neither waits for it
        assert store.load_without_waiting(since=time.monotonic()) is None
        assert store.commit_without_waiting(snapshot, ann) is None
    with behind_the_store(db) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another process's write
        began = time.monotonic()
        assert store.commit_without_waiting(snapshot, ann) is None
        assert time.monotonic() - began < 5  # not SQLite's busy timeout (10 s)
    assert other.load().version == snapshot.version  # nothing written
    with another_writer(db) as release:
        threading.Timer(0.3, release.set).start()
        assert store.commit(snapshot, ann)  # waits for the lock: the busy timeout was set back
    now = store.load_without_waiting(since=time.monotonic())
    assert now is not None
    assert now.version == snapshot.version + 1
    bob = handle(now.directory, ScimRequest("POST", "/Users", {"userName": "bob@example.com"}, new_id="b"))
    assert store.commit_without_waiting(now, bob) is True
    send(other, "POST", "/Users", {"userName": "cy@example.com"}, new_id="c")  # another process moves the version
    assert store.load_without_waiting(since=time.monotonic()) is None
    cy = handle(now.directory, ScimRequest("POST", "/Users", {"userName": "cy@example.com"}, new_id="c2"))
    assert store.commit_without_waiting(store.load(current=False), cy) is False  # a lost race: nothing written
    assert sorted(other.load().directory.users) == ["a", "b", "c"]
    assert store.check() == ()
    failure = sa.exc.OperationalError("SELECT version", {}, sqlite3.OperationalError("disk I/O error"))
    monkeypatch.setattr(store, "_version", lambda: (_ for _ in ()).throw(failure))
    with pytest.raises(StoreUnavailable, match=r"the state cannot be read: .*disk I/O error"):
        store.load_without_waiting(since=time.monotonic())
    monkeypatch.undo()
    latest = store.load()
    assert store.load_without_waiting(since=time.monotonic()) is latest  # its lock let go
    store.close()
    other.close()


def test_on_postgresql_the_state_in_memory_is_current_while_a_token_check_since_the_request_read_its_version(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token check reads the tenant's version in the same statement as the token. On PostgreSQL the state in
    memory is then current for a request, with no round trip of its own, when its version is the newest a check
    read and such a check began after the request came in (its own). A state another process moved is not
    current once a check read its version; nor is one no check read since the request came in (a check for
    another purpose, earlier, counts for nothing); nor this store's own commit until a check reads it."""
    store, other = SqlStore(postgres_url, article_org(), tenant="acme"), SqlStore(postgres_url, tenant="acme")
    snapshot = store.load()
    _, token = store.add_token()
    came = time.monotonic()  # a request comes in
    assert store.load_without_waiting(since=came) is None  # no check read a version yet
    assert store.check_token(token)  # its token check
    assert store.load_without_waiting(since=came) is snapshot
    assert store.load_without_waiting(since=time.monotonic()) is None  # a later request, before its own check
    ann = handle(snapshot.directory, ScimRequest("POST", "/Users", {"userName": "ann@example.com"}, new_id="a"))
    assert store.commit(snapshot, ann)
    came = time.monotonic()
    assert store.check_token(token)
    now = store.load_without_waiting(since=came)
    assert now is not None
    assert now.version == snapshot.version + 1
    assert store.commit(now, handle(now.directory, ScimRequest("DELETE", "/Users/a")))
    assert store.load_without_waiting(since=came) is None  # its own commit: newer than any version a check read
    assert store.check_token(token)
    now = store.load_without_waiting(since=came)
    assert now is not None
    send(other, "POST", "/Users", {"userName": "bob@example.com"}, new_id="b")  # another process
    came = time.monotonic()
    assert not store.check_token("not-a-token")  # not a token's shape: nothing read
    assert store.load_without_waiting(since=came) is None  # no check read a version since the request came in
    assert not store.check_token("scimroles_000000000000_" + "x" * 43)  # a wrong token: the version is read
    assert store.load_without_waiting(since=came) is None  # moved: not from memory
    assert sorted(store.load().directory.users) == ["b"]
    came = time.monotonic()  # another request
    assert store.check_token(token)  # reads the same version again
    assert store.load_without_waiting(since=came) is not None
    real = store_module._token_of
    monkeypatch.setattr(store_module, "_token_of", lambda *args: (real(*args)[0], 0))  # another thread's late check
    assert store.check_token(token)
    assert store.load_without_waiting(since=came) is not None  # the newest version read still counts
    store.close()
    other.close()


def test_on_postgresql_a_read_whose_own_token_check_read_no_version_is_made_in_a_worker_thread(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host checking tokens its own way (not through the store): a version an earlier token check of the store
    read (an admin page trying a token, say) says nothing of a request that came in later, so its read is made
    in a worker thread, from a state read afresh, and sees what another process wrote meanwhile."""
    from scim_roles.asgi import ScimApp  # noqa: PLC0415
    from test_asgi import call, hand_offs  # noqa: PLC0415

    store = SqlStore(postgres_url, article_org(), tenant="acme")
    app = ScimApp(store, check_token=lambda presented: presented == "the host's own")
    assert call(app, "GET", "/Users", token="the host's own")[0] == 200  # the state in memory
    _, token = store.add_token()
    assert store.check_token(token)  # the admin page: the version read, before the request below came in
    with SqlStore(postgres_url, tenant="acme") as other:
        send(other, "POST", "/Users", {"userName": "bob@example.com"}, new_id="b")
    hops = hand_offs(monkeypatch)
    status, _, listed = call(app, "GET", "/Users", token="the host's own")
    assert (status, listed["totalResults"], hops) == (200, 1, ["_process"])
    store.close()


def test_tenants_share_a_database_and_nothing_else(db: str) -> None:
    """Two tenants with the same user ids and userNames: each reads its own users, feed, tokens and log;
    one tenant's token is no token of the other; retention prunes a tenant's own rows only."""
    acme = SqlStore(db, article_org(), tenant="acme")
    beta = SqlStore(db, attrs.evolve(article_org(), domains=["beta.example"]), tenant="beta")
    assert tenants_of(db) == ("acme", "beta")
    send(acme, "POST", "/Users", {"userName": "ann@example.com"}, new_id="u1")
    send(beta, "POST", "/Users", {"userName": "ann@beta.example"}, new_id="u1")
    send(beta, "POST", "/Users", {"userName": "bob@beta.example"}, new_id="u2")
    assert acme.load().directory.user_name("u1") == "ann@example.com"
    assert beta.load().directory.user_name("u1") == "ann@beta.example"
    assert (len(acme.changes()), len(beta.changes())) == (1, 2)
    _, token = acme.add_token()
    assert acme.check_token(token)
    assert not beta.check_token(token)
    log = [LoggedRequest("2026-11-30T09:00:00Z", "GET", f"/{i}", 200, "", 1.0) for i in range(5)]
    acme.log_requests(log)
    beta.log_requests(log[:2], keep_rows=1)
    acme.log_requests(log[:1], keep_rows=3)
    assert [r.path for r in acme.requests()] == ["/3", "/4", "/0"]
    assert [r.path for r in beta.requests()] == ["/1"]
    send(beta, "DELETE", "/Users/u1")
    assert set(acme.load().directory.users) == {"u1"}
    assert acme.check() == beta.check() == ()
    acme.close()
    beta.close()


def test_tokens_rotate_and_revoke_on_both_backends(db: str) -> None:
    """Two active at most; a revoke counts for every store of the tenant at once."""
    store = SqlStore(db, article_org())
    other = SqlStore(db)
    first_id, first = store.add_token()
    _, second = store.add_token(expires_days=1)
    with pytest.raises(TooManyTokens):
        store.add_token()
    assert other.check_token(first)
    store.revoke_token(first_id)
    assert not other.check_token(first)
    assert other.check_token(second)
    assert next(t.id for t in other.tokens()) == first_id
    store.close()
    other.close()


def test_migrate_makes_a_new_database_and_an_empty_one_is_no_state(db: str) -> None:
    """`migrate` on an empty database makes this release's tables; a read-only open of an empty one is refused."""
    with pytest.raises(StoreUnavailable, match="not a scim-roles state"):
        SqlStore(db, readonly=True)  # SQLite: no file yet; PostgreSQL: an empty database
    assert migrate(db) in ((0, 5), (5, 5))
    assert migrate(db) == (5, 5)
    assert tenants_of(db) == ()
    assert cli("tenants", "add", "acme", ORG, "--db", db)[0] == 0
    assert cli("tenants", "list", "--db", db, "--json")[1].startswith('[{"tenant": "acme"')
    assert cli("check", "--db", db)[0] == 0


# -- several server processes on one database


@contextmanager
def servers(db: str, count: int) -> Iterator[list[str]]:
    """`count` `scim-roles serve --db DB` processes; yields their base URLs (without the tenant)."""
    env = {k: v for k, v in os.environ.items() if k != "SCIM_ROLES_TOKEN"}
    ports = [free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "scim_roles", "serve", "--db", db, "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        bases = [f"http://127.0.0.1:{port}/scim/v2" for port in ports]
        for base in bases:
            wait_until_up(base)
        SERVED[:] = processes
        yield bases
    finally:
        for process in processes:
            process.kill()
            process.wait()


def tenants_with_tokens(db: str, names: list[str]) -> dict[str, str]:
    tokens = {}
    for i, name in enumerate(names):
        org = attrs.evolve(article_org(), domains=[f"{name}.example"]) if i else article_org()
        with SqlStore(db, org, tenant=name) as store:
            tokens[name] = store.add_token()[1]
    return tokens


@pytest.mark.processes
def test_s2_a_username_race_across_processes_gives_one_201_and_the_rest_409(db: str) -> None:
    """The same userName posted at once to three server processes, eight times: exactly one 201."""
    tokens = tenants_with_tokens(db, ["acme", "beta"])
    with servers(db, 3) as bases:
        answers: list[int] = []
        lock = threading.Lock()

        def post(base: str) -> None:
            status, _ = request(
                f"{base}/acme", "POST", "/Users", {"userName": "race@example.com"}, token=tokens["acme"]
            )
            with lock:
                answers.append(status)

        threads = [threading.Thread(target=post, args=(bases[i % 3],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [201] + [409] * 7
        status, _ = request(
            f"{bases[0]}/beta", "POST", "/Users", {"userName": "race@beta.example"}, token=tokens["acme"]
        )
        assert status == 401  # acme's token is no token of beta
        status, _ = request(f"{bases[0]}/nobody", "GET", "/Users", token=tokens["acme"])
        assert status == 401  # an unknown tenant: the same answer
    with SqlStore(db, tenant="acme") as store:
        assert [store.load().directory.user_name(u) for u in store.load().directory.users] == ["race@example.com"]
        assert store.check() == ()


def client_script(c: int, domain: str) -> list[tuple[str, str, Any]]:
    """Client ``c``'s mixed requests, on users of its own: ``{k}`` in a path is the id of its k-th user."""
    add = patch({"op": "add", "path": "members", "value": [{"value": "{0}"}]})
    steps: list[tuple[str, str, Any]] = [
        ("POST", "/Users", {"userName": f"c{c}a@{domain}"}),
        ("POST", "/Users", {"userName": f"c{c}b@{domain}"}),
        ("PATCH", "/Groups/leads", add),
        ("PATCH", "/Groups/marketing", json.loads(json.dumps(add).replace("{0}", "{1}"))),
        ("PATCH", "/Users/{0}", patch({"op": "replace", "path": "displayName", "value": f"Client {c}"})),
    ]
    if c % 2:
        steps.append(("PATCH", "/Users/{1}", patch({"op": "replace", "value": {"active": False}})))
    if c % 3 == 0:
        steps.append(("PATCH", "/Groups/leads", patch({"op": "remove", "path": 'members[value eq "{0}"]'})))
    if c % 4 == 1:
        steps.append(("DELETE", "/Users/{1}", None))
    return steps


def run_script(send: Any, steps: list[tuple[str, str, Any]]) -> None:
    """Each step through ``send(method, path, body) -> (status, body)``, ids filled in; every step succeeds."""
    ids: list[str] = []
    for method, path, body in steps:
        filled = json.loads(
            json.dumps(body).replace("{0}", ids[0] if ids else "").replace("{1}", ids[-1] if ids else "")
        )
        status, answer = send(method, path.format(*ids) if ids else path, filled)
        assert status in (200, 201, 204), (method, path, status, answer)
        if method == "POST":
            ids.append(answer["id"])


def by_name(store: SqlStore) -> tuple[Any, ...]:
    """A tenant's state, ids left out: users by userName, group members, memberships."""
    directory = store.load().directory
    name = directory.user_name
    users = sorted(
        (name(u), (directory.resource(u) or {}).get("displayName"), not directory.users[u].deprovisioned)
        for u in directory.users
    )
    members = sorted((g.id, name(u)) for g in directory.org.groups for u in directory.members(g.id))
    access = sorted(
        (name(u), team, role.value) for u, teams in store.memberships().items() for team, role in teams.items()
    )
    return users, members, access


@pytest.mark.processes
def test_t2_several_processes_and_clients_end_where_a_serial_replay_ends(db: str, tmp_path: Path) -> None:
    """3 tenants, 4 processes, 8 clients of mixed requests at once (users created, renamed, deactivated and
    deleted, members added and removed in shared groups): each tenant ends where a serial replay of the same
    requests, client after client in one process, ends: the same users, members and memberships; no drift."""
    names = ["acme", "beta", "gamma"]
    domains = {"acme": "example.com", "beta": "beta.example", "gamma": "gamma.example"}
    tokens = tenants_with_tokens(db, names)
    scripts = {c: (names[c % 3], client_script(c, domains[names[c % 3]])) for c in range(8)}
    with servers(db, 4) as bases:

        def client(c: int) -> None:
            tenant, steps = scripts[c]
            base = f"{bases[c % 4]}/{tenant}"
            run_script(lambda m, p, b: request(base, m, p, b, token=tokens[tenant]), steps)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    minted = itertools.count()
    for n, tenant in enumerate(names):
        org = attrs.evolve(article_org(), domains=[domains[tenant]]) if n else article_org()
        with SqlStore(tmp_path / f"replay-{tenant}.db", org) as replay:
            for c in range(8):
                if scripts[c][0] == tenant:

                    def one(method: str, path: str, body: Any, store: SqlStore = replay) -> tuple[int, Any]:
                        out = send(store, method, path, body, new_id=f"r{next(minted)}")
                        return out.status, json.loads(out.response.body) if out.response.body else None

                    run_script(one, scripts[c][1])
            with SqlStore(db, tenant=tenant) as served:
                assert by_name(served) == by_name(replay)
                assert served.check() == ()


@pytest.mark.processes
def test_t2_kill_9_of_one_process_mid_burst_loses_no_acknowledged_write(db: str) -> None:
    """Two processes take user creations and group member adds; one is killed with SIGKILL mid-burst: every
    write either answered is stored (the user, and its membership of the group); the other process keeps
    serving; the state has no drift."""
    tokens = tenants_with_tokens(db, ["acme"])
    acknowledged: list[str] = []
    members: list[str] = []
    with servers(db, 2) as bases:
        stop = threading.Event()

        def burst(base: str, tag: str) -> None:
            n = 0
            while not stop.is_set() and n < 400:
                try:
                    status, body = request(f"{base}/acme", "POST", "/Users", {"userName": f"{tag}{n}@example.com"},
                                           token=tokens["acme"], timeout=5)  # fmt: skip
                    if status == 201:
                        acknowledged.append(f"{tag}{n}@example.com")
                        add = patch({"op": "add", "path": "members", "value": [{"value": body["id"]}]})
                        status, _ = request(f"{base}/acme", "PATCH", "/Groups/everyone", add, token=tokens["acme"],
                                            timeout=5)  # fmt: skip
                        if status == 200:
                            members.append(body["id"])
                except (OSError, http.client.HTTPException):
                    return  # the killed server (mid-answer too: not acknowledged)
                n += 1

        threads = [threading.Thread(target=burst, args=(bases[i], f"p{i}c")) for i in range(2)]
        for thread in threads:
            thread.start()
        threading.Event().wait(0.8)
        os.kill(SERVED[1].pid, signal.SIGKILL)
        threading.Event().wait(0.3)
        stop.set()
        for thread in threads:
            thread.join()
        status, _ = request(f"{bases[0]}/acme", "GET", "/Users?count=1", token=tokens["acme"])
        assert status == 200  # the other process still serves
    with SqlStore(db, tenant="acme") as store:
        directory = store.load().directory
        stored = {directory.user_name(u) for u in directory.users}
        assert set(acknowledged) <= stored
        assert set(members) <= set(directory.members("everyone"))
        assert store.check() == ()
    assert len(acknowledged) > 10
    assert len(members) > 10


@pytest.mark.processes
@pytest.mark.parametrize("clients", [1, 4])
def test_t2_kill_9_mid_burst_of_member_writes_and_renames_on_postgresql_loses_nothing_acknowledged(
    clients: int, postgres_url: str
) -> None:
    """Member adds and removes and group renames through one process, killed with SIGKILL mid-burst, twice, and
    restarted: every acknowledged write is stored (those in flight may be too, unanswered), and check is clean.
    Each commit is one query, of one write or (4 clients, each writing to a group of its own) of the writes that
    waited together: a kill while it is sent, or before its answer, is all or nothing. (SQLite's run of this
    is in test_state_serve.py.)"""
    import random  # noqa: PLC0415

    tokens = tenants_with_tokens(postgres_url, ["acme"])
    rng = random.Random(7)  # noqa: S311 -- timings and choices, not secrets
    writes = GroupWrites(["leads", "marketing", "everyone", "it-admins"][: max(2, clients)], rng)
    users: list[str] = []
    for round_ in range(2):
        with servers(postgres_url, 1) as (base,):
            url = f"{base}/acme"
            if not users:
                for i in range(6):
                    status, body = request(
                        url, "POST", "/Users", {"userName": f"u{i}@example.com"}, token=tokens["acme"]
                    )
                    assert status == 201
                    users.append(body["id"])
            kill_9_during(SERVED[0], writes.bursts(url, users, str(round_), clients, token=tokens["acme"]), rng)
        with SqlStore(postgres_url, tenant="acme") as store:
            writes.check(store.load().directory)
            assert store.check() == ()
    assert any(writes.members.values())


@pytest.mark.processes
def test_t2_t4_kill_9_of_a_settings_edit_on_postgresql_leaves_it_undone_or_done(
    postgres_url: str, tmp_path: Path
) -> None:
    """`scim-roles edit --apply` of a default team over 1,000 users, killed with SIGKILL from before its work
    to after it: the tenant has the settings before or after, with exactly the memberships they give and a
    clean check, never part of the edit. (SQLite's run of this is in test_state_serve.py.)"""
    kill_settings_edits(postgres_url, tmp_path, 1000, tenant="acme")


def test_a_new_tenant_is_served_without_a_restart_and_only_a_bounded_number_is_kept(db: str) -> None:
    """A tenant added while servers run is served at its next request; the app keeps at most cache_size
    tenants' states, least recently used first out."""
    from scim_roles.asgi import TenantApp  # noqa: PLC0415

    tokens = tenants_with_tokens(db, ["acme", "beta", "gamma"])
    app = TenantApp(db, cache_size=2)
    from serve_helpers import serve_thread  # noqa: PLC0415

    with serve_thread(app) as base:  # type: ignore[arg-type]
        assert list(app.cached) == []  # none loaded at start
        for name in ("acme", "beta", "gamma", "beta"):
            status, _ = request(f"{base}/scim/v2/{name}", "GET", "/Users", token=tokens[name])
            assert status == 200
        assert app.cached == ("gamma", "beta")
        with SqlStore(db, attrs.evolve(article_org(), domains=["delta.example"]), tenant="delta") as store:
            late = store.add_token()[1]
        assert request(f"{base}/scim/v2/delta", "GET", "/Users", token=late)[0] == 200
        assert request(f"{base}/scim/v2/Users", "GET", "/Users", token=late)[0] == 401  # no default tenant
        assert request(f"{base}/scim/v2/nobody", "GET", "/Users", token=late) == request(
            f"{base}/scim/v2/delta", "GET", "/Users", token="scimroles_000000000000_" + "x" * 43
        )  # an unknown tenant: the very answer of a wrong token
        assert request(f"{base}/elsewhere", "GET", "/Users", token=late)[0] == 404
        assert app.cached == ("beta", "delta")  # an unknown tenant takes no place
    app.close()
    assert not app.cached


def test_a_tenant_in_memory_is_found_on_the_event_loop_and_never_waited_for_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant in memory is found without a thread's hop, and opened once (the same app however often it is
    asked for); while another thread holds the cache (opening a tenant), the event loop does not wait for it:
    the request asks from a thread instead."""

    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from test_asgi import call, hand_offs  # noqa: PLC0415

    db = str(tmp_path / "state.db")
    token = tenants_with_tokens(db, ["acme"])["acme"]
    app = TenantApp(db)
    hops = hand_offs(monkeypatch)
    assert call(app, "GET", "/scim/v2/acme/Users", token=token)[0] == 200
    assert hops == ["_app", "_process"]  # opened from a thread
    assert call(app, "GET", "/scim/v2/acme/Users", token=token)[0] == 200
    assert hops[2:] == []  # found on the event loop, and answered there (its state in memory)
    opened = app._app("acme", token)
    assert opened is app._app("acme", token) is app._cached("acme")  # opened once
    with held_elsewhere(app._lock):  # another thread opening a tenant holds the cache
        assert app._cached("acme") is None  # at once: not waited for on the event loop
    assert app._cached("acme") is opened
    app.close()


def test_t2_a_turn_that_waits_for_nothing_is_made_on_the_event_loop_any_other_in_a_worker_thread(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handing a turn to a worker thread and back costs about as much as a small write: with the tenant's state
    in memory and current, reads are made on the event loop's own thread, and on SQLite writes too (each
    handled once). The first request (nothing in memory), one after another process moved the state (its
    token check read the new version), and a write on PostgreSQL (a round trip over the network) are made in a
    worker thread."""

    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from test_asgi import call, hand_offs  # noqa: PLC0415

    token = tenants_with_tokens(db, ["acme"])["acme"]
    app = TenantApp(db)
    hops = hand_offs(monkeypatch)

    handled: list[str] = []
    real_handle = handle

    def counted_handle(directory: Any, request: Any) -> Any:
        handled.append(request.method)
        return real_handle(directory, request)

    monkeypatch.setattr("scim_roles.asgi.handle", counted_handle)

    def go(method: str, body: bytes | None = None) -> tuple[int, Any]:
        status, _, data = call(app, method, "/scim/v2/acme/Users", body, token=token)
        return status, data

    assert go("GET")[0] == 200
    assert hops == ["_app", "_process"]  # opened, and its state loaded, in worker threads
    assert go("POST", b'{"userName": "ann@example.com"}')[0] == 201
    assert go("GET")[0] == 200
    on_sqlite = not db.startswith("postgresql")
    assert hops[2:] == ([] if on_sqlite else ["_process"])  # a write on PostgreSQL: in a worker thread
    assert handled == ["GET", "POST", "GET"]  # each once: none handled on the loop, then again in a thread
    with SqlStore(db, tenant="acme") as other:  # another process moves the state
        send(other, "POST", "/Users", {"userName": "bob@example.com"}, new_id="b")
    status, listed = go("GET")
    assert (status, listed["totalResults"]) == (200, 2)
    assert hops[-1] == "_process"  # read again in a worker thread
    app.close()


def test_t2_a_write_never_waits_for_sqlites_write_lock_on_the_event_loop(tmp_path: Path) -> None:
    """While another process holds SQLite's write lock (a long settings edit, say), a write that would wait for
    it is handed to a worker thread and waits there: the event loop goes on serving another tenant meanwhile.
    The write is made once the lock is free, with the id minted for it on the event loop: one id a request."""
    import asyncio  # noqa: PLC0415

    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from test_asgi import answer, call  # noqa: PLC0415

    db = str(tmp_path / "state.db")
    tokens = tenants_with_tokens(db, ["acme", "beta"])
    minted: list[str] = []

    def mint() -> str:
        minted.append(f"u{len(minted)}")
        return minted[-1]

    app = TenantApp(db, mint_id=mint)
    for tenant, token in tokens.items():  # each tenant's state in memory
        assert call(app, "GET", f"/scim/v2/{tenant}/Users", token=token)[0] == 200

    async def meanwhile(release: threading.Event) -> tuple[int, bool, float, Any]:
        ann = b'{"userName": "ann@example.com"}'
        write = asyncio.ensure_future(answer(app, "POST", "/scim/v2/acme/Users", ann, token=tokens["acme"]))
        began = time.monotonic()
        await asyncio.sleep(0.2)  # the write's turn begins, and finds the lock held
        status, _, _ = await answer(app, "GET", "/scim/v2/beta/Users", token=tokens["beta"])
        took, waiting = time.monotonic() - began, not write.done()
        release.set()
        return status, waiting, took, await write

    with another_writer(db) as release:
        read, waiting, took, (status, _, created) = asyncio.run(meanwhile(release))
    assert (read, waiting, status) == (200, True, 201)
    assert took < 5  # not SQLite's busy timeout (10 s)
    assert (created["id"], minted) == ("u2", ["u0", "u1", "u2", "u3"])  # one id for each of the four requests
    app.close()


def test_tenant_app_refuses_bad_settings_and_shares_a_given_engine(db: str) -> None:
    """A cache size below 1 or a token with spaces: refused, naming the field; an engine it was given is left
    open for the giver (the stores on it share it), one it opened is closed with it."""
    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from scim_roles.store import open_database  # noqa: PLC0415

    for bad in (0, True, "2"):
        with pytest.raises(ValueError, match="TenantApp: cache_size: must be a whole number from 1"):
            TenantApp(db, cache_size=bad)  # type: ignore[arg-type]
    for token in ("", " padded", "line\n"):
        with pytest.raises(ValueError, match="TenantApp: token: must be non-empty, without spaces"):
            TenantApp(db, token=token)
    engine = open_database(db)
    store = SqlStore(engine, article_org(), tenant="acme")
    assert store.engine is engine
    store.close()
    with SqlStore(engine, tenant="acme") as acme:
        _, token = acme.add_token()
    app = TenantApp(engine, default_tenant="acme")
    from test_asgi import call  # noqa: PLC0415

    assert call(app, "GET", "/scim/v2/Users", token=token)[0] == 200  # the default's
    assert call(app, "GET", "/scim/v2/acme/Users", token=token)[0] == 200
    for path in ("/scim/v2/0ac275ac-532a-49d6-be61-6538afc06843", "/scim/v2/nobody/Users"):  # no such tenant
        assert call(app, "GET", path, token=token)[0] == 404  # the default's 404
        assert call(app, "GET", path, token="wrong")[0] == 401
    app.close()
    with SqlStore(engine, tenant="acme") as again:  # the engine still works: neither closed it
        assert again.load().directory.org == store.org
    assert migrate(engine) == (5, 5)
    engine.dispose()


@pytest.mark.processes
def test_a_token_rotated_and_revoked_while_clients_run(db: str) -> None:
    """Clients write through two processes with the old token; a new one is added and the clients move to it;
    the old one is revoked: no request with the new token is ever refused, and from the revoke on every
    server refuses the old one."""
    import time  # noqa: PLC0415

    with SqlStore(db, article_org(), tenant="acme") as store:
        old_id, old = store.add_token()
    current = {"token": old}
    refused_new: list[int] = []
    stop = threading.Event()
    with servers(db, 2) as bases:

        def client(c: int) -> None:
            n = 0
            while not stop.is_set():
                token = current["token"]
                status, _ = request(f"{bases[c % 2]}/acme", "POST", "/Users", {"userName": f"c{c}n{n}@example.com"},
                                    token=token)  # fmt: skip
                if token != old and status != 201:
                    refused_new.append(status)
                n += 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        with SqlStore(db, tenant="acme") as store:
            _, new = store.add_token()
            current["token"] = new
            time.sleep(0.5)
            store.revoke_token(old_id)
        after = [request(f"{base}/acme", "GET", "/Users?count=1", token=old)[0] for base in bases]
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()
        assert after == [401, 401]
        assert [request(f"{base}/acme", "GET", "/Users?count=1", token=new)[0] for base in bases] == [200, 200]
    assert refused_new == []
    with SqlStore(db, tenant="acme") as store:
        assert store.check() == ()
        assert [t.revoked is not None for t in store.tokens()] == [True, False]


def test_two_processes_creating_one_tenant_at_once_create_it_once(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process creates the tenant between this one's look and its write: this one finds it there,
    creates nothing, and checks its document against it."""
    held = SqlStore._held
    calls: list[int] = []

    def another_process_first(store: SqlStore, tenant: str | None) -> tuple[int | None, tuple[str, ...]]:
        seen = held(store, tenant)
        if not calls:
            calls.append(1)
            SqlStore(db, article_org(), tenant="acme").close()  # the other process, in between
        return seen

    monkeypatch.setattr(SqlStore, "_held", another_process_first)
    with SqlStore(db, article_org(), tenant="acme") as store:
        assert store.tenant == "acme"
        assert [e.origin for e in store.changes()] == []
    assert tenants_of(db) == ("acme",)


_OPEN_AT = """
import json, sys, time
from scim_roles.io import load_org
from scim_roles.store import SqlStore
db, document, at = sys.argv[1], sys.argv[2], float(sys.argv[3])
org = load_org(json.loads(open(document, encoding="utf-8").read()))
while time.time() < at:
    pass
with SqlStore(db, org, tenant="acme") as store:
    print(store.load().version)
"""


@pytest.mark.processes
def test_four_processes_opening_one_new_database_at_once_make_one_state(db: str, tmp_path: Path) -> None:
    """Four processes started on one new database at the same instant (servers started together on a new
    file), each creating the schema and the tenant if it finds neither: every one opens the same state,
    created once, with nothing in it but the tenant's settings."""
    document = tmp_path / "org.json"
    document.write_text(json.dumps(to_builtins(article_org())), encoding="utf-8")
    at = time.time() + 3  # every interpreter started and its imports done by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, db, str(document), str(at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = [(*process.communicate(timeout=120), process.returncode) for process in processes]
    assert outputs == [(b"0\n", b"", 0)] * 4  # each found or made the one new state
    assert tenants_of(db) == ("acme",)
    with SqlStore(db, tenant="acme") as store:
        assert store.org == article_org()
        assert store.changes() == ()
        assert store.check() == ()


def test_an_unknown_tenant_and_every_wrong_token_cost_one_read_and_one_hash_and_load_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown tenant, a wrong secret, another tenant's token, an expired or a revoked token, the tenant in
    memory or not: the same 401 after the same work (one indexed read, one hash), and no tenant's state is
    loaded for it; several Authorization headers: the same 400 before any work."""
    from scim_roles import _tokens  # noqa: PLC0415
    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from test_asgi import call  # noqa: PLC0415

    tokens = tenants_with_tokens(db, ["acme", "beta", "gamma"])
    with SqlStore(db, tenant="beta") as store:
        expiring = store.add_token(expires_days=1)[1]
    with SqlStore(db, tenant="gamma") as store:
        revoked_id, revoked = store.add_token()
        store.revoke_token(revoked_id)
    engine = open_database(db)
    work = _count_reads_and_hashes(engine, monkeypatch)
    later = datetime.now(timezone.utc) + timedelta(days=2)  # the expiring token has expired
    app = TenantApp(engine, clock=lambda: later)
    lookup = _tokens.split(tokens["acme"])[0]  # type: ignore[index]
    wrong = [
        ("nobody", tokens["acme"]),  # no such tenant
        ("acme", f"scimroles_{lookup}_{'x' * 43}"),  # its token's id, another secret
        ("acme", tokens["beta"]),  # another tenant's token
        ("beta", expiring),
        ("gamma", revoked),
    ]
    answers = []
    for tenant, token in wrong:
        work.update(reads=0, hashes=0)
        answers.append(call(app, "GET", f"/scim/v2/{tenant}/Users", token=token))
        assert work == {"reads": 1, "hashes": 1}, tenant
    assert not app.cached
    assert call(app, "GET", "/scim/v2/acme/Users", token=tokens["acme"])[0] == 200
    assert app.cached == ("acme",)
    work.update(reads=0, hashes=0)
    answers.append(call(app, "GET", "/scim/v2/acme/Users", token=tokens["beta"]))  # acme in memory
    assert work == {"reads": 1, "hashes": 1}
    assert answers[0][0] == 401
    assert all(answer == answers[0] for answer in answers)
    work.update(reads=0, hashes=0)
    outside = call(app, "GET", "/elsewhere/Users", token=tokens["acme"])
    assert (outside[0], work) == (404, {"reads": 0, "hashes": 0})  # no tenant looked for outside the base
    several = {"Authorization": f"Bearer {tokens['acme']}"}  # and the lower-case one call() adds
    repeated = []
    for tenant in ("nobody", "beta", "acme"):  # no such tenant, one not in memory, one in memory
        work.update(reads=0, hashes=0)
        repeated.append(call(app, "GET", f"/scim/v2/{tenant}/Users", token=tokens["acme"], headers=several))
        assert work == {"reads": 0, "hashes": 0}, tenant
    assert repeated[0][0] == 400
    assert repeated[0][2]["detail"] == "send one Authorization header, not several"
    assert all(answer == repeated[0] for answer in repeated)
    app.close()
    engine.dispose()


def _count_reads_and_hashes(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The statements the engine runs (SQLite's BEGIN aside) and the token hashes computed, counted from now."""
    from scim_roles import _tokens  # noqa: PLC0415

    work = {"reads": 0, "hashes": 0}

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's own BEGIN (the store's begin event) is no read
            work["reads"] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    run = store_module._run  # the store's hot statements go to the driver's cursor, past SQLAlchemy's events

    def counted_run(conn: sa.Connection, statement: sa.TextClause, params: Any) -> Any:
        count(conn, None, statement.text)
        return run(conn, statement, params)

    monkeypatch.setattr(store_module, "_run", counted_run)
    digest = _tokens.digest

    def counted(secret: str) -> str:
        work["hashes"] += 1
        return digest(secret)

    monkeypatch.setattr(_tokens, "digest", counted)
    return work


def test_a_domain_claimed_by_another_tenant_meanwhile_is_domain_claimed_not_a_failed_write(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another tenant's claim committed between the read of the owners and the write (two servers at once,
    simulated by a read that sees no owner): DomainClaimed naming it, at creation and at a settings edit, and
    nothing written."""
    from scim_roles.store import DomainClaimed, _Sql  # noqa: PLC0415

    tenants_with_tokens(db, ["acme", "beta"])  # acme claims example.com, beta beta.example
    monkeypatch.setattr(_Sql, "DOMAIN_OWNERS", sa.text("SELECT domain, tenant FROM domains WHERE tenant = 'none'"))
    claimed = "'example.com' is claimed by tenant 'acme': a domain has one tenant"
    with pytest.raises(DomainClaimed) as err:
        SqlStore(db, article_org(), tenant="gamma")
    assert [str(p) for p in err.value.problems] == [f"org: domains: {claimed}"]
    assert tenants_of(db) == ("acme", "beta")
    with SqlStore(db, tenant="beta") as beta:
        before = beta.load()
        with pytest.raises(DomainClaimed, match=claimed):
            beta.put_org(attrs.evolve(beta.org, domains=["beta.example", "example.com", "zeta.example"]), actor=None)
        assert beta.load() == before
        beta.put_org(attrs.evolve(beta.org, domains=["beta.example", "zeta.example"]), actor=None)
        assert beta.org.domains == frozenset({"beta.example", "zeta.example"})


def test_active_tokens_counts_each_tenants_active_tokens_in_one_read(db: str, tmp_path: Path) -> None:
    """Revoked and expired tokens do not count; a tenant with none counts 0; an empty database holds none;
    tokens that cannot be read are StoreUnavailable, in the driver's words. authenticates judges expiry at
    the current time unless told another."""
    from scim_roles.store import _where, active_tokens, authenticates  # noqa: PLC0415

    tokens_with = tenants_with_tokens(db, ["acme", "beta"])
    assert len(tokens_with) == 2
    with SqlStore(db, tenant="acme") as store:
        revoked, _ = store.add_token()
        store.revoke_token(revoked)
        expiring = store.add_token(expires_days=1)[1]
    SqlStore(db, attrs.evolve(article_org(), domains=["bare.example"]), tenant="bare").close()  # no token
    engine = open_database(db)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert active_tokens(engine) == {"acme": 2, "bare": 0, "beta": 1}
    assert sum("tokens" in statement for statement in statements) == 1
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert active_tokens(engine, now=later) == {"acme": 1, "bare": 0, "beta": 1}
    assert authenticates(engine, "acme", expiring)  # now, by default
    assert not authenticates(engine, "acme", expiring, now=later)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE tokens"))
    for read, prefix in ((active_tokens, "the state"), (lambda e: authenticates(e, "acme", expiring), "the tokens")):
        with pytest.raises(StoreUnavailable) as err:
            read(engine)
        reason = str(err.value).removeprefix(f"{_where(engine)}: {prefix} cannot be read: ")
        assert reason != str(err.value)
        assert "tokens" in reason  # the driver's words: no such table, or relation "tokens" does not exist
        assert "[SQL" not in reason  # not SQLAlchemy's wrapping
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tenants RENAME TO renamed"))
    with pytest.raises(StoreUnavailable) as err:
        tenants_of(engine)
    reason = str(err.value).removeprefix(f"{_where(engine)}: the state cannot be read: ")
    assert "tenants" in reason
    assert "[SQL" not in reason
    engine.dispose()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert active_tokens(empty) == {}


def pooled(engine: sa.Engine) -> int:
    """The connections an engine's pool holds open, idle."""
    return cast("sa.pool.QueuePool", engine.pool).checkedin()


def test_tenant_app_closes_the_engine_it_opened_and_never_one_it_was_given(db: str) -> None:
    """close() drops the states in memory and closes the connections of an engine the app opened itself; an
    engine it was given stays open for its giver."""
    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from test_asgi import call  # noqa: PLC0415

    tokens = tenants_with_tokens(db, ["acme"])
    own = TenantApp(db)
    assert call(own, "GET", "/scim/v2/acme/Users", token=tokens["acme"])[0] == 200
    assert pooled(own._engine) > 0
    own.close()
    assert (own.cached, pooled(own._engine)) == ((), 0)
    engine = open_database(db)
    given = TenantApp(engine)
    assert call(given, "GET", "/scim/v2/acme/Users", token=tokens["acme"])[0] == 200
    given.close()
    assert given.cached == ()
    assert pooled(engine) > 0  # the giver's, open
    engine.dispose()


def test_tenant_app_answers_503_when_the_tokens_cannot_be_read(db: str, caplog: pytest.LogCaptureFixture) -> None:
    """The tokens table gone from under a running server: a 503 for a tenant in memory and one not, the
    reason logged on one line with no traceback, and no tenant loaded."""
    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from scim_roles.store import authenticates  # noqa: PLC0415
    from test_asgi import call  # noqa: PLC0415

    tokens = tenants_with_tokens(db, ["acme", "beta"])
    engine = open_database(db)
    app = TenantApp(engine)
    assert call(app, "GET", "/scim/v2/acme/Users", token=tokens["acme"])[0] == 200
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE tokens"))
    with pytest.raises(StoreUnavailable) as why:
        authenticates(engine, "beta", tokens["beta"])
    caplog.clear()
    for tenant in ("acme", "beta"):
        status, _, body = call(app, "GET", f"/scim/v2/{tenant}/Users", token=tokens[tenant])
        assert (status, body["detail"]) == (503, "the state cannot be read now; retry later"), tenant
    assert app.cached == ("acme",)
    logged = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records if r.name == "scim_roles.serve"]
    expected = ("ERROR", f"the state is unavailable: {json.dumps(str(why.value))[1:-1]}", None)
    assert [entry for entry in logged if entry[0] == "ERROR"] == [expected, expected]
    app.close()
    engine.dispose()


def test_tenant_app_hands_its_settings_to_each_tenants_app(db: str) -> None:
    """Public URL, body limit and clock reach every tenant's app; a base path's trailing slash is no part of
    it; a wrong token loads no default tenant, and the default tenant's token reaches it from a path that
    names no tenant."""
    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from test_asgi import call  # noqa: PLC0415

    tokens = tenants_with_tokens(db, ["acme", "beta"])
    later = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    minted = itertools.count(1)
    fresh = TenantApp(  # nothing in memory yet
        db, default_tenant="acme", public_url="https://scim.example.org/", max_body=200, clock=lambda: later,
        mint_id=lambda: f"minted-{next(minted)}",
    )  # fmt: skip
    assert (call(fresh, "GET", "/scim/v2/Users", token="wrong")[0], fresh.cached) == (401, ())  # nothing loaded
    status, _, body = call(fresh, "GET", "/scim/v2/nobody/Users", token=tokens["acme"])
    assert (status, fresh.cached) == (404, ("acme",))  # the default tenant's path, its token: its 404
    status, _, body = call(
        fresh, "POST", "/scim/v2/beta/Users", b'{"userName": "bo@beta.example"}', token=tokens["beta"]
    )
    assert (status, body["meta"]["location"]) == (201, f"https://scim.example.org/scim/v2/beta/Users/{body['id']}")
    assert (body["id"][:7], body["meta"]["created"]) == ("minted-", "2030-01-02T03:04:05Z")  # its ids, its clock
    status, _, again = call(fresh, "GET", f"/scim/v2/beta/Users/{body['id']}", token=tokens["beta"])  # a path below
    assert (status, again["userName"]) == (200, "bo@beta.example")
    big = json.dumps({"userName": "cy@beta.example", "displayName": "x" * 200}).encode()
    assert call(fresh, "POST", "/scim/v2/beta/Users", big, token=tokens["beta"])[0] == 413  # the app's max_body
    fresh.close()

    slash = TenantApp(db, base_path="/scim/v2/")  # a trailing slash: the same base
    assert call(slash, "GET", "/scim/v2/acme/Users", token=tokens["acme"])[0] == 200
    slash.close()


def test_tenant_app_routes_each_path_caches_least_recently_used_and_logs_per_tenant(db: str) -> None:
    """In process: a tenant's path goes to its app (locations name it), an unknown tenant or a path with no
    tenant and no default is the wrong token's 401, outside the base a 404; the cache drops the least
    recently used; the request log gets each request with its tenant; the environment's token is only the
    default tenant's; root_path is honoured; lifespan is answered."""
    import asyncio  # noqa: PLC0415

    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from test_asgi import call  # noqa: PLC0415

    tokens = tenants_with_tokens(db, ["acme", "beta", "gamma"])
    logged: list[tuple[str, int, str]] = []
    app = TenantApp(
        db, cache_size=2, token="from-the-environment", default_tenant="acme",
        request_log=lambda entry, tenant: logged.append((tenant, entry.status, entry.path)),
    )  # fmt: skip
    status, _, body = call(
        app, "POST", "/scim/v2/beta/Users", b'{"userName": "ann@beta.example"}', token=tokens["beta"]
    )
    assert (status, body["meta"]["location"].startswith("https://app.example.com/scim/v2/beta/Users/")) == (201, True)
    assert call(app, "GET", "/scim/v2/gamma/Users", token=tokens["gamma"])[0] == 200
    assert app.cached == ("beta", "gamma")
    assert call(app, "GET", "/scim/v2/beta/Users", token=tokens["beta"])[0] == 200
    assert app.cached == ("gamma", "beta")  # beta used last
    assert call(app, "GET", "/scim/v2/Users", token="from-the-environment")[0] == 200
    assert app.cached == ("beta", "acme")  # gamma, least recently used, dropped
    assert call(app, "GET", "/scim/v2/beta/Users", token="from-the-environment")[0] == 401
    assert call(app, "GET", "/scim/v2/acme/Users", token=tokens["beta"])[0] == 401
    assert call(app, "GET", "/elsewhere/Users", token=tokens["acme"])[0] == 404  # the default's
    assert call(app, "GET", "/scim/v2/beta/Users", token=tokens["beta"], root_path="/mounted")[0] == 200
    assert [t for t, _, _ in logged] == ["beta", "gamma", "beta", "acme", "beta", "acme", "acme", "beta"]
    assert logged[0][1:] == (201, "/scim/v2/beta/Users")
    app.close()

    bare = TenantApp(db, cache_size=1)  # no default tenant
    wrong = call(bare, "GET", "/scim/v2/acme/Users", token="scimroles_000000000000_" + "x" * 43)
    for path in ("/scim/v2/nobody/Users", "/scim/v2/Users", "/scim/v2", "/scim/v2/"):
        assert call(bare, "GET", path, token=tokens["acme"]) == wrong, path
    assert wrong[0] == 401
    assert wrong[1]["www-authenticate"] == 'Bearer realm="SCIM"'
    outside = call(bare, "GET", "/elsewhere/Users", token=tokens["acme"])
    assert (outside[0], outside[2]["detail"]) == (404, "no SCIM endpoint here")
    assert bare.cached == ()  # a wrong token loads no tenant
    messages: list[dict[str, Any]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    answered: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        answered.append(message)

    asyncio.run(bare({"type": "lifespan"}, receive, send))
    assert answered == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    bare.close()
