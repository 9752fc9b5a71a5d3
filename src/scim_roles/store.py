"""Where the SCIM state lives between requests: the :class:`Store` protocol and :class:`SqlStore`.

A store gives the current state as a :class:`Snapshot` (a
:class:`~scim_roles.scim.Directory` and a version) and commits an
:class:`~scim_roles.scim.Outcome` atomically, only if nobody committed since
that snapshot (compare-and-swap). :class:`SqlStore` keeps a tenant's state in
SQLite (the embedded default, a file in WAL mode) or PostgreSQL, through
SQLAlchemy 2 Core, one code path for both; many tenants share a database.
It is also the example of what a host stores for itself. Part of the
``serve`` layer: it does I/O; needs the ``scim`` extra (and ``postgres`` for
PostgreSQL).

The stored state keeps the promises T1-T7 of the rules: one truth (settings,
users, groups, members and the effective memberships, the last always equal
to resolving the others), acknowledged means durable, settings change only
by a previewed edit, a locked user's manual edits are refused, drift is
visible (:meth:`SqlStore.check`), and every membership change is in the
feed (:meth:`SqlStore.changes`).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

import attrs
import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from . import _tokens
from ._builtins import to_builtins
from ._changes import Change, diff, reconcile
from ._errors import InvalidArgument, InvalidOrg, Problem, ScimRolesError
from ._many import resolve_all
from ._model import Grant, IdpGroup, Org, User
from ._preview import Preview
from ._resolve import index_of, resolve_indexed
from ._result import Resolution
from ._roles import Role
from .saml import Attributes, SignIn, sign_in
from .scim import Directory, Outcome, ScimResponse, user_name_key
from .scim._pmap import PMap
from .scim._resources import canonical

__all__ = [
    "DomainClaimed",
    "Drift",
    "FeedEntry",
    "GuardrailFired",
    "LoggedRequest",
    "NotOrgAdmin",
    "RequestLog",
    "SettingsDiffer",
    "Snapshot",
    "SqlStore",
    "SqliteStore",
    "StateOutdated",
    "Store",
    "StoreUnavailable",
    "TokenInfo",
    "TooManyTokens",
    "active_tokens",
    "authenticates",
    "check_tenant_id",
    "is_tenant_id",
    "migrate",
    "open_database",
    "tenants_of",
]

SCHEMA = "v5"  # the Alembic revision this release writes (scim-roles migrate brings older states to it)
SCHEMA_NUMBER = 5  # 1: the 0.1 store; 2: the change feed, settings and memberships as one truth; 3: emails;
# 4: the tenant id and its tokens; 5: many tenants in one database, on SQLite or PostgreSQL (Alembic)
DEFAULT_TENANT = "default"  # the tenant of a state created without one
MAX_ACTIVE_TOKENS = 2  # rotation without downtime: the old token and the new
LAST_USED_EVERY = timedelta(minutes=1)  # a token's last use is written at most this often
REQUEST_LOG_ROWS = 10_000  # the request log keeps this many rows by default
ORIGINS = ("scim", "admin", "saml", "settings", "repair")
_CREATE_LOCK = 0x5C1A_0005  # PostgreSQL: the advisory lock that serializes creating the tables


class _Sql:
    """Every statement the store runs, by name: one spelling of each, for SQLite and PostgreSQL alike.

    Every table but ``tenants`` has the tenant in its key: ``:t`` is the
    store's tenant in every statement, so no statement reads or writes
    another tenant's rows.
    """

    SQLITE_WAIT = "PRAGMA busy_timeout=10000"  # ms: a writer waits this long for another's write lock
    SQLITE_NO_WAIT = "PRAGMA busy_timeout=0"
    SQLITE_READ_ONLY = (SQLITE_WAIT,)
    SQLITE_WRITABLE = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", SQLITE_WAIT)
    BEGIN = text("BEGIN")
    BEGIN_WRITE = text("BEGIN IMMEDIATE")
    LEGACY = "SELECT value FROM meta WHERE key = 'schema'"
    REVISION = "SELECT version_num FROM alembic_version"
    CREATE_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
    TENANTS = text("SELECT id FROM tenants ORDER BY id")
    HAS_TENANT = text("SELECT 1 FROM tenants WHERE id = :t")
    TENANT_TOKENS = text(
        "SELECT t.id, k.id, k.expires, k.revoked FROM tenants t LEFT JOIN tokens k ON k.tenant = t.id ORDER BY t.id"
    )
    SETTINGS = text("SELECT settings FROM tenants WHERE id = :t")
    VERSION = text("SELECT version FROM tenants WHERE id = :t")
    CREATE_TENANT = text("INSERT INTO tenants (id, settings, version, created) VALUES (:t, :settings, 0, :at)")
    SET_SETTINGS = text("UPDATE tenants SET settings = :settings WHERE id = :t")
    LOCK_TENANT = text("UPDATE tenants SET version = version WHERE id = :t")  # the tenant's row lock, no change
    NEXT_VERSION = text("UPDATE tenants SET version = version + 1 WHERE id = :t")
    BUMP_VERSION = text("UPDATE tenants SET version = :new WHERE id = :t AND version = :old")
    BUMP_OR_FAIL = text(  # sent at once with the rest: a race lost is an error (_LOST_RACE), which skips the rest
        "WITH bumped AS (UPDATE tenants SET version = :new WHERE id = :t AND version = :old RETURNING id)"
        " SELECT 1 / count(*) FROM bumped"
    )
    DOMAIN_OWNERS = text("SELECT domain, tenant FROM domains WHERE tenant <> :t")
    DOMAIN_OWNER = text("SELECT tenant FROM domains WHERE domain = :domain")
    DELETE_DOMAINS = text("DELETE FROM domains WHERE tenant = :t")
    CLAIM_DOMAIN = text("INSERT INTO domains (domain, tenant) VALUES (:domain, :t)")
    SEED_GROUP = text("INSERT INTO groups (tenant, id, resource) VALUES (:t, :id, :resource)")
    DELETED_GROUPS = text("SELECT id FROM deleted_groups WHERE tenant = :t")
    MANUAL = text("SELECT user_id, team, role FROM manual WHERE tenant = :t")
    MEMBERS = text("SELECT group_id, user_id, display FROM members WHERE tenant = :t")
    OTHER_MEMBERS = text(
        "SELECT m.group_id, m.user_id FROM members m JOIN users u ON u.tenant = m.tenant AND u.id = m.user_id"
        " WHERE m.tenant = :t AND NOT u.scim ORDER BY 1, 2"
    )
    USERS = text("SELECT id, key, user_name, saml, scim, deprovisioned, resource, email FROM users WHERE tenant = :t")
    GROUPS = text("SELECT id, resource FROM groups WHERE tenant = :t")
    MEMBERSHIPS = text("SELECT user_id, team, role FROM memberships WHERE tenant = :t ORDER BY 1, 2")
    FEED = text(
        "SELECT seq, at, user_id, team, before, after, origin FROM changes"
        " WHERE tenant = :t AND seq > :after ORDER BY seq"
    )
    FEED_FOLD = text("SELECT user_id, team, after FROM changes WHERE tenant = :t ORDER BY seq")
    DELETE_GROUP = text("DELETE FROM groups WHERE tenant = :t AND id = :id")
    MARK_DELETED = text("INSERT INTO deleted_groups (tenant, id) VALUES (:t, :id) ON CONFLICT DO NOTHING")
    PUT_GROUP = text(  # an update in place: the group's member rows stay (a delete and insert would cascade)
        "INSERT INTO groups (tenant, id, resource) VALUES (:t, :id, :resource)"
        " ON CONFLICT (tenant, id) DO UPDATE SET resource = excluded.resource"
    )
    DELETE_USER = text("DELETE FROM users WHERE tenant = :t AND id = :id")
    PUT_USER = text(
        "INSERT INTO users (tenant, id, key, user_name, saml, scim, deprovisioned, resource, email)"
        " VALUES (:t, :id, :key, :name, :saml, :scim, :gone, :resource, :email)"
        " ON CONFLICT (tenant, id) DO UPDATE SET key = excluded.key, user_name = excluded.user_name,"
        " saml = excluded.saml, scim = excluded.scim, deprovisioned = excluded.deprovisioned,"
        " resource = excluded.resource, email = excluded.email"
    )
    DELETE_MANUAL = text("DELETE FROM manual WHERE tenant = :t AND user_id = :id")
    ADD_MANUAL = text("INSERT INTO manual (tenant, user_id, team, role) VALUES (:t, :id, :team, :role)")
    PUT_MEMBER = text(
        "INSERT INTO members (tenant, group_id, user_id, display) VALUES (:t, :group, :id, :display)"
        " ON CONFLICT (tenant, group_id, user_id) DO UPDATE SET display = excluded.display"
    )
    DELETE_MEMBER = text("DELETE FROM members WHERE tenant = :t AND group_id = :group AND user_id = :id")
    DELETE_OTHER_MEMBERS = text(
        "DELETE FROM members WHERE tenant = :t AND user_id IN (SELECT id FROM users WHERE tenant = :t AND NOT scim)"
    )
    DELETE_MEMBERSHIP = text("DELETE FROM memberships WHERE tenant = :t AND user_id = :id AND team = :team")
    PUT_MEMBERSHIP = text(
        "INSERT INTO memberships (tenant, user_id, team, role) VALUES (:t, :id, :team, :role)"
        " ON CONFLICT (tenant, user_id, team) DO UPDATE SET role = excluded.role"
    )
    DELETE_MEMBERSHIPS = text("DELETE FROM memberships WHERE tenant = :t")
    CREDENTIALS = text("SELECT id, created, expires, last_used, revoked FROM tokens WHERE tenant = :t ORDER BY seq")
    CREDENTIAL = text("SELECT hash, created, expires, last_used, revoked FROM tokens WHERE tenant = :t AND id = :id")
    CREDENTIAL_AND_VERSION = text(  # a request's token, and the tenant's version as it came in: one statement
        "SELECT k.hash, k.created, k.expires, k.last_used, k.revoked, t.version FROM tenants t"
        " LEFT JOIN tokens k ON k.tenant = t.id AND k.id = :id WHERE t.id = :t"
    )
    ADD_CREDENTIAL = text(  # its place among the tenant's tokens: the tenant's row is locked, so no two race
        "INSERT INTO tokens (id, tenant, seq, hash, created, expires) VALUES (:id, :t,"
        " (SELECT coalesce(max(seq), 0) + 1 FROM tokens WHERE tenant = :t), :hash, :created, :expires)"
    )
    REVOKE = text("UPDATE tokens SET revoked = :at WHERE tenant = :t AND id = :id AND revoked IS NULL")
    MARK_USED = text("UPDATE tokens SET last_used = :at WHERE tenant = :t AND id = :id")
    MARK_USED_UNLOCKED = text(  # PostgreSQL: the row only if no other transaction holds it (never a wait)
        "UPDATE tokens SET last_used = :at WHERE tenant = :t AND id = :id"
        " AND id IN (SELECT id FROM tokens WHERE tenant = :t AND id = :id FOR UPDATE SKIP LOCKED)"
    )
    LOG_REQUEST = text(
        "INSERT INTO requests (tenant, at, method, path, status, reason, ms)"
        " VALUES (:t, :at, :method, :path, :status, :reason, :ms)"
    )
    PRUNE_ROWS = text(  # all but the newest :keep rows of the tenant (a global seq: other tenants' rows interleave)
        "DELETE FROM requests WHERE tenant = :t AND seq <"
        " (SELECT seq FROM requests WHERE tenant = :t ORDER BY seq DESC LIMIT 1 OFFSET :skip)"
    )
    PRUNE_DAYS = text("DELETE FROM requests WHERE tenant = :t AND at < :before")
    REQUESTS = text(
        "SELECT at, method, path, status, reason, ms, seq FROM requests WHERE tenant = :t ORDER BY seq DESC LIMIT :n"
    )
    APPEND = text(
        "INSERT INTO changes (tenant, at, user_id, team, before, after, origin)"
        " VALUES (:t, :at, :id, :team, :before, :after, :origin)"
    )


class StoreUnavailable(Exception):  # a state, not a bad input: not a ScimRolesError
    """A write could not be made durable (T2): the state file is gone, replaced, read-only or full, or I/O failed.

    Nothing was written. The ASGI app answers ``503``; the last durable
    state still answers reads.
    """


class SettingsDiffer(InvalidOrg):
    """An org document given to an existing state is not its stored settings (T4).

    Stored settings change only through a previewed edit
    (:meth:`SqlStore.put_org`, ``scim-roles edit``), never by restarting
    with another document.
    """


class GuardrailFired(ScimRolesError):
    """A settings edit asked to be strict and its preview has guardrail findings: nothing was saved.

    Attributes:
        preview: The preview that was refused.
    """

    def __init__(self, preview: Preview) -> None:
        self.preview = preview
        super().__init__(
            *(Problem("edit", f.kind.value, f.detail, f.user_id) for f in preview.findings),
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (GuardrailFired, (self.preview,))


class NotOrgAdmin(ScimRolesError):
    """A settings edit by a user who is not an org admin (R15): nothing was saved."""


class TooManyTokens(ScimRolesError):
    """A tenant has two active tokens already: revoke one before adding another."""


_TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")
_RESOURCE_PATHS = frozenset({"users", "groups", "serviceproviderconfig", "resourcetypes", "schemas", "bulk", "me"})


def is_tenant_id(text: object) -> bool:
    """Whether ``text`` is a tenant id (:func:`check_tenant_id` says why not)."""
    return type(text) is str and bool(_TENANT.match(text)) and text not in _RESOURCE_PATHS


def check_tenant_id(tenant: str) -> str:
    """``tenant`` if it is a tenant id, else :class:`InvalidArgument` naming it.

    A tenant id is the segment after ``/scim/v2/`` in its endpoint: 1 to 63
    lower-case letters, digits and hyphens, starting with a letter or digit,
    and not the name of a SCIM endpoint (``users``, ``groups``, ...), which
    the same path would also name.
    """
    if type(tenant) is not str or not _TENANT.match(tenant):
        raise InvalidArgument(
            Problem(
                "tenant",
                "id",
                f"must be 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit,"
                f" got {tenant!r}",
            )
        )
    if tenant in _RESOURCE_PATHS:
        raise InvalidArgument(Problem("tenant", "id", f"{tenant!r} names a SCIM endpoint: choose another id", tenant))
    return tenant


@attrs.frozen
class TokenInfo:
    """One of a tenant's bearer tokens, as listed: its id and times, never its secret.

    Attributes:
        id: The lookup id, which the token contains (``scimroles_<id>_...``).
        created: When it was added (ISO 8601, UTC).
        expires: When it stops working, or ``None``.
        last_used: When it last authenticated a request (at most a minute
            behind), or ``None``.
        revoked: When it was revoked, or ``None``.
    """

    id: str
    created: str
    expires: str | None
    last_used: str | None
    revoked: str | None

    def active_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked is None and (self.expires is None or now < _parse(self.expires))

    def to_builtins(self) -> dict[str, object]:
        """The token's row as JSON-ready data (``scim-roles tokens list --json``)."""
        return attrs.asdict(self)


@attrs.frozen
class Snapshot:
    """A store's state at one moment.

    Attributes:
        directory: The state.
        version: Bumped by every commit; a commit against an older version
            is refused.
    """

    directory: Directory
    version: int


@attrs.frozen
class FeedEntry:
    """One membership change in the feed (T7).

    Attributes:
        seq: Its place in the feed: strictly increasing, never reused.
        at: When it was committed (ISO 8601, UTC).
        user_id: The user.
        team: The team.
        before: The role before (``None``: the user was not on the team).
        after: The role after (``None``: the user left the team).
        origin: What made it: ``"scim"`` (a SCIM request), ``"admin"`` (an
            app's edit of a user, :meth:`SqlStore.put_user`),
            ``"settings"`` (a settings edit) or ``"repair"`` (drift
            repaired, :meth:`SqlStore.repair`).
    """

    seq: int
    at: str
    user_id: str
    team: str
    before: Role | None
    after: Role | None
    origin: str

    def to_builtins(self) -> dict[str, object]:
        """The entry as JSON-ready data (``scim-roles changes --json`` prints one per line)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "user_id": self.user_id,
            "team": self.team,
            "before": None if self.before is None else self.before.value,
            "after": None if self.after is None else self.after.value,
            "origin": self.origin,
        }


@attrs.frozen
class LoggedRequest:
    """One request in the request log: what was asked and how it was answered, never a token or a body.

    Attributes:
        at: When it was answered (ISO 8601, UTC).
        method: The HTTP method.
        path: The path as the server decoded it (stored as is; quoted when printed).
        status: The HTTP status answered.
        reason: Why it was refused: ``"wrong token"``, ``"out of domain"``,
            ``"conflict"``, ``"invalid"``, ``"not found"``, ... (``""`` for a
            success).
        ms: How long it took, in milliseconds.
        seq: Its place in the log (``None`` until stored).
    """

    at: str
    method: str
    path: str
    status: int
    reason: str
    ms: float
    seq: int | None = None

    def to_builtins(self) -> dict[str, object]:
        """The entry as JSON-ready data (``scim-roles log --json`` prints one per line)."""
        return attrs.asdict(self)

    def __str__(self) -> str:
        fields = (self.at, json.dumps(self.method), json.dumps(self.path), self.status, json.dumps(self.reason))
        return "at={} method={} path={} status={} reason={} ms={:.1f}".format(*fields, self.ms)


@attrs.frozen
class Drift:
    """One way a stored state differs from what the rules say of it (T6).

    Attributes:
        what: ``"membership"`` (a stored row the rules do not give, or
            give otherwise), ``"feed"`` (the feed does not fold to the
            stored memberships), ``"member"`` (a group member row that is
            not a SCIM user), ``"user"`` (a user's row whose userName, its
            comparison key or the resource's text is not what the resource
            gives) or ``"state"`` (stored users that do not fit the stored
            settings).
        detail: What differs, for an admin to read.
    """

    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


class Store(Protocol):
    """What the ASGI app needs of a store.

    ``load()`` returns the current state. ``commit(snapshot, outcome)``
    writes what ``outcome`` changed, in one transaction, and returns
    ``True``; if another commit happened since ``snapshot`` was loaded it
    writes nothing and returns ``False`` (the app loads again and retries).
    Once ``commit`` returns, the write must survive a crash: the app answers
    only after it. A write that cannot be made durable raises
    :class:`StoreUnavailable` (the app answers ``503``).

    An outcome may be several requests' in a row (the app commits the
    writes that waited together): its directory is the last one's, its
    changes all of theirs in order, its touched users and groups all of
    theirs.
    """

    def load(self) -> Snapshot:
        """The current state."""
        ...  # pragma: no cover -- a protocol

    def commit(self, snapshot: Snapshot, outcome: Outcome) -> bool:
        """Write the outcome if the state is still ``snapshot``'s; ``False`` otherwise."""
        ...  # pragma: no cover -- a protocol


_utc_now = partial(datetime.now, timezone.utc)
_NO_RESPONSE = ScimResponse(200, (), b"")  # an app's own write answers nobody over SCIM
_NO_GROUPS: frozenset[str] = frozenset()
_NO_GRANTS: frozenset[Grant] = frozenset()
_NOT_A_MEMBER = object()  # no member row: unlike a row whose display is None


class StateOutdated(StoreUnavailable):
    """The database holds a state of an older schema: ``scim-roles migrate --db URL`` upgrades it.

    Nothing is read or written until it is migrated (take a backup first).
    """


class DomainClaimed(ScimRolesError):
    """A tenant's settings claim a domain another tenant of the database claims (R14): nothing was saved."""


def open_database(db: str | os.PathLike[str] | sa.Engine, *, readonly: bool = False) -> sa.Engine:
    """An engine for a state's database: a SQLite file path, ``sqlite:///FILE`` or ``postgresql+psycopg://...``.

    Share one engine among the stores of many tenants (``SqlStore(engine,
    tenant=...)``): they share its connection pool. SQLite is opened in WAL
    mode with ``synchronous=FULL``; ``readonly`` opens a SQLite file without
    creating or changing it. PostgreSQL needs the ``postgres`` extra
    (psycopg 3); ``postgresql://`` means ``postgresql+psycopg://``.

    Raises:
        InvalidArgument: ``db`` is neither a path nor a SQLite or PostgreSQL URL.
    """
    if isinstance(db, sa.Engine):
        return db
    name = os.fspath(db)
    try:
        url = sa.make_url(name) if "://" in name else sa.URL.create("sqlite", database=name)
    except SQLAlchemyError as err:
        raise InvalidArgument(Problem("db", "url", f"{name!r} is not a database URL: {err}", name)) from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite":
        return _sqlite_engine(url, readonly=readonly)
    if url.drivername == "postgresql+psycopg":
        options = {"postgresql_readonly": True} if readonly else {}
        engine = sa.create_engine(url, isolation_level="READ COMMITTED")
        event.listen(engine, "checkin", _idle_from)
        event.listen(engine, "checkout", partial(_ping_if_stale, engine.dialect))
        return engine.execution_options(**options)
    raise InvalidArgument(
        Problem(
            "db",
            "url",
            f"{url.render_as_string()!r}: give a SQLite file (a path or sqlite:///FILE)"
            " or PostgreSQL (postgresql+psycopg://...)",
            name,
        )
    )


_PING_AFTER = 0.5  # seconds a pooled PostgreSQL connection may sit idle and be handed out unpinged


def _idle_from(_dbapi: object, record: Any) -> None:  # noqa: ANN401 -- the pool's record
    record.info["idle_since"] = time.monotonic()


def _ping_if_stale(dialect: sa.Dialect, dbapi: Any, record: Any, _proxy: object) -> None:  # noqa: ANN401 -- psycopg's
    """Check a pooled connection as the pool hands it out, when it may have died: a dead one is replaced.

    A ping is a round trip, so not every time: a connection is pinged when
    it sat idle over half a second (a firewall or a proxy may
    drop it without a word), or when its socket has something to read
    while idle (the server ended it: a restart, a failover,
    ``pg_terminate_backend``); one back from a request a moment ago is
    handed out as it is. A new connection is live.
    """
    since = record.info.pop("idle_since", None)
    if since is None:
        return
    try:
        if time.monotonic() - since > _PING_AFTER or _readable(dbapi.fileno()):
            dialect.do_ping(dbapi)  # SELECT 1 in autocommit: one round trip, no transaction left open
    except dialect.loaded_dbapi.Error as err:  # closed, or the ping failed: the pool connects anew
        raise sa.exc.DisconnectionError(str(err)) from err


def _readable(fd: int) -> bool:
    """Whether a socket has something to read (or was closed), without waiting."""
    if not hasattr(select, "poll"):  # pragma: no cover -- Windows, whose select takes any socket
        return bool(select.select([fd], [], [], 0)[0])
    poll = select.poll()  # not select.select: it refuses a descriptor numbered 1024 or more
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def _sqlite_engine(url: sa.URL, *, readonly: bool) -> sa.Engine:
    path = url.database or ""
    memory = path in ("", ":memory:")
    if readonly and not memory and not url.query:  # never creates the file, never writes it
        url = sa.URL.create("sqlite", database="file:" + quote(path), query={"mode": "ro", "uri": "true"})
    pool = {"poolclass": StaticPool} if memory else {}  # one in-memory database, not one per connection
    engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **pool)
    pragmas = _Sql.SQLITE_READ_ONLY if readonly else _Sql.SQLITE_WRITABLE
    event.listen(engine, "connect", partial(_sqlite_connect, pragmas=pragmas))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi: Any, _record: object, *, pragmas: Sequence[str]) -> None:  # noqa: ANN401 -- sqlite3's
    dbapi.isolation_level = None  # the store's BEGIN, not the driver's: reads are in the transaction too
    for pragma in pragmas:
        dbapi.execute(pragma)


def _sqlite_begin(conn: sa.Connection) -> None:
    # A write takes SQLite's write lock at BEGIN: two writers queue (busy_timeout) instead of one failing.
    options = conn.get_execution_options()
    if not options.get("without_waiting"):
        _run(conn, _Sql.BEGIN_WRITE if options.get("write") else _Sql.BEGIN, {})
        return
    try:  # a write that takes the lock only if it is free
        with _sqlite_without_busy_wait(conn):
            _run(conn, _Sql.BEGIN_WRITE, {})
    except SQLAlchemyError:  # the lock is held (or BEGIN failed: a write that waits says why)
        raise _WouldWait from None


@contextmanager
def _sqlite_without_busy_wait(conn: sa.Connection) -> Iterator[None]:
    """What the block runs on ``conn`` fails at once on a lock held elsewhere; then its busy timeout is back."""
    driver = conn.connection.driver_connection
    driver.execute(_Sql.SQLITE_NO_WAIT)  # type: ignore[union-attr] # sqlite3's
    try:
        yield
    finally:
        driver.execute(_Sql.SQLITE_WAIT)  # type: ignore[union-attr]


_DRIVER_SQL: dict[tuple[str, str], tuple[str, list[str] | None]] = {}  # by text and dialect: compiled once each


def _run(conn: sa.Connection, statement: sa.TextClause, params: Mapping[str, Any] | list[dict[str, Any]]) -> Any:  # noqa: ANN401 -- the driver's cursor
    """One of the store's statements on the driver's own cursor, in the connection's transaction.

    What every request runs (its token, its version, its commit): through
    ``Connection.execute`` each statement costs some 40 µs of Python
    (the compiled cache, the result's set-up), through the driver's cursor a
    few. The text is compiled for the dialect once. A list of parameter sets
    is one ``executemany``. The driver's errors are raised as SQLAlchemy's
    (``DBAPIError.instance``), as ``Connection.execute`` raises them.
    """
    dialect = conn.dialect
    found = _DRIVER_SQL.get((statement.text, dialect.name))
    if found is None:
        compiled = statement.compile(dialect=dialect)
        found = _DRIVER_SQL[statement.text, dialect.name] = (str(compiled), compiled.positiontup)
    sql, order = found
    args: Any = (
        params
        if order is None
        else [tuple(p[n] for n in order) for p in params]
        if isinstance(params, list)
        else tuple(params[n] for n in order)
    )
    queued = conn.get_execution_options().get("batch")
    if queued is not None:  # SqlStore._at_once sends it later, with the rest
        queued.append((sql, args))
        return None
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr] # a live connection's
    try:
        if isinstance(args, list):
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
    except dialect.loaded_dbapi.Error as err:
        raise sa.exc.DBAPIError.instance(sql, args, err, dialect.loaded_dbapi.Error, dialect=dialect) from err
    return cursor


_LOST_RACE = "22012"  # division_by_zero, which only _Sql.BUMP_OR_FAIL raises: a race lost
_PER_QUERY = 500  # statements: PostgreSQL parses a whole query first, some 3 KB of memory a statement


def _send_at_once(conn: sa.Connection, queued: list[tuple[str, Any]]) -> None:
    """The queued statements as one transaction, ``BEGIN; ...; COMMIT``, in one query: one round trip on PostgreSQL.

    psycopg binds parameters on the server, one statement per query; a
    query of several statements is sent with its values quoted by psycopg
    itself (``ClientCursor.mogrify``, the quoting psycopg 2 always used)
    over the simple query protocol. A large write (a settings edit over
    many users) is sent as several queries of at most :data:`_PER_QUERY`
    statements, in the same transaction. A statement that fails skips the
    rest, the ``COMMIT`` too, and is raised as SQLAlchemy's error; the
    transaction is rolled back when the pool takes the connection back.
    """
    dbapi, driver = conn.dialect.loaded_dbapi, conn.connection.driver_connection
    quote = dbapi.ClientCursor(driver).mogrify
    try:
        statements = [quote(sql, one) for sql, args in queued for one in (args if isinstance(args, list) else [args])]
        parts = ["BEGIN", *statements, "COMMIT"]
        for start in range(0, len(parts), _PER_QUERY):
            driver.execute(";\n".join(parts[start : start + _PER_QUERY]))  # type: ignore[union-attr] # psycopg's
    except dbapi.Error as err:  # a value it cannot quote (a NUL), or a statement that failed
        raise sa.exc.DBAPIError.instance("(the commit)", None, err, dbapi.Error, dialect=conn.dialect) from err


def _one(cursor: Any) -> Any:  # noqa: ANN401 -- a driver's cursor and value
    """The one value a query reads, as ``Result.scalar_one`` gives it (no row: ``NoResultFound``)."""
    row = cursor.fetchone()
    if row is None:
        msg = "no row was found when one was required"
        raise sa.exc.NoResultFound(msg)
    return row[0]


def tenants_of(db: str | os.PathLike[str] | sa.Engine) -> tuple[str, ...]:
    """The tenant ids a database holds, sorted (``()`` for a new database).

    Raises:
        StateOutdated: an older state: ``scim-roles migrate`` first.
        StoreUnavailable: the database cannot be read, or holds no state.
    """
    with _reading(db) as (conn, where):
        return _schema_and_tenants(conn, where)[1]


def active_tokens(db: str | os.PathLike[str] | sa.Engine, *, now: datetime | None = None) -> dict[str, int]:
    """Each tenant of a database, in id order, with its number of active tokens: one read for them all.

    Raises:
        StateOutdated: an older state: ``scim-roles migrate`` first.
        StoreUnavailable: the database cannot be read, or holds no state.
    """
    moment = now if now is not None else datetime.now(timezone.utc)
    counts: dict[str, int] = {}
    with _reading(db) as (conn, where):
        if _schema_of(conn, where) is not None:
            for tenant, token, expires, revoked in conn.execute(_Sql.TENANT_TOKENS):
                counts.setdefault(tenant, 0)
                if token is not None and TokenInfo(token, "", expires, None, revoked).active_at(moment):
                    counts[tenant] += 1  # token None: a tenant with no token (the outer join's row)
    return counts


@contextmanager
def _reading(db: str | os.PathLike[str] | sa.Engine) -> Iterator[tuple[sa.Connection, str]]:
    """A read of a database opened read-only (and closed after, unless given as an engine), with its name.

    Raises:
        StoreUnavailable: the database cannot be read.
    """
    engine = open_database(db, readonly=True)
    try:
        with engine.connect() as conn:
            yield conn, _where(engine)
    except SQLAlchemyError as err:
        msg = f"{_where(engine)}: the state cannot be read: {_why(err)}"
        raise StoreUnavailable(msg) from err
    finally:
        if engine is not db:
            engine.dispose()


def authenticates(db: sa.Engine, tenant: str, token: str, *, now: datetime | None = None) -> bool:
    """Whether ``token`` is an active token of ``tenant`` in the database, without opening the tenant's state.

    The same work whatever the answer and whether or not the tenant exists:
    one indexed read and one hash comparison (a token not of the shape
    ``scimroles_<id>_<secret>`` is refused at once: its shape is no secret).
    What a server asks before it loads a tenant's state for a request, so
    that an unknown tenant, another tenant's token and a wrong one answer
    alike, and no request without a token of the tenant loads its state.
    Records no use (:meth:`SqlStore.check_token` does).

    Args:
        db: An engine from :func:`open_database`.
        tenant: The tenant the request names.
        token: The bearer token it presents.
        now: The time to judge expiry by (default: now, in UTC).

    Raises:
        StoreUnavailable: the database cannot be read.
    """
    info, _ = _token_of(db, tenant, token)
    return info is not None and info.active_at(now if now is not None else datetime.now(timezone.utc))


def _token_of(engine: sa.Engine, tenant: str, presented: str) -> tuple[TokenInfo | None, int | None]:
    """:func:`_credential`, read alone on a connection of its own.

    Raises:
        StoreUnavailable: the tokens cannot be read.
    """
    try:
        with engine.connect() as conn:
            return _credential(_alone(conn), tenant, presented)
    except SQLAlchemyError as err:
        msg = f"{_where(engine)}: the tokens cannot be read: {_why(err)}"
        raise StoreUnavailable(msg) from err


def _alone(conn: sa.Connection) -> sa.Connection:
    """``conn`` for one statement alone: on PostgreSQL in autocommit, no ``BEGIN`` and ``ROLLBACK`` round trips.

    A single read sees one snapshot anyway. (SQLite's connections are in
    autocommit already: the store begins its own transactions.)
    """
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="AUTOCOMMIT")  # set back when the pool takes the connection back
    return conn


def _credential(conn: sa.Connection, tenant: str, presented: str) -> tuple[TokenInfo | None, int | None]:
    """The tenant's token that ``presented`` is, and the tenant's version, read in one statement.

    The token revoked or expired or not; ``None`` if it is none of the
    tenant's tokens. The version ``None``: no such tenant, or not a token's
    shape.
    """
    parts = _tokens.split(presented)
    if parts is None:  # not the shape of a token: its shape is no secret
        return None, None
    lookup, secret = parts
    row = _run(conn, _Sql.CREDENTIAL_AND_VERSION, {"t": tenant, "id": lookup}).fetchone()
    if row is None:  # no such tenant
        row = (None,) * 6
    good = _tokens.matches(secret, row[0])  # the hashing, row or no row
    return (TokenInfo(lookup, *row[1:5]) if good else None), row[5]


def migrate(db: str | os.PathLike[str] | sa.Engine) -> tuple[int, int]:
    """Bring a state to this release's schema, in one transaction, nothing lost: ``scim-roles migrate``.

    A state from before migrations (schema 1 to 4, one tenant in a SQLite
    file) is moved into the tables of many tenants, under its tenant id
    (``default`` if it had none). Take a backup first: there is no way back.

    Returns:
        The schema number before and after (equal: it was up to date).

    Raises:
        StoreUnavailable: the database cannot be written; nothing changed.
    """
    engine = open_database(db)
    where = _where(engine)
    try:
        with engine.execution_options(write=True).begin() as conn:
            _create_lock(conn)
            before = _schema_of(conn, where, refuse_older=False)
            if before != SCHEMA_NUMBER:
                _upgrade(conn)
    except SQLAlchemyError as err:
        msg = f"{where}: the state could not be migrated (nothing changed): {_why(err)}"
        raise StoreUnavailable(msg) from err
    finally:
        if engine is not db:
            engine.dispose()
    return (0 if before is None else before), SCHEMA_NUMBER


def _upgrade(conn: sa.Connection) -> None:
    from alembic import command  # noqa: PLC0415 -- only creating or migrating a state needs Alembic
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", "scim_roles:_migrations")
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _create_lock(conn: sa.Connection) -> None:
    """PostgreSQL: one process at a time creates or migrates the tables (SQLite: BEGIN IMMEDIATE did)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_Sql.CREATE_LOCK, {"k": _CREATE_LOCK})


def _schema_of(conn: sa.Connection, where: str, *, refuse_older: bool = True) -> int | None:
    """The state's schema number (``None``: an empty database); an older one refused, naming ``migrate``."""
    tables = set(sa.inspect(conn).get_table_names())
    if "meta" in tables:  # before migrations: schema 1 to 4 in meta (0.1 wrote none)
        row = conn.exec_driver_sql(_Sql.LEGACY).first()
        schema = 1 if row is None else int(row[0])
    elif "alembic_version" in tables:
        revision = conn.exec_driver_sql(_Sql.REVISION).scalar()
        schema = SCHEMA_NUMBER if revision == SCHEMA else 0
    elif tables:
        msg = f"{where}: not a scim-roles state (tables {', '.join(sorted(tables))})"
        raise StoreUnavailable(msg)
    else:
        return None
    if schema != SCHEMA_NUMBER and refuse_older:
        msg = (
            f"{where}: a state of an older schema ({schema}; this release reads {SCHEMA_NUMBER}): upgrade it with"
            f" `scim-roles migrate --db {where}` (back it up first)"
        )
        raise StateOutdated(msg)
    return schema


def _schema_and_tenants(conn: sa.Connection, where: str) -> tuple[int | None, tuple[str, ...]]:
    """The state's schema number and its tenants (``None`` and none: an empty database)."""
    schema = _schema_of(conn, where)
    return schema, () if schema is None else tuple(conn.execute(_Sql.TENANTS).scalars())


def _where(engine: sa.Engine) -> str:
    """The database as messages name it: the SQLite file, or the URL without its password."""
    url = engine.url
    if url.drivername == "sqlite":
        name = url.database or ":memory:"
        return unquote(name[len("file:") :]) if url.query.get("uri") else name
    return url.render_as_string(hide_password=True)


class SqlStore:
    """A tenant's SCIM state in a SQL database: settings, users, groups, members, the memberships and their feed.

    Args:
        db: The database: a SQLite file path (created on first use),
            ``sqlite:///FILE``, ``postgresql+psycopg://...`` (the ``postgres``
            extra), or an engine from :func:`open_database` that the stores
            of many tenants share.
        org: The org's settings from its document, to create a new tenant:
            teams, default access, the toggle, and the group mappings. Groups
            the document maps are synced groups from the start; groups the
            IdP pushes get a blank mapping (R2) until an admin maps them
            (:meth:`put_org`). Given for an existing tenant, it must be the
            stored settings (groups the IdP pushed or deleted since aside),
            else :class:`SettingsDiffer`: an org document seeds a state and
            never replaces its settings (T4).
        readonly: Open an existing state for reading only (writes fail).
        clock: The time of a feed entry or a token's use (UTC now by default).
        tenant: The tenant (:func:`check_tenant_id`): created from ``org``
            when the database does not hold it. Not needed when the database
            holds one tenant, or none (a new state is tenant ``"default"``).

    A new database gets its tables (the Alembic migrations); an older state
    is refused (:class:`StateOutdated`, naming ``scim-roles migrate``). A
    commit writes only what the request touched (its users, its groups, its
    membership changes and their feed entries) in one transaction, made
    durable before it returns; it is a compare-and-swap on the tenant's
    version row, so the writes of one tenant are serialized across
    processes. The last state is cached and reused while the tenant's
    version has not moved; another process's commit moves it, so it is seen
    at the next :meth:`load`.

    Raises:
        InvalidOrg: a new state without ``org``, or ``org`` is not an
            :class:`Org`.
        SettingsDiffer: ``org`` is not the stored settings.
        InvalidArgument: ``tenant`` is not a tenant id, or the database
            holds several tenants and ``tenant`` names none of them.
        DomainClaimed: a new tenant claims a domain another tenant claims.
        StateOutdated: an older state: migrate it first.
        StoreUnavailable: the database cannot be opened, or holds no state.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | sa.Engine,
        org: Org | None = None,
        *,
        readonly: bool = False,
        clock: Callable[[], datetime] = _utc_now,
        tenant: str | None = None,
    ) -> None:
        if org is not None:
            index_of(org, "SqlStore")  # an Org, or InvalidOrg
        if tenant is not None:
            check_tenant_id(tenant)
        self._lock = threading.Lock()
        self._cache: Snapshot | None = None
        self._seen, self._seen_at = -1, 0.0  # the newest version a token check read, and when the last such began
        self._seen_lock = threading.Lock()
        self._settings: tuple[str, Org] | None = None  # the stored settings' JSON, and the Org it loads to
        self._clock = clock
        self._engine = open_database(db, readonly=readonly)
        self._owned = self._engine is not db  # an engine it made: closed with it
        if self._owned:
            weakref.finalize(self, self._engine.dispose)  # a store dropped unclosed closes its connections
        self._where = _where(self._engine)
        self._path = self._where if self._engine.url.drivername == "sqlite" else None  # the file, or ":memory:"
        self._writer = self._engine.execution_options(write=True)
        self._writer_without_waiting = self._writer.execution_options(without_waiting=True)  # SQLite's
        self._reader = (
            self._engine.execution_options(isolation_level="REPEATABLE READ")  # one snapshot per load
            if self._engine.dialect.name == "postgresql"
            else self._engine
        )
        try:
            self._tenant, created = self._open(org, tenant, readonly=readonly)
            self._identity = self._file_identity()  # the file as opened (and created, if new)
            if org is not None and not created:
                self._same_settings(org)
        except BaseException:
            self.close()  # refused: no connection left for the garbage collector
            raise

    # -- opening

    def _open(self, org: Org | None, tenant: str | None, *, readonly: bool) -> tuple[str, bool]:
        """The tenant this store serves, and whether it was created now.

        A read finds an existing tenant (no lock taken); creating the tables or
        a tenant is a write, one process at a time.
        """
        try:
            schema, held = self._held(tenant)
            chosen = tenant if tenant is not None else (held[0] if len(held) == 1 else None)
            if chosen in held:
                return str(chosen), False
            if readonly and schema is None:
                msg = f"{self._where}: not a scim-roles state (an empty database)"
                raise StoreUnavailable(msg)
            if org is None or readonly or (chosen is None and held):
                raise self._no_tenant(tenant, held)
            chosen = chosen or DEFAULT_TENANT
            with self._writer.begin() as conn:
                _create_lock(conn)
                if _schema_of(conn, self._where) is None:
                    _upgrade(conn)
                if chosen in conn.execute(_Sql.TENANTS).scalars():  # another process made it meanwhile
                    return chosen, False
                self._create(conn, org, chosen)
                return chosen, True
        except SQLAlchemyError as err:
            msg = f"{self._where}: not a scim-roles state: {_why(err)}"
            raise StoreUnavailable(msg) from err

    def _held(self, tenant: str | None) -> tuple[int | None, tuple[str, ...]]:
        """The schema and the tenants, read without a lock (another process may add a tenant right after).

        Just ``(tenant,)`` when the database holds it: one indexed read, however many tenants there are.
        """
        with self._engine.begin() as conn:
            schema = _schema_of(conn, self._where)
            if schema is not None and tenant is not None and conn.execute(_Sql.HAS_TENANT, {"t": tenant}).first():
                return schema, (tenant,)
            return schema, () if schema is None else tuple(conn.execute(_Sql.TENANTS).scalars())

    def _no_tenant(self, tenant: str | None, held: tuple[str, ...]) -> ScimRolesError:
        if not held:
            return InvalidOrg(Problem("SqlStore", "org", "a new store needs the org's settings: pass org="))
        holds = ", ".join(repr(t) for t in held)
        if tenant is None:
            detail = f"{self._where} holds tenants {holds}: name one (tenant=, --tenant)"
        else:
            detail = f"{self._where} holds no tenant {tenant!r} (it holds {holds}); add it with its org document"
        return InvalidArgument(Problem("SqlStore", "tenant", detail, tenant))

    def _create(self, conn: sa.Connection, org: Org, tenant: str) -> None:
        t = {"t": tenant}
        conn.execute(_Sql.CREATE_TENANT, {**t, "settings": _settings_json(org), "at": _stamp(self._clock())})
        self._claim(conn, tenant, org)
        if org.groups:
            seeds = [{**t, "id": g.id, "resource": json.dumps({"displayName": g.id})} for g in org.groups]
            conn.execute(_Sql.SEED_GROUP, seeds)

    def _claim(self, conn: sa.Connection, tenant: str, org: Org) -> None:
        """The tenant's claimed domains, each claimed by no other tenant of the database (else DomainClaimed).

        A claim another tenant commits between the read and the write (two
        servers, PostgreSQL) is refused the same way, not as a failed write.
        """
        others: dict[str, str] = {row[0]: row[1] for row in conn.execute(_Sql.DOMAIN_OWNERS, {"t": tenant})}
        taken = [(d, others[d]) for d in sorted(org.domains) if d in others]
        if not taken:
            conn.execute(_Sql.DELETE_DOMAINS, {"t": tenant})
            raced = ((d, _claim_one(conn, tenant, d)) for d in sorted(org.domains))
            taken = [(d, owner) for d, owner in raced if owner is not None]
        if taken:
            raise DomainClaimed(
                *(
                    Problem("org", "domains", f"{d!r} is claimed by tenant {owner!r}: a domain has one tenant", d)
                    for d, owner in taken
                )
            )

    def _same_settings(self, org: Org) -> None:
        """``org`` is the stored settings, give or take the groups the IdP pushed (blank) or deleted."""
        stored = self.load().directory.org
        with self._engine.connect() as conn:
            deleted = set(conn.execute(_Sql.DELETED_GROUPS, {"t": self._tenant}).scalars())
        named = {g.id for g in org.groups}
        pushed = [g for g in stored.groups if g.id not in named and g == IdpGroup(g.id)]
        expected = attrs.evolve(org, groups=[*(g for g in org.groups if g.id not in deleted), *pushed])
        if _settings_json(expected) != _settings_json(stored):
            raise SettingsDiffer(
                Problem(
                    "org",
                    "settings",
                    "the org document is not the stored settings; change stored settings with"
                    " `scim-roles edit --db STATE AFTER` (a previewed edit), or leave the document out",
                )
            )

    def _settings_org(self, settings: str) -> Org:
        """The stored settings as an Org: parsed again only when they changed."""
        if self._settings is None or self._settings[0] != settings:
            from .io import load_org  # noqa: PLC0415 -- the serve extra brings io

            self._settings = (settings, load_org(json.loads(settings)))
        return self._settings[1]

    def _file_identity(self) -> tuple[int, int] | None:
        """The SQLite file's device and inode (``None``: not a file)."""
        if self._path in (None, ":memory:"):
            return None
        info = Path(str(self._path)).stat()
        return info.st_dev, info.st_ino

    @property
    def org(self) -> Org:
        """The org's settings as stored now: teams, defaults, toggle, and every synced group's mapping."""
        return self.load().directory.org

    @property
    def engine(self) -> sa.Engine:
        """The database engine (share it with the stores of the database's other tenants)."""
        return self._engine

    def close(self) -> None:
        """Close the database connections (unless the engine was given, and is shared)."""
        if self._owned:
            self._engine.dispose()

    def __enter__(self) -> SqlStore:  # noqa: PYI034 -- Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions

    @contextmanager
    def _transaction(self, *, without_waiting: bool = False) -> Iterator[sa.Connection]:
        """One durable transaction; a failure to make it durable is :class:`StoreUnavailable`, nothing written.

        ``without_waiting`` (SQLite): :class:`_WouldWait` if another
        connection holds the write lock, instead of waiting for it.
        """
        writer = self._writer_without_waiting if without_waiting else self._writer
        try:
            with writer.begin() as conn:
                self._check_file()
                yield conn
        except (SQLAlchemyError, _FileGone) as err:
            msg = f"{self._where}: the write could not be made durable: {_why(err)}"
            raise StoreUnavailable(msg) from err

    def _check_file(self) -> None:
        """The SQLite file this store opened is still the one at its path (not deleted, not replaced)."""
        if self._identity is None:  # PostgreSQL, or SQLite in memory
            return
        try:
            info = Path(str(self._path)).stat()
        except OSError as err:
            msg = f"the state file is gone: {err.strerror}"
            raise _FileGone(msg) from None
        if (info.st_dev, info.st_ino) != self._identity:
            msg = "the state file was replaced by another file"
            raise _FileGone(msg)
        if not os.access(str(self._path), os.W_OK):  # immutable (chattr +i), on a read-only mount
            msg = "the state file is read-only"
            raise _FileGone(msg)

    # -- reading

    def load(self, *, current: bool = True) -> Snapshot:
        """The current state: the cached one while the tenant's version has not moved.

        Args:
            current: ``False``: the state this store last loaded or committed,
                without asking the database whether another process moved
                it since (loaded if there is none). What a write may start
                from: :meth:`commit` refuses a snapshot that is not the
                current one, and the write is then made again from a
                current state. Never what a read answers from.

        Raises:
            InvalidUser: the stored users do not fit the stored settings.
            StoreUnavailable: the database cannot be read.
        """
        t = {"t": self._tenant}
        with self._lock:
            if not current and self._cache is not None:
                return self._cache
            try:
                if self._cache is not None and self._version() == self._cache.version:
                    return self._cache
                with self._reader.begin() as conn:
                    version = _one(_run(conn, _Sql.VERSION, t))  # and the rows, in one snapshot
                    with _collector_paused():  # 100,000 users: a third faster
                        snapshot = Snapshot(self._read(conn), version)
            except SQLAlchemyError as err:
                msg = f"{self._where}: the state cannot be read: {_why(err)}"
                raise StoreUnavailable(msg) from err
            self._cache = snapshot
            return snapshot

    def load_without_waiting(self, *, since: float) -> Snapshot | None:
        """The current state if that needs no wait and no reading of rows; else ``None``, and :meth:`load` gives it.

        What a server may do on its event loop's thread, which must wait for
        nothing: the state in memory while the tenant's version has not
        moved. On SQLite one statement reads the version (in WAL mode a read
        never waits for a writer). On PostgreSQL, where each statement is a
        round trip over the network, none does: the state in memory is
        current if its version is the newest that :meth:`check_token` read,
        in a check that began at ``since`` or later (a request's own check:
        the state was then current while the request was in flight).
        ``None`` with no state in memory yet, when another process moved
        the version, or while another thread uses this store.

        Args:
            since: When the request came in (``time.monotonic()``).

        Raises:
            StoreUnavailable: the database cannot be read.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            cached = self._cache
            if cached is None:
                return None
            if self._engine.dialect.name != "sqlite":  # no round trip: the version a token check read
                with self._seen_lock:  # the two as one check left them
                    seen, seen_at = self._seen, self._seen_at
                return cached if seen == cached.version and seen_at >= since else None
            return cached if self._version() == cached.version else None
        except SQLAlchemyError as err:
            msg = f"{self._where}: the state cannot be read: {_why(err)}"
            raise StoreUnavailable(msg) from err
        finally:
            self._lock.release()

    def _version(self) -> int:
        """The tenant's version as stored now: one statement, no transaction to begin."""
        with self._engine.connect() as conn:
            return int(_one(_run(_alone(conn), _Sql.VERSION, {"t": self._tenant})))

    def _read(self, conn: sa.Connection, *, checked: bool = False) -> Directory:
        """The tenant's directory from its rows.

        As the store wrote them (``checked=False``, what :meth:`load` does):
        userNames, their keys and the resources' text are taken as they are.
        ``checked=True`` builds it through :class:`Directory`'s own checks,
        as :meth:`check` and :meth:`repair` do, which also compare the two.
        """
        t = {"t": self._tenant}
        manual: dict[str, list[Grant]] = {}
        for uid, team, role in conn.execute(_Sql.MANUAL, t):
            manual.setdefault(uid, []).append(Grant(team, Role(role)))
        members: dict[str, dict[str, str | None]] = {}
        groups_of: dict[str, str | list[str]] = {}  # a user's one group (most users), else a list of them
        for gid, uid, display in conn.execute(_Sql.MEMBERS, t):
            members.setdefault(gid, {})[uid] = display
            had = groups_of.get(uid)
            groups_of[uid] = gid if had is None else [had, gid] if isinstance(had, str) else [*had, gid]
        shared: dict[object, frozenset[str]] = {}  # users share a few sets of groups: one frozenset each
        users: dict[str, User] = {}
        names: dict[str, str] = {}
        keys: dict[str, str] = {}
        resources: dict[str, str] = {}
        for uid, key, name, saml, scim, gone, resource, email in conn.execute(_Sql.USERS, t):
            found = groups_of.get(uid)
            if found is None:
                groups = _NO_GROUPS
            elif not scim:  # a group member row of a user who is not a SCIM user: drift (check), not read
                groups = _NO_GROUPS
                for gid in [found] if isinstance(found, str) else found:
                    del members[gid][uid]
            elif isinstance(found, str):
                groups = shared.get(found) or shared.setdefault(found, frozenset((found,)))
            else:
                groups = frozenset(found)
                groups = shared.setdefault(groups, groups)
            users[uid] = User(uid, bool(saml), bool(scim), groups, bool(gone), manual.get(uid, _NO_GRANTS), email)
            names[uid], keys[key] = name, uid
            if resource is not None:
                resources[uid] = resource
        group_resources = {gid: json.loads(resource) for gid, resource in conn.execute(_Sql.GROUPS, t)}
        stored = self._settings_org(conn.execute(_Sql.SETTINGS, t).scalar_one())
        # The groups table says which groups are synced; the settings give their mappings.
        mapped = {g.id: g for g in stored.groups}
        org = attrs.evolve(stored, groups=[mapped.get(gid, IdpGroup(gid)) for gid in group_resources])
        if not checked:
            rows = {"names": names, "keys": keys, "resources": resources, "groups": group_resources, "members": members}
            return Directory._stored(org, users=users, **rows)  # noqa: SLF001 -- the store's own rows
        return Directory(
            org,
            users.values(),
            user_names={uid: name for uid, name in names.items() if uid not in resources},
            resources={uid: json.loads(text) for uid, text in resources.items()},
            groups={
                gid: {**resource, "members": [{"value": u, "display": d} for u, d in members.get(gid, {}).items()]}
                for gid, resource in group_resources.items()
            },
        )

    def memberships(self) -> dict[str, dict[str, Role]]:
        """The effective access as stored: user id to team to role (what the app reads)."""
        with self._lock, self._engine.connect() as conn:
            return self._stored_memberships(conn)

    def changes(self, after: int = 0, *, limit: int | None = None) -> tuple[FeedEntry, ...]:
        """The feed (T7): the membership changes committed after sequence number ``after``, oldest first.

        A host mirrors the memberships into its own tables by applying the
        entries after the last ``seq`` it applied, then keeping that ``seq``:
        folding the whole feed gives :meth:`memberships`. Sequence numbers
        increase in commit order within a tenant; the tenants of a database
        share one sequence, so a tenant's numbers have gaps.

        Args:
            after: The last sequence number already read (0: from the start).
            limit: At most this many entries (all by default).

        Raises:
            InvalidArgument: ``after`` or ``limit`` is not a whole number
                (``limit`` at least 1).
        """
        if type(after) is not int:
            raise InvalidArgument(Problem("changes", "after", f"must be a whole number, got {after!r}"))
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidArgument(Problem("changes", "limit", f"must be a whole number from 1, got {limit!r}"))
        with self._lock, self._engine.connect() as conn:
            result = conn.execute(_Sql.FEED, {"t": self._tenant, "after": after})
            rows = result.fetchall() if limit is None else result.fetchmany(limit)
        return tuple(FeedEntry(s, at, u, t, _role(b), _role(a), o) for s, at, u, t, b, a, o in rows)

    # -- writing

    def commit(self, snapshot: Snapshot, outcome: Outcome, *, origin: str = "scim") -> bool:
        """Write what the outcome touched and its feed entries, if the state is still ``snapshot``'s.

        The compare-and-swap is the first statement: an ``UPDATE`` of the
        tenant's version row where it is still ``snapshot``'s. It holds that
        row's lock until the commit, so another process's write of the same
        tenant waits, then finds the version moved and writes nothing. On
        PostgreSQL the whole transaction is sent as one query
        (:meth:`_at_once`), unless the settings claim new domains.

        Args:
            snapshot: What the outcome was computed from.
            outcome: What to write.
            origin: The feed entries' origin (``"scim"`` for a SCIM request).

        Returns:
            ``True`` once written and durable; ``False`` (nothing written)
            when another commit came first.

        Raises:
            DomainClaimed: the new settings claim another tenant's domain.
            StoreUnavailable: the write could not be made durable; nothing
                was written.
        """
        with self._lock:
            return self._commit(snapshot, outcome, origin, without_waiting=False)

    @property
    def commits_without_waiting(self) -> bool:
        """Whether :meth:`commit_without_waiting` may commit (SQLite), or always says it would wait (PostgreSQL)."""
        return self._engine.dialect.name == "sqlite"

    def commit_without_waiting(self, snapshot: Snapshot, outcome: Outcome, *, origin: str = "scim") -> bool | None:
        """:meth:`commit`, unless it would wait for a lock: then ``None``, nothing written, and :meth:`commit` makes it.

        What a server may do on its event loop's thread, which must not wait
        for another process: on SQLite, the write lock is taken only if it
        is free (no busy timeout). It does wait for the disk: it returns
        once the commit is durable. ``None`` on PostgreSQL (a round trip
        over the network, and another process may hold the tenant's row),
        and while another thread uses this store.

        Returns:
            ``True`` once written and durable; ``False`` (nothing written)
            when another commit came first; ``None`` (nothing written) when
            it would have waited.

        Raises:
            DomainClaimed: the new settings claim another tenant's domain.
            StoreUnavailable: the write could not be made durable; nothing
                was written.
        """
        if not self.commits_without_waiting or not self._lock.acquire(blocking=False):
            return None
        try:
            return self._commit(snapshot, outcome, origin, without_waiting=True)
        except _WouldWait:
            return None
        finally:
            self._lock.release()

    def _commit(self, snapshot: Snapshot, outcome: Outcome, origin: str, *, without_waiting: bool) -> bool:
        """:meth:`commit`, its lock held."""
        versions = {"t": self._tenant, "new": snapshot.version + 1, "old": snapshot.version}
        org, stored = outcome.directory.org, snapshot.directory.org
        claims = org is not stored and org.domains != stored.domains  # the other tenants' claims to read first
        if self._engine.dialect.name == "postgresql" and not claims:
            written = self._commit_at_once(versions, snapshot.directory, outcome, origin)
        else:  # SQLite (no round trips), or new claims
            written = self._commit_in_steps(
                versions, snapshot.directory, outcome, origin, claims=claims, without_waiting=without_waiting
            )
        if written:
            self._cache = Snapshot(outcome.directory, snapshot.version + 1)
        return written

    def _commit_at_once(self, versions: dict[str, Any], before: Directory, outcome: Outcome, origin: str) -> bool:
        try:
            with self._at_once() as conn:  # the compare-and-swap fails when the race is lost, and skips the rest
                _run(conn, _Sql.BUMP_OR_FAIL, versions)
                self._write(conn, before, outcome, origin)
        except _Lost:  # nothing written
            return False
        return True

    def _commit_in_steps(  # noqa: PLR0913 -- the commit's parts, and how it takes the lock
        self,
        versions: dict[str, Any],
        before: Directory,
        outcome: Outcome,
        origin: str,
        *,
        claims: bool,
        without_waiting: bool,
    ) -> bool:
        with self._transaction(without_waiting=without_waiting) as conn:
            if _run(conn, _Sql.BUMP_VERSION, versions).rowcount != 1:
                return False
            self._write(conn, before, outcome, origin)
            if claims:
                self._claim(conn, self._tenant, outcome.directory.org)
        return True

    @contextmanager
    def _at_once(self) -> Iterator[sa.Connection]:
        """One durable transaction of :func:`_run` statements, sent when the block ends as one query (PostgreSQL).

        No answer comes back before the end: a statement's result cannot
        decide what follows. One round trip for the whole transaction (one
        per :data:`_PER_QUERY` statements), where sending each statement
        would take one each, and ``BEGIN`` and ``COMMIT`` one more each.

        Raises:
            _Lost: a race lost (:data:`_LOST_RACE`); nothing written.
            StoreUnavailable: the write could not be made durable; nothing written.
        """
        queued: list[tuple[str, Any]] = []
        try:
            with self._writer.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT", batch=queued)  # BEGIN is in the query
                _send_at_once(conn, queued)
        except SQLAlchemyError as err:
            if getattr(getattr(err, "orig", None), "sqlstate", None) == _LOST_RACE:
                raise _Lost from None
            msg = f"{self._where}: the write could not be made durable: {_why(err)}"
            raise StoreUnavailable(msg) from err

    def _write(self, conn: sa.Connection, before: Directory, outcome: Outcome, origin: str) -> None:
        """Every row the outcome changes (``before`` is what is stored), its changes and their feed entries."""
        after, t = outcome.directory, self._tenant
        for gid in sorted(outcome.touched_groups):
            resource = after.group_resource(gid)
            if resource is None:
                _run(conn, _Sql.DELETE_GROUP, {"t": t, "id": gid})
                _run(conn, _Sql.MARK_DELETED, {"t": t, "id": gid})
            else:
                _run(conn, _Sql.PUT_GROUP, {"t": t, "id": gid, "resource": canonical(resource)})
        for uid in sorted(outcome.touched):
            user = after.users.get(uid)
            if user is None:
                _run(conn, _Sql.DELETE_USER, {"t": t, "id": uid})
            else:
                self._write_user(conn, before, user, after)
        self._apply(conn, outcome.changes, origin)
        if after.org is not before.org:  # settings edited, or a group synced or deleted
            _run(conn, _Sql.SET_SETTINGS, {"t": t, "settings": _settings_json(after.org)})

    def _write_user(self, conn: sa.Connection, before: Directory, user: User, after: Directory) -> None:
        """A user's row, and what changed of their manual grants and member rows (``before`` is what is stored).

        Cost ∝ the user's groups, never a group's size; grants and member
        rows that did not change are not written again (on PostgreSQL each
        statement is a round trip).
        """
        ids, old = {"t": self._tenant, "id": user.id}, before.users.get(user.id)
        name = after.user_name(user.id)
        row = {
            **ids,
            "key": user_name_key(name),
            "name": name,
            "saml": user.saml,
            "scim": user.scim,
            "gone": user.deprovisioned,
            "resource": after.resource_json(user.id),  # None: not a SCIM user
            "email": user.email,
        }
        _run(conn, _Sql.PUT_USER, row)
        if old is None or old.manual != user.manual:
            if old is not None:
                _run(conn, _Sql.DELETE_MANUAL, ids)
            if user.manual:
                _run(conn, _Sql.ADD_MANUAL, [{**ids, "team": g.team, "role": g.role.value} for g in user.manual])
        for gid in (old.groups if old is not None else frozenset()) - user.groups:
            _run(conn, _Sql.DELETE_MEMBER, {**ids, "group": gid})
        rows = [
            {**ids, "group": gid, "display": display}
            for gid in sorted(user.groups)
            if (display := after.members(gid)[user.id]) != before.members(gid).get(user.id, _NOT_A_MEMBER)
        ]
        if rows:
            _run(conn, _Sql.PUT_MEMBER, rows)

    def _apply(self, conn: sa.Connection, changes: Sequence[Change], origin: str) -> None:
        """Membership changes: to the memberships table and, in order, to the feed."""
        t = self._tenant
        for change in changes:
            where = {"t": t, "id": change.user_id, "team": change.team}
            if change.after is None:
                _run(conn, _Sql.DELETE_MEMBERSHIP, where)
            else:
                _run(conn, _Sql.PUT_MEMBERSHIP, {**where, "role": change.after.value})
        self._feed(conn, changes, origin)

    def _feed(self, conn: sa.Connection, changes: Sequence[Change], origin: str) -> None:
        """Append changes to the feed, in order, stamped with the clock's time."""
        if not changes:
            return
        at, t = _stamp(self._clock()), self._tenant
        rows = [
            {"t": t, "at": at, "id": c.user_id, "team": c.team, "before": _value(c.before), "after": _value(c.after)}
            for c in changes
        ]
        _run(conn, _Sql.APPEND, [{**row, "origin": origin} for row in rows])

    def put_user(self, user: User, *, user_name: str | None = None) -> Resolution:
        """Save a change the app makes to one user (an admin's edit): cost ∝ that user.

        Applied with :meth:`Directory.with_user <scim_roles.scim.Directory.with_user>`
        and committed like a SCIM request: the user's record, the changes to
        their memberships and their feed entries (origin ``"admin"``), in one
        transaction.

        Returns:
            The user's new resolution.

        Raises:
            InvalidUser: as ``Directory.with_user`` says (a locked user's
                manual grants included, T5); nothing is written.
            StoreUnavailable: the write could not be made durable.
        """
        while True:
            snapshot = self.load()
            before = snapshot.directory
            after = before.with_user(user, user_name=user_name)
            old = before.users.get(user.id)
            index_before, index_after = index_of(before.org), index_of(after.org)
            resolution = resolve_indexed(index_after, user)
            was = resolve_indexed(index_before, old) if old is not None else Resolution(user.id, ())
            outcome = Outcome(after, _NO_RESPONSE, diff(was, resolution), PMap({user.id: resolution}))
            if self.commit(snapshot, outcome, origin="admin"):
                return resolution

    def sign_in(
        self, name_id: str, attributes: Attributes, *, new_id: str, email_attribute: str | None = None
    ) -> SignIn:
        """A SAML sign-in (S14), saved like a SCIM write: the user, their changes, feed entries (origin ``"saml"``).

        What :func:`scim_roles.saml.sign_in` decides, on the stored state; a
        refused sign-in stores nothing.

        Raises:
            InvalidArgument: as :func:`scim_roles.saml.sign_in` says.
            StoreUnavailable: the write could not be made durable.
        """
        while True:
            snapshot = self.load()
            result = sign_in(snapshot.directory, name_id, attributes, new_id=new_id, email_attribute=email_attribute)
            if result.refused is not None:
                return result
            assert result.user_id is not None  # noqa: S101 -- signed in: both are set
            assert result.resolution is not None  # noqa: S101
            touched = PMap({result.user_id: result.resolution})
            if self.commit(snapshot, Outcome(result.directory, _NO_RESPONSE, result.changes, touched), origin="saml"):
                return result

    def preview_org(self, org: Org, *, max_share: float = 0.1) -> Preview:
        """The preview of replacing the stored settings with ``org``: what :meth:`put_org` would save.

        Raises:
            InvalidOrg: ``org`` is not an :class:`Org`.
            InvalidUser: the edit would leave stored users invalid (a dropped
                group with members, a dropped team with manual grants), with
                the message :meth:`put_org` gives.
            InvalidArgument: ``max_share`` is not a number from 0 to 1.
        """
        return self.load().directory.preview(org, max_share=max_share)

    def put_org(self, org: Org, *, actor: str | None, max_share: float = 0.1, strict: bool = False) -> Preview:
        """Preview an edit of the settings and save exactly what it previewed, in one transaction (T4).

        Only an org admin may edit the settings (R15): ``actor`` is the user
        making the edit, refused unless they are an org admin when the edit
        is saved. ``None`` is the operator's edit (``scim-roles edit --db``),
        made with access to the state itself rather than through the app.

        One computation: the preview's refusals are the save's, its
        membership changes are the ones stored (with their feed entries,
        origin ``"settings"``), and with ``strict`` a guardrail finding
        refuses the save. Cost ∝ the users the edit affects.

        Args:
            org: The new settings (teams, defaults, toggle, group mappings,
                claimed domains).
            actor: The id of the user making the edit; ``None``: the operator.
            max_share: The mass-change guardrail's threshold, as in
                :func:`scim_roles.preview`.
            strict: Refuse the edit when a guardrail fires.

        Returns:
            The preview of the saved edit: its changes are what was written.

        Raises:
            InvalidOrg: ``org`` is not an :class:`Org`.
            InvalidUser: a group it drops still has members, a team it drops
                still has manual grants (``Directory.with_org``).
            GuardrailFired: ``strict`` and the preview has findings; nothing
                was saved.
            NotOrgAdmin: ``actor`` is no org admin (R15); nothing was saved.
            StoreUnavailable: the write could not be made durable.
        """
        if actor is not None and not isinstance(actor, str):
            raise InvalidArgument(Problem("put_org", "actor", f"must be a user id or None, got {actor!r}"))
        while True:
            snapshot = self.load()
            before = snapshot.directory
            if actor is not None:
                _check_admin(before, actor)
            result = before.preview(org, max_share=max_share)
            if strict and result.findings:
                raise GuardrailFired(result)
            after = before.with_org(org)
            old_groups, new_groups = {g.id for g in before.org.groups}, {g.id for g in org.groups}
            outcome = Outcome(after, _NO_RESPONSE, result.changes, PMap(), frozenset(old_groups ^ new_groups))
            if self.commit(snapshot, outcome, origin="settings"):
                return result

    # -- the tenant and its tokens

    @property
    def tenant(self) -> str:
        """The tenant id this store serves: its endpoint is ``/scim/v2/{tenant}``."""
        return self._tenant

    def add_token(self, *, expires_days: int | None = None) -> tuple[str, str]:
        """A new bearer token for this tenant: its lookup id and the token, which is stored only as a hash.

        Show the token once; it cannot be read back. At most two tokens are
        active at a time (rotation: add the new one, move the IdP to it,
        revoke the old one).

        Args:
            expires_days: The token stops working this many days from now
                (a whole number from 1); ``None``: it never expires.

        Raises:
            InvalidArgument: ``expires_days`` is not a whole number from 1.
            TooManyTokens: two tokens are active already; nothing was added.
            StoreUnavailable: the write could not be made durable.
        """
        if expires_days is not None and (type(expires_days) is not int or expires_days < 1):
            raise InvalidArgument(
                Problem("add_token", "expires_days", f"must be a whole number of days from 1, got {expires_days!r}")
            )
        now = self._clock()
        expires = None if expires_days is None else _stamp(now + timedelta(days=expires_days))
        lookup, token, hashed = _tokens.mint()
        t = self._tenant
        with self._lock, self._transaction() as conn:
            conn.execute(_Sql.LOCK_TENANT, {"t": t})  # two processes adding at once: one after the other
            active = [info for info in self._token_rows(conn) if info.active_at(now)]
            if len(active) >= MAX_ACTIVE_TOKENS:
                ids = ", ".join(repr(info.id) for info in active)
                raise TooManyTokens(
                    Problem(
                        "add_token",
                        "tokens",
                        f"tenant {t!r} has {MAX_ACTIVE_TOKENS} active tokens ({ids}):"
                        " revoke one first (`scim-roles tokens revoke`)",
                    )
                )
            row = {"t": t, "id": lookup, "hash": hashed, "created": _stamp(now), "expires": expires}
            conn.execute(_Sql.ADD_CREDENTIAL, row)
        return lookup, token

    def tokens(self) -> tuple[TokenInfo, ...]:
        """This tenant's tokens, oldest first: ids and times, never a secret."""
        with self._lock, self._engine.connect() as conn:
            return self._token_rows(conn)

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token: every server refuses it from its next request.

        Raises:
            InvalidArgument: no token of this tenant has that id.
            StoreUnavailable: the write could not be made durable.
        """
        ids = {"t": self._tenant, "id": token_id}
        with self._lock, self._transaction() as conn:
            done = conn.execute(_Sql.REVOKE, {**ids, "at": _stamp(self._clock())})
            if done.rowcount != 1:
                known = conn.execute(_Sql.CREDENTIAL, ids).first()
                detail = "is revoked already" if known is not None else "is no token of this tenant"
                raise InvalidArgument(Problem("revoke_token", "id", f"{token_id!r} {detail}", token_id))

    def check_token(self, presented: str) -> bool:
        """Whether ``presented`` is an active token of this tenant; the same work whatever the answer.

        Reads the token's row each time (a revoke on any server counts from
        the next request); records when it was last used, at most once a
        minute per token (a write then, not per request), and only when that
        needs no wait (:meth:`_mark_used`). Another tenant's token is no
        token of this one. The tenant's version is read in the same
        statement, and kept with when the check began: on PostgreSQL,
        :meth:`load_without_waiting` trusts it.

        Raises:
            StoreUnavailable: the tokens cannot be read.
        """
        now, began = self._clock(), time.monotonic()
        info, version = _token_of(self._engine, self._tenant, presented)
        if version is not None:
            self._saw(version, began)
        if info is None or not info.active_at(now):
            return False
        if info.last_used is None or _parse(info.last_used) <= now - LAST_USED_EVERY:
            self._mark_used(info.id, now)
        return True

    def _saw(self, version: int, began: float) -> None:
        """A token check that began at ``began`` (monotonic) read ``version``: keep the newest, and when it was read."""
        with self._seen_lock:
            if version > self._seen:
                self._seen, self._seen_at = version, began
            elif version == self._seen:
                self._seen_at = max(self._seen_at, began)
            # an older version: another thread's check, answered late; what the newer one read stands

    def _mark_used(self, token_id: str, now: datetime) -> None:
        """Record a token's use now, unless that would wait: then a later request records it.

        A server checks tokens in its event loop, where a wait holds up every
        tenant's requests: for SQLite's write lock, which another process's
        write holds (a settings edit over many users, for seconds), or for a
        PostgreSQL row lock. So the mark is one statement that gives up at
        once instead (SQLite: no busy timeout; PostgreSQL: ``SKIP LOCKED``),
        and a failure to write it is no failure of the check.
        """
        params = {"t": self._tenant, "id": token_id, "at": _stamp(now)}
        with suppress(SQLAlchemyError, sqlite3.Error), self._writer.connect() as conn:
            if conn.dialect.name == "postgresql":
                _run(_alone(conn), _Sql.MARK_USED_UNLOCKED, params)
                return
            with _sqlite_without_busy_wait(conn):  # in autocommit: the statement is its own transaction
                _run(conn, _Sql.MARK_USED, params)

    def _token_rows(self, conn: sa.Connection) -> tuple[TokenInfo, ...]:
        return tuple(TokenInfo(*row) for row in conn.execute(_Sql.CREDENTIALS, {"t": self._tenant}))

    # -- the request log

    def log_requests(
        self, entries: Sequence[LoggedRequest], *, keep_rows: int = REQUEST_LOG_ROWS, keep_days: int | None = None
    ) -> None:
        """Append to the request log, then drop what is past its retention, in one transaction.

        Retention: the oldest rows beyond ``keep_rows``, and with
        ``keep_days`` the rows older than that many days.

        Raises:
            StoreUnavailable: the write could not be made durable; nothing was written.
        """
        t = self._tenant
        rows = [
            {"t": t, "at": e.at, "method": e.method, "path": e.path, "status": e.status, "reason": e.reason, "ms": e.ms}
            for e in entries
        ]
        with self._lock, self._transaction() as conn:
            if rows:
                conn.execute(_Sql.LOG_REQUEST, rows)
            conn.execute(_Sql.PRUNE_ROWS, {"t": t, "skip": keep_rows - 1})
            if keep_days is not None:
                conn.execute(_Sql.PRUNE_DAYS, {"t": t, "before": _stamp(self._clock() - timedelta(days=keep_days))})

    def requests(self, *, limit: int = REQUEST_LOG_ROWS) -> tuple[LoggedRequest, ...]:
        """The last ``limit`` entries of the request log, oldest first."""
        with self._lock, self._engine.connect() as conn:
            rows = conn.execute(_Sql.REQUESTS, {"t": self._tenant, "n": limit}).fetchall()
        return tuple(LoggedRequest(*row) for row in reversed(rows))

    # -- drift, T6

    def check(self) -> tuple[Drift, ...]:
        """Compare what is stored with what the rules say of it: every difference, or ``()``.

        The stored memberships against resolving the stored settings and
        users; the feed, folded from its start, against the stored
        memberships; group members against the SCIM users. Reads the
        database as it is now, in one transaction.
        """
        with self._lock, self._reader.begin() as conn:
            return tuple(self._drift(conn))

    def _drift(self, conn: sa.Connection) -> Iterator[Drift]:
        for gid, uid in conn.execute(_Sql.OTHER_MEMBERS, {"t": self._tenant}):
            yield Drift("member", f"group {gid!r} lists {uid!r}, who is not a SCIM user")
        try:
            directory = self._read(conn, checked=True)
        except ScimRolesError as err:
            for problem in err.problems:
                yield Drift("state", str(problem))
            return
        for _, detail in _unlike(self._read(conn), directory):
            yield Drift("user", detail)
        stored = self._stored_memberships(conn)
        for change in reconcile(stored, resolve_all(directory.org, directory.users.values())):
            where = f"user {change.user_id!r} on team {change.team!r}"
            yield Drift(
                "membership", f"{where}: stored {_role_text(change.before)}, the rules give {_role_text(change.after)}"
            )
        for change in _differences(self._folded(conn), stored):
            where = f"user {change.user_id!r} on team {change.team!r}"
            yield Drift(
                "feed", f"{where}: the feed gives {_role_text(change.before)}, stored {_role_text(change.after)}"
            )

    def _stored_memberships(self, conn: sa.Connection) -> dict[str, dict[str, Role]]:
        out: dict[str, dict[str, Role]] = {}
        for uid, team, role in conn.execute(_Sql.MEMBERSHIPS, {"t": self._tenant}):
            out.setdefault(uid, {})[team] = Role(role)
        return out

    def _folded(self, conn: sa.Connection) -> dict[str, dict[str, Role]]:
        out: dict[str, dict[str, Role]] = {}
        for uid, team, after in conn.execute(_Sql.FEED_FOLD, {"t": self._tenant}):
            if after is None:
                out.get(uid, {}).pop(team, None)
            else:
                out.setdefault(uid, {})[team] = Role(after)
        return {uid: teams for uid, teams in out.items() if teams}

    def repair(self) -> tuple[Change, ...]:
        """Rewrite the derived rows from the stored settings and users, in one transaction.

        The memberships become what the rules give; the feed gains the
        entries (origin ``"repair"``) that take a mirror of it from what it
        folds to now to those memberships; group member rows of users who
        are not SCIM users go; a user's row whose userName, its key or the
        resource's text is not what its resource gives is written anew
        (``check`` reports them as ``"user"`` drift).

        Returns:
            The feed entries appended, as changes.

        Raises:
            InvalidUser: the stored users do not fit the stored settings:
                nothing derived can be repaired until they do.
            StoreUnavailable: the repair could not be made durable.
        """
        t = {"t": self._tenant}
        with self._lock, self._transaction() as conn:
            conn.execute(_Sql.LOCK_TENANT, t)  # other writers of the tenant wait (SQLite: BEGIN IMMEDIATE did)
            directory, stored = self._read(conn, checked=True), self._read(conn)
            rewritten = sorted({uid for uid, _ in _unlike(stored, directory)})
            for uid in rewritten:
                self._write_user(conn, stored, directory.users[uid], directory)  # its row; its grants and groups stand
            if rewritten:  # every server's copy of the state is out of date
                conn.execute(_Sql.NEXT_VERSION, t)
            wanted = {
                uid: dict(res.roles)
                for uid, res in resolve_all(directory.org, directory.users.values()).items()
                if res.memberships
            }
            changes = _differences(self._folded(conn), wanted)
            conn.execute(_Sql.DELETE_OTHER_MEMBERS, t)  # never read (they are drift): the directory stands
            conn.execute(_Sql.DELETE_MEMBERSHIPS, t)
            rows = [
                {**t, "id": uid, "team": team, "role": role.value}
                for uid, rs in wanted.items()
                for team, role in rs.items()
            ]
            if rows:
                conn.execute(_Sql.PUT_MEMBERSHIP, rows)
            self._feed(conn, changes, "repair")
        return changes


SqliteStore = SqlStore  # its name before PostgreSQL: a SQLite state is opened the same way


class _FileGone(Exception):
    """The SQLite file is gone, replaced or read-only: the write is refused as StoreUnavailable."""


class _Lost(Exception):
    """A commit sent at once found another commit first (its compare-and-swap failed): nothing written."""


class _WouldWait(Exception):
    """A write that must not wait found SQLite's write lock held (or could not begin): nothing written."""


class RequestLog:
    """Writes the request log of :class:`~scim_roles.asgi.ScimApp` or ``TenantApp`` to the state, about once a second.

    Entries are kept in memory and written in one transaction, by a thread of
    its own, off the request path.

    A server killed with ``-9`` loses at most the last second of its log
    (never a SCIM write: those are committed before they are answered).
    :meth:`close` writes what is left.

    Args:
        store: Where the log goes (its own connection is best: a write of the
            log then never waits for a SCIM write); or, for the tenants of a
            database, a function giving a tenant's store (entries then come
            with their tenant: ``log(entry, tenant=...)``).
        keep_rows: Keep at most this many entries (per tenant).
        keep_days: Drop entries older than this many days (``None``: no age
            limit).
        every: Seconds between writes.

    An entry that does not fit the log is refused (:class:`InvalidArgument`)
    when it is given, never written to another tenant's log: one without a
    tenant to a log of many tenants, or one of another tenant than its one
    store's (a log of one store given to a ``TenantApp``).
    """

    def __init__(
        self,
        store: SqlStore | Callable[[str], SqlStore],
        *,
        keep_rows: int = REQUEST_LOG_ROWS,
        keep_days: int | None = None,
        every: float = 1.0,
    ) -> None:
        self._store, self._keep_rows, self._keep_days, self._every = store, keep_rows, keep_days, every
        self._pending: list[tuple[str, LoggedRequest]] = []  # each entry with its tenant
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scim-roles request log", daemon=True)
        self._thread.start()

    def __call__(self, entry: LoggedRequest, tenant: str | None = None) -> None:
        """Keep an entry (of ``tenant``, for a log of many tenants) for the next write.

        Raises:
            InvalidArgument: no ``tenant`` for a log of many tenants, or one
                other than its one store's tenant.
        """
        stores = self._store
        if callable(stores):
            if tenant is None:
                raise InvalidArgument(
                    Problem("RequestLog", "tenant", f"{entry.path!r}: a log of many tenants needs each entry's tenant")
                )
        elif tenant is None:
            tenant = stores.tenant
        elif tenant != stores.tenant:
            raise InvalidArgument(
                Problem(
                    "RequestLog",
                    "tenant",
                    f"{tenant!r} is not the tenant of this log's store ({stores.tenant!r})",
                    tenant,
                )
            )
        with self._lock:
            self._pending.append((tenant, entry))

    def flush(self) -> None:
        """Write the entries kept so far; a state that cannot be written keeps them for the next try."""
        with self._lock:
            pending, self._pending = self._pending, []
        by_tenant: dict[str, list[LoggedRequest]] = {}
        for tenant, entry in pending:
            by_tenant.setdefault(tenant, []).append(entry)
        for tenant, entries in by_tenant.items():
            self._write(tenant, entries)

    def _write(self, tenant: str, entries: list[LoggedRequest]) -> None:
        try:
            stores = self._store
            store = stores(tenant) if callable(stores) else stores
            store.log_requests(entries, keep_rows=self._keep_rows, keep_days=self._keep_days)
        except (StoreUnavailable, InvalidArgument) as err:  # unwritable now, or a tenant gone
            with self._lock:
                self._pending[:0] = [(tenant, e) for e in entries[-self._keep_rows :]]
            _LOG.warning("the request log cannot be written now: %s", json.dumps(str(err))[1:-1])

    def close(self) -> None:
        """Stop writing in the background, and write what is left."""
        self._stop.set()
        self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.flush()


_LOG = logging.getLogger("scim_roles.serve")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a state is built from its rows, then as it was.

    Building 100,000 users allocates that many objects that all live on,
    and the collector, run every few hundred allocations, goes over them
    again and again: a third of a big tenant's load. Nothing built here
    makes a cycle, so pausing it loses nothing (Mercurial pauses it so to
    build its big indexes). It runs again as before if it ran before.
    """
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


def _claim_one(conn: sa.Connection, tenant: str, domain: str) -> str | None:
    """Claim a domain for the tenant; ``None``, or the tenant whose claim committed first."""
    try:
        with conn.begin_nested():  # a savepoint: the transaction goes on, to name the owner
            conn.execute(_Sql.CLAIM_DOMAIN, {"t": tenant, "domain": domain})
    except sa.exc.IntegrityError:
        return str(conn.execute(_Sql.DOMAIN_OWNER, {"domain": domain}).scalar_one())
    return None


def _check_admin(directory: Directory, actor: str) -> None:
    """R15: the actor is an org admin of the stored state, or NotOrgAdmin."""
    user = directory.users.get(actor)
    if user is None:
        raise NotOrgAdmin(
            Problem("put_org", "actor", f"{actor!r} is no user of this org; settings are an org admin's (R15)", actor)
        )
    if not resolve_indexed(index_of(directory.org), user).is_org_admin:
        raise NotOrgAdmin(
            Problem("put_org", "actor", f"user {actor!r} is no org admin; settings are an org admin's (R15)", actor)
        )


def _unlike(stored: Directory, checked: Directory) -> Iterator[tuple[str, str]]:
    """Each user whose row, as :meth:`SqlStore.load` takes it unchecked, is not what its resource gives: id, why."""
    for uid in sorted(checked.users):
        name = checked.user_name(uid)
        if stored.user_name(uid) != name:
            yield uid, f"user {uid!r}: the stored userName is {stored.user_name(uid)!r}, its resource's is {name!r}"
        holder = stored.user(name)
        if holder is None or holder.id != uid:
            yield uid, f"user {uid!r}: the stored key of its userName {name!r} is not the name's key (S2)"
        if stored.resource_json(uid) != checked.resource_json(uid):
            yield uid, f"user {uid!r}: the stored resource is not written as the store writes it"


def _differences(have: Mapping[str, Mapping[str, Role]], want: Mapping[str, Mapping[str, Role]]) -> tuple[Change, ...]:
    """The changes that take ``have`` (user → team → role) to ``want``, sorted by (user id, team)."""
    return tuple(
        Change(uid, team, have.get(uid, {}).get(team), want.get(uid, {}).get(team))
        for uid in sorted(have.keys() | want.keys())
        for team in sorted(have.get(uid, {}).keys() | want.get(uid, {}).keys())
        if have.get(uid, {}).get(team) is not want.get(uid, {}).get(team)
    )


def _settings_json(org: Org) -> str:
    return json.dumps(to_builtins(org))  # to_builtins lists teams and groups sorted: one text per Org


def _why(err: Exception) -> str:
    """A database error in the driver's words, without the SQL or SQLAlchemy's help links."""
    orig = getattr(err, "orig", None)
    return str(orig if orig is not None else err).strip()


def _stamp(moment: datetime) -> str:
    """A time as the store writes it: ISO 8601 in UTC, with a ``Z``."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)  # Python 3.11 reads the "Z"


def _value(role: Role | None) -> str | None:
    return None if role is None else role.value


def _role(value: str | None) -> Role | None:
    return None if value is None else Role(value)


def _role_text(role: Role | None) -> str:
    return "no membership" if role is None else role.label
