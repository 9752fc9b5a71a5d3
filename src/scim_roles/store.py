"""Where the SCIM state lives between requests: the :class:`Store` protocol and :class:`SqliteStore`.

A store gives the current state as a :class:`Snapshot` (a
:class:`~scim_roles.scim.Directory` and a version) and commits an
:class:`~scim_roles.scim.Outcome` atomically, only if nobody committed since
that snapshot (compare-and-swap). :class:`SqliteStore` is the embedded
default, on the standard library's ``sqlite3`` in WAL mode; it is also the
example of what a host stores for itself. Part of the ``serve`` layer: it
does I/O; needs the ``scim`` extra.

The stored state keeps the promises T1-T7 of the rules: one truth (settings,
users, groups, members and the effective memberships, the last always equal
to resolving the others), acknowledged means durable, settings change only
by a previewed edit, a locked user's manual edits are refused, drift is
visible (:meth:`SqliteStore.check`), and every membership change is in the
feed (:meth:`SqliteStore.changes`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import attrs

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
from .scim import Directory, Outcome, ScimResponse, email_of, user_name_key
from .scim._pmap import PMap

__all__ = [
    "Drift",
    "FeedEntry",
    "GuardrailFired",
    "LoggedRequest",
    "NotOrgAdmin",
    "RequestLog",
    "SettingsDiffer",
    "Snapshot",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "TokenInfo",
    "TooManyTokens",
    "check_tenant_id",
]

SCHEMA_VERSION = 4  # 1: the 0.1 store; 2: the change feed, settings and memberships as one truth; 3: emails;
# 4: the tenant id and its tokens
DEFAULT_TENANT = "default"  # the tenant of a state created without one
MAX_ACTIVE_TOKENS = 2  # rotation without downtime: the old token and the new
LAST_USED_EVERY = timedelta(minutes=1)  # a token's last use is written at most this often
REQUEST_LOG_ROWS = 10_000  # the request log keeps this many rows by default
ORIGINS = ("scim", "admin", "saml", "settings", "repair")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,          -- the RFC 8265 key of user_name (S2)
    user_name TEXT NOT NULL,
    saml INTEGER NOT NULL,
    scim INTEGER NOT NULL,
    deprovisioned INTEGER NOT NULL,
    resource TEXT,                     -- the SCIM resource the IdP sent, with meta (SCIM users)
    -- the user's email (R14), or NULL; added by schema 3
    email TEXT
);
CREATE TABLE IF NOT EXISTS manual (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, team)
);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, resource TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deleted_groups (id TEXT PRIMARY KEY);  -- deleted by the IdP: never synced again
CREATE TABLE IF NOT EXISTS members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    display TEXT,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE IF NOT EXISTS memberships (   -- the effective access: what the app reads
    user_id TEXT NOT NULL,
    team TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, team)
);
CREATE TABLE IF NOT EXISTS tokens (        -- the tenant's bearer tokens, as hashes; added by schema 4
    id TEXT PRIMARY KEY,                   -- the lookup id, which the token contains
    hash TEXT NOT NULL,                    -- SHA-256 of the token's secret
    created TEXT NOT NULL,
    expires TEXT,
    last_used TEXT,                        -- at most a minute behind
    revoked TEXT
);
CREATE TABLE IF NOT EXISTS requests (      -- the request log: never a token, never a body; bounded
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,                  -- why it was refused ('' for a success)
    ms REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (       -- the feed: every membership change, in order (T7)
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    team TEXT NOT NULL,
    before TEXT,
    after TEXT,
    origin TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '0');
"""


class _Sql:
    """Every statement the store runs, by name: one spelling of each, next to the schema."""

    READ_ONLY = "PRAGMA busy_timeout=10000"
    WRITABLE = (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    )
    BEGIN, BEGIN_WRITE, COMMIT, ROLLBACK = "BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"
    SETTINGS = "SELECT value FROM meta WHERE key = 'org'"
    SCHEMA = "SELECT value FROM meta WHERE key = 'schema'"
    VERSION = "SELECT value FROM meta WHERE key = 'version'"
    CREATE_SETTINGS = "INSERT INTO meta (key, value) VALUES ('org', ?)"
    SET_SETTINGS = "UPDATE meta SET value = ? WHERE key = 'org'"
    SET_SCHEMA = "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)"
    BUMP_VERSION = "UPDATE meta SET value = ? WHERE key = 'version' AND value = ?"
    SEED_GROUP = "INSERT OR IGNORE INTO groups (id, resource) VALUES (?, ?)"
    DELETED_GROUPS = "SELECT id FROM deleted_groups"
    MANUAL = "SELECT user_id, team, role FROM manual"
    SCIM_MEMBERS = (
        "SELECT m.group_id, m.user_id, m.display FROM members m JOIN users u ON u.id = m.user_id"
        " WHERE u.scim ORDER BY m.group_id, m.user_id"
    )
    OTHER_MEMBERS = (
        "SELECT m.group_id, m.user_id FROM members m JOIN users u ON u.id = m.user_id WHERE NOT u.scim ORDER BY 1, 2"
    )
    USERS = "SELECT id, user_name, saml, scim, deprovisioned, resource, email FROM users"
    USER_COLUMNS = "SELECT name FROM pragma_table_info('users')"
    ADD_EMAIL = "ALTER TABLE users ADD COLUMN email TEXT"
    NAMES_AND_RESOURCES = "SELECT id, user_name, resource FROM users"
    SET_EMAIL = "UPDATE users SET email = ? WHERE id = ?"
    GROUPS = "SELECT id, resource FROM groups"
    MEMBERSHIPS = "SELECT user_id, team, role FROM memberships ORDER BY 1, 2"
    FEED = "SELECT seq, at, user_id, team, before, after, origin FROM changes WHERE seq > ? ORDER BY seq"
    FEED_FOLD = "SELECT user_id, team, after FROM changes ORDER BY seq"
    DELETE_GROUP = "DELETE FROM groups WHERE id = ?"
    MARK_DELETED = "INSERT OR IGNORE INTO deleted_groups (id) VALUES (?)"
    PUT_GROUP = (  # an update in place: the group's member rows stay (a REPLACE would delete them, cascading)
        "INSERT INTO groups (id, resource) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET resource = excluded.resource"
    )
    DELETE_USER = "DELETE FROM users WHERE id = ?"
    PUT_USER = (
        "INSERT INTO users (id, key, user_name, saml, scim, deprovisioned, resource, email)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET key = excluded.key, user_name = excluded.user_name, saml = excluded.saml,"
        " scim = excluded.scim, deprovisioned = excluded.deprovisioned, resource = excluded.resource,"
        " email = excluded.email"
    )
    DELETE_MANUAL = "DELETE FROM manual WHERE user_id = ?"
    ADD_MANUAL = "INSERT INTO manual (user_id, team, role) VALUES (?, ?, ?)"
    PUT_MEMBER = (
        "INSERT INTO members (group_id, user_id, display) VALUES (?, ?, ?)"
        " ON CONFLICT (group_id, user_id) DO UPDATE SET display = excluded.display"
    )
    DELETE_MEMBER = "DELETE FROM members WHERE group_id = ? AND user_id = ?"
    DELETE_OTHER_MEMBERS = "DELETE FROM members WHERE user_id IN (SELECT id FROM users WHERE NOT scim)"
    DELETE_MEMBERSHIP = "DELETE FROM memberships WHERE user_id = ? AND team = ?"
    PUT_MEMBERSHIP = (
        "INSERT INTO memberships (user_id, team, role) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id, team) DO UPDATE SET role = excluded.role"
    )
    DELETE_MEMBERSHIPS = "DELETE FROM memberships"
    TENANT = "SELECT value FROM meta WHERE key = 'tenant'"
    SET_TENANT = "INSERT INTO meta (key, value) VALUES ('tenant', ?)"
    CREDENTIALS = "SELECT id, created, expires, last_used, revoked FROM tokens ORDER BY created, rowid"
    CREDENTIAL = "SELECT id, hash, created, expires, last_used, revoked FROM tokens WHERE id = ?"
    ADD_CREDENTIAL = "INSERT INTO tokens (id, hash, created, expires) VALUES (?, ?, ?, ?)"
    REVOKE = "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL"
    MARK_USED = "UPDATE tokens SET last_used = ? WHERE id = ?"
    LOG_REQUEST = "INSERT INTO requests (at, method, path, status, reason, ms) VALUES (?, ?, ?, ?, ?, ?)"
    PRUNE_ROWS = "DELETE FROM requests WHERE seq <= (SELECT max(seq) FROM requests) - ?"
    PRUNE_DAYS = "DELETE FROM requests WHERE at < ?"
    REQUESTS = "SELECT at, method, path, status, reason, ms, seq FROM requests ORDER BY seq DESC LIMIT ?"
    APPEND = "INSERT INTO changes (at, user_id, team, before, after, origin) VALUES (?, ?, ?, ?, ?, ?)"


# Transactions are explicit (BEGIN ... COMMIT); one connection serves a server's threads, under the store's lock.
_connect = partial(sqlite3.connect, isolation_level=None, check_same_thread=False)


class StoreUnavailable(Exception):  # a state, not a bad input: not a ScimRolesError
    """A write could not be made durable (T2): the state file is gone, replaced, read-only or full, or I/O failed.

    Nothing was written. The ASGI app answers ``503``; the last durable
    state still answers reads.
    """


class SettingsDiffer(InvalidOrg):
    """An org document given to an existing state is not its stored settings (T4).

    Stored settings change only through a previewed edit
    (:meth:`SqliteStore.put_org`, ``scim-roles edit``), never by restarting
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
            app's edit of a user, :meth:`SqliteStore.put_user`),
            ``"settings"`` (a settings edit) or ``"repair"`` (drift
            repaired, :meth:`SqliteStore.repair`).
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
            not a SCIM user) or ``"state"`` (stored users that do not fit
            the stored settings).
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
    """

    def load(self) -> Snapshot:
        """The current state."""
        ...  # pragma: no cover -- a protocol

    def commit(self, snapshot: Snapshot, outcome: Outcome) -> bool:
        """Write the outcome if the state is still ``snapshot``'s; ``False`` otherwise."""
        ...  # pragma: no cover -- a protocol


_utc_now = partial(datetime.now, timezone.utc)
_NO_RESPONSE = ScimResponse(200, (), b"")  # an app's own write answers nobody over SCIM


class SqliteStore:
    """The SCIM state in one SQLite file: settings, users, groups, members, the memberships and their feed.

    Args:
        path: The database file, created with its tables on first use.
        org: The org's settings from its document, to create a new state:
            teams, default access, the toggle, and the group mappings. Groups
            the document maps are synced groups from the start; groups the
            IdP pushes get a blank mapping (R2) until an admin maps them
            (:meth:`put_org`). Given for an existing state, it must be the
            stored settings (groups the IdP pushed or deleted since aside),
            else :class:`SettingsDiffer`: an org document seeds a state and
            never replaces its settings (T4).
        readonly: Open an existing store for reading only (writes fail).
        clock: The time of a feed entry or a token's use (UTC now by default).
        tenant: The tenant id of a new state (:func:`check_tenant_id`;
            ``"default"`` if not given). Given for an existing state, it must
            be the one it holds. A state holds one tenant: its endpoint is
            ``/scim/v2/{tenant}``.

    A commit writes only what the request touched (its users, its groups,
    its membership changes and their feed entries) in one transaction, with
    ``synchronous=FULL``: once it returns, the write survives a crash. The
    last state is cached and reused while the file's version has not moved;
    another process's commit moves it, so it is seen at the next
    :meth:`load`.

    Raises:
        InvalidOrg: a new state without ``org``, or ``org`` is not an
            :class:`Org`.
        SettingsDiffer: ``org`` is not the stored settings.
        InvalidArgument: ``tenant`` is not a tenant id, or not the one an
            existing state holds.
        sqlite3.Error: the file is not a state, or cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        org: Org | None = None,
        *,
        readonly: bool = False,
        clock: Callable[[], datetime] = _utc_now,
        tenant: str | None = None,
    ) -> None:
        if org is not None:
            index_of(org, "SqliteStore")  # an Org, or InvalidOrg
        if tenant is not None:
            check_tenant_id(tenant)
        self._lock = threading.Lock()
        self._cache: Snapshot | None = None
        self._settings: tuple[str, Org] | None = None  # the stored settings' JSON, and the Org it loads to
        self._clock = clock
        self._path = os.fspath(path)
        # An admin's read of the live state never creates or changes the file.
        self._db = _connect(_read_only_uri(self._path), uri=True) if readonly else _connect(self._path)
        weakref.finalize(self, self._db.close)  # a store dropped unclosed closes its connection
        try:
            self._open(org, tenant, readonly=readonly)
        except BaseException:
            self._db.close()  # refused: no connection left for the garbage collector
            raise

    # -- opening

    def _open(self, org: Org | None, tenant: str | None, *, readonly: bool) -> None:
        if readonly:
            self._db.execute(_Sql.READ_ONLY)
            self._version()  # fails here on a file that is not a store
        else:
            for pragma in _Sql.WRITABLE:
                self._db.execute(pragma)
            self._db.executescript(_SCHEMA)  # idempotent, outside any transaction
        self._identity = self._file_identity()
        if self._stored_settings() is None:
            if org is None:
                raise InvalidOrg(Problem("SqliteStore", "org", "a new store needs the org's settings: pass org="))
            self._create(org, tenant or DEFAULT_TENANT)
        else:
            if tenant is not None and tenant != self._tenant_id():
                raise InvalidArgument(
                    Problem(
                        "SqliteStore",
                        "tenant",
                        f"{self._path} holds tenant {self._tenant_id()!r}, not {tenant!r}"
                        " (one tenant per SQLite state in this release)",
                        tenant,
                    )
                )
            if readonly and self._schema() < SCHEMA_VERSION:
                msg = (
                    f"{self._path}: an older state (schema {self._schema()}, this release writes"
                    f" {SCHEMA_VERSION}): open it once for writing (`scim-roles repair --db STATE`) to upgrade it"
                )
                raise StoreUnavailable(msg)
            if not readonly:
                self._upgrade()
            if org is not None:
                self._same_settings(org)

    def _create(self, org: Org, tenant: str) -> None:
        with self._transaction():
            self._db.execute(_Sql.SET_TENANT, (tenant,))
            self._db.execute(_Sql.CREATE_SETTINGS, (_settings_json(org),))
            self._db.execute(_Sql.SET_SCHEMA, (str(SCHEMA_VERSION),))
            self._db.executemany(_Sql.SEED_GROUP, [(g.id, json.dumps({"displayName": g.id})) for g in org.groups])

    def _upgrade(self) -> None:
        """An older state, brought to this schema in one transaction, nothing lost.

        From 0.1 (no feed): the stored memberships become the feed's first
        entries (origin "repair"), so that folding the feed gives the stored
        memberships (T7) from the start; ``check`` then says whether those
        rows are what the rules give. Without emails (schema 2 and older):
        each user's email is read from what is stored, as S13 reads it from a
        request: the userName when it is an email address, else the
        resource's primary email.
        """
        schema = self._schema()
        if schema >= SCHEMA_VERSION:
            return
        db = self._db
        with self._transaction():
            if schema < 2:
                rows = db.execute(_Sql.MEMBERSHIPS).fetchall()
                self._feed([Change(uid, team, None, Role(role)) for uid, team, role in rows], "repair")
            if schema < 3:  # the schema that added emails
                if "email" not in {row[0] for row in db.execute(_Sql.USER_COLUMNS)}:
                    db.execute(_Sql.ADD_EMAIL)
                emails = [
                    (email_of(name, json.loads(resource) if resource else {}), uid)
                    for uid, name, resource in db.execute(_Sql.NAMES_AND_RESOURCES)
                ]
                db.executemany(_Sql.SET_EMAIL, emails)
            db.execute(_Sql.SET_SCHEMA, (str(SCHEMA_VERSION),))  # schema 4's tokens table: made with the others

    def _schema(self) -> int:
        row = self._db.execute(_Sql.SCHEMA).fetchone()
        return 1 if row is None else int(row[0])

    def _same_settings(self, org: Org) -> None:
        """``org`` is the stored settings, give or take the groups the IdP pushed (blank) or deleted."""
        stored = self.load().directory.org
        deleted = {row[0] for row in self._db.execute(_Sql.DELETED_GROUPS)}
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

    def _stored_settings(self) -> str | None:
        row = self._db.execute(_Sql.SETTINGS).fetchone()
        return None if row is None else str(row[0])

    def _settings_org(self, text: str) -> Org:
        """The stored settings as an Org: parsed again only when they changed."""
        if self._settings is None or self._settings[0] != text:
            from .io import load_org  # noqa: PLC0415 -- the serve extra brings io

            self._settings = (text, load_org(json.loads(text)))
        return self._settings[1]

    def _file_identity(self) -> tuple[int, int] | None:
        if self._path in ("", ":memory:"):
            return None
        info = Path(self._path).stat()
        return info.st_dev, info.st_ino

    @property
    def org(self) -> Org:
        """The org's settings as stored now: teams, defaults, toggle, and every synced group's mapping."""
        return self.load().directory.org

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> SqliteStore:  # noqa: PYI034 -- Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One durable transaction; a failure to make it durable is :class:`StoreUnavailable`, nothing written."""
        try:
            self._db.execute(_Sql.BEGIN_WRITE)
            self._check_file()
            try:
                yield
            except BaseException:
                with suppress(sqlite3.Error):
                    self._db.execute(_Sql.ROLLBACK)
                raise
            self._db.execute(_Sql.COMMIT)
        except sqlite3.Error as err:
            with suppress(sqlite3.Error):
                self._db.execute(_Sql.ROLLBACK)
            msg = f"{self._path}: the write could not be made durable: {err}"
            raise StoreUnavailable(msg) from err

    def _check_file(self) -> None:
        """The file this store opened is still the one at its path (not deleted, not replaced)."""
        if self._identity is None:
            return
        try:
            info = Path(self._path).stat()
        except OSError as err:
            msg = f"the state file is gone: {err.strerror}"
            raise sqlite3.OperationalError(msg) from None
        if (info.st_dev, info.st_ino) != self._identity:
            msg = "the state file was replaced by another file"
            raise sqlite3.OperationalError(msg)
        if not os.access(self._path, os.W_OK):  # immutable (chattr +i) or on a read-only mount: root too is refused
            msg = "the state file is read-only"
            raise sqlite3.OperationalError(msg)

    def _version(self) -> int:
        return int(self._db.execute(_Sql.VERSION).fetchone()[0])

    # -- reading

    def load(self) -> Snapshot:
        """The current state: the cached one while the file's version has not moved.

        Raises:
            InvalidUser: the stored users do not fit the stored settings.
            StoreUnavailable: the file cannot be read.
        """
        with self._lock:
            try:
                version = self._version()
                if self._cache is not None and self._cache.version == version:
                    return self._cache
                self._db.execute(_Sql.BEGIN)
                try:
                    snapshot = Snapshot(self._read(), self._version())
                finally:
                    self._db.execute(_Sql.COMMIT)
            except sqlite3.Error as err:
                msg = f"{self._path}: the state cannot be read: {err}"
                raise StoreUnavailable(msg) from err
            self._cache = snapshot
            return snapshot

    def _read(self) -> Directory:
        db = self._db
        manual: dict[str, list[Grant]] = {}
        for uid, team, role in db.execute(_Sql.MANUAL):
            manual.setdefault(uid, []).append(Grant(team, Role(role)))
        groups: dict[str, set[str]] = {}
        members: dict[str, list[dict[str, str | None]]] = {}
        for gid, uid, display in db.execute(_Sql.SCIM_MEMBERS):  # any other member is drift (check)
            groups.setdefault(uid, set()).add(gid)
            members.setdefault(gid, []).append({"value": uid, "display": display})
        users, names, resources = [], {}, {}
        for uid, name, saml, scim, gone, resource, email in db.execute(_Sql.USERS):
            users.append(User(uid, bool(saml), bool(scim), groups.get(uid, ()), bool(gone), manual.get(uid, ()), email))
            if resource is None:
                names[uid] = name
            else:
                resources[uid] = json.loads(resource)
        group_resources = {
            gid: {**json.loads(resource), "members": members.get(gid, [])} for gid, resource in db.execute(_Sql.GROUPS)
        }
        settings = self._stored_settings()
        assert settings is not None  # noqa: S101 -- written when the state was created
        stored = self._settings_org(settings)
        # The groups table says which groups are synced; the settings give their mappings.
        mapped = {g.id: g for g in stored.groups}
        org = attrs.evolve(stored, groups=[mapped.get(gid, IdpGroup(gid)) for gid in group_resources])
        return Directory(org, users, user_names=names, resources=resources, groups=group_resources)

    def memberships(self) -> dict[str, dict[str, Role]]:
        """The effective access as stored: user id to team to role (what the app reads)."""
        with self._lock:
            return self._stored_memberships()

    def changes(self, after: int = 0, *, limit: int | None = None) -> tuple[FeedEntry, ...]:
        """The feed (T7): the membership changes committed after sequence number ``after``, oldest first.

        A host mirrors the memberships into its own tables by applying the
        entries after the last ``seq`` it applied, then keeping that ``seq``:
        folding the whole feed gives :meth:`memberships`.

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
        with self._lock:
            cursor = self._db.execute(_Sql.FEED, (after,))
            rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
        return tuple(FeedEntry(s, at, u, t, _role(b), _role(a), o) for s, at, u, t, b, a, o in rows)

    # -- writing

    def commit(self, snapshot: Snapshot, outcome: Outcome, *, origin: str = "scim") -> bool:
        """Write what the outcome touched and its feed entries, if the state is still ``snapshot``'s.

        Args:
            snapshot: What the outcome was computed from.
            outcome: What to write.
            origin: The feed entries' origin (``"scim"`` for a SCIM request).

        Returns:
            ``True`` once written and durable; ``False`` (nothing written)
            when another commit came first.

        Raises:
            StoreUnavailable: the write could not be made durable; nothing
                was written.
        """
        with self._lock, self._transaction():
            updated = self._db.execute(_Sql.BUMP_VERSION, (str(snapshot.version + 1), str(snapshot.version)))
            if updated.rowcount != 1:
                return False
            self._write(snapshot.directory, outcome)
            self._apply(outcome.changes, origin)
            org = outcome.directory.org
            if org is not snapshot.directory.org:  # settings edited, or a group synced or deleted
                self._db.execute(_Sql.SET_SETTINGS, (_settings_json(org),))
            self._cache = Snapshot(outcome.directory, snapshot.version + 1)
        return True

    def _write(self, before: Directory, outcome: Outcome) -> None:
        db, after = self._db, outcome.directory
        for gid in sorted(outcome.touched_groups):
            resource = after.group_resource(gid)
            if resource is None:
                db.execute(_Sql.DELETE_GROUP, (gid,))
                db.execute(_Sql.MARK_DELETED, (gid,))
            else:
                db.execute(_Sql.PUT_GROUP, (gid, json.dumps(resource)))
        for uid in sorted(outcome.touched):
            user = after.users.get(uid)
            if user is None:
                db.execute(_Sql.DELETE_USER, (uid,))
            else:
                self._write_user(before.users.get(uid), user, after)

    def _write_user(self, old: User | None, user: User, after: Directory) -> None:
        """A user's row, manual grants and member rows (cost ∝ the user's groups, never a group's size)."""
        db, uid = self._db, user.id
        name, resource = after.user_name(uid), after.resource(uid)  # None: not a SCIM user
        key = user_name_key(name)
        row = (uid, key, name, user.saml, user.scim, user.deprovisioned, _json(resource), user.email)
        db.execute(_Sql.PUT_USER, row)
        db.execute(_Sql.DELETE_MANUAL, (uid,))
        db.executemany(_Sql.ADD_MANUAL, [(uid, g.team, g.role.value) for g in user.manual])
        for gid in (old.groups if old is not None else frozenset()) - user.groups:
            db.execute(_Sql.DELETE_MEMBER, (gid, uid))
        for gid in user.groups:
            db.execute(_Sql.PUT_MEMBER, (gid, uid, after.members(gid)[uid]))

    def _apply(self, changes: Sequence[Change], origin: str) -> None:
        """Membership changes: to the memberships table and, in order, to the feed."""
        for change in changes:
            if change.after is None:
                self._db.execute(_Sql.DELETE_MEMBERSHIP, (change.user_id, change.team))
            else:
                self._db.execute(_Sql.PUT_MEMBERSHIP, (change.user_id, change.team, change.after.value))
        self._feed(changes, origin)

    def _feed(self, changes: Sequence[Change], origin: str) -> None:
        """Append changes to the feed, in order, stamped with the clock's time."""
        at = _stamp(self._clock())
        self._db.executemany(
            _Sql.APPEND, [(at, c.user_id, c.team, _value(c.before), _value(c.after), origin) for c in changes]
        )

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
        """The tenant id this state holds: its endpoint is ``/scim/v2/{tenant}`` (and ``/scim/v2``)."""
        with self._lock:
            return self._tenant_id()

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
        with self._lock, self._transaction():
            active = [t for t in self._token_rows() if t.active_at(now)]
            if len(active) >= MAX_ACTIVE_TOKENS:
                ids = ", ".join(repr(t.id) for t in active)
                raise TooManyTokens(
                    Problem(
                        "add_token",
                        "tokens",
                        f"tenant {self._tenant_id()!r} has {MAX_ACTIVE_TOKENS} active tokens ({ids}):"
                        " revoke one first (`scim-roles tokens revoke`)",
                    )
                )
            self._db.execute(_Sql.ADD_CREDENTIAL, (lookup, hashed, _stamp(now), expires))
        return lookup, token

    def tokens(self) -> tuple[TokenInfo, ...]:
        """This tenant's tokens, oldest first: ids and times, never a secret."""
        with self._lock:
            return self._token_rows()

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token: every server refuses it from its next request.

        Raises:
            InvalidArgument: no token of this tenant has that id.
            StoreUnavailable: the write could not be made durable.
        """
        with self._lock, self._transaction():
            done = self._db.execute(_Sql.REVOKE, (_stamp(self._clock()), token_id))
            if done.rowcount != 1:
                known = self._db.execute(_Sql.CREDENTIAL, (token_id,)).fetchone()
                detail = "is revoked already" if known is not None else "is no token of this tenant"
                raise InvalidArgument(Problem("revoke_token", "id", f"{token_id!r} {detail}", token_id))

    def check_token(self, presented: str) -> bool:
        """Whether ``presented`` is an active token of this tenant; the same work whatever the answer.

        Reads the token's row each time (a revoke on any server counts from
        the next request); records when it was last used, at most once a
        minute per token (a write then, not per request).
        """
        parts = _tokens.split(presented)
        if parts is None:  # not the shape of a token: its shape is no secret
            return False
        lookup, secret = parts
        now = self._clock()
        with self._lock:
            row = self._db.execute(_Sql.CREDENTIAL, (lookup,)).fetchone()
        info = None if row is None else TokenInfo(*row[:1], *row[2:])
        good = _tokens.matches(secret, None if row is None else row[1])
        if not good or info is None or not info.active_at(now):
            return False
        if info.last_used is None or _parse(info.last_used) <= now - LAST_USED_EVERY:
            with suppress(StoreUnavailable), self._lock, self._transaction():
                self._db.execute(_Sql.MARK_USED, (_stamp(now), lookup))
        return True

    def _token_rows(self) -> tuple[TokenInfo, ...]:
        return tuple(TokenInfo(*row) for row in self._db.execute(_Sql.CREDENTIALS))

    def _tenant_id(self) -> str:
        row = self._db.execute(_Sql.TENANT).fetchone()
        return DEFAULT_TENANT if row is None else str(row[0])

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
        rows = [(e.at, e.method, e.path, e.status, e.reason, e.ms) for e in entries]
        with self._lock, self._transaction():
            self._db.executemany(_Sql.LOG_REQUEST, rows)
            self._db.execute(_Sql.PRUNE_ROWS, (keep_rows,))
            if keep_days is not None:
                self._db.execute(_Sql.PRUNE_DAYS, (_stamp(self._clock() - timedelta(days=keep_days)),))

    def requests(self, *, limit: int = REQUEST_LOG_ROWS) -> tuple[LoggedRequest, ...]:
        """The last ``limit`` entries of the request log, oldest first."""
        with self._lock:
            rows = self._db.execute(_Sql.REQUESTS, (limit,)).fetchall()
        return tuple(LoggedRequest(*row) for row in reversed(rows))

    # -- drift, T6

    def check(self) -> tuple[Drift, ...]:
        """Compare what is stored with what the rules say of it: every difference, or ``()``.

        The stored memberships against resolving the stored settings and
        users; the feed, folded from its start, against the stored
        memberships; group members against the SCIM users. Reads the file as
        it is now.
        """
        with self._lock:
            self._db.execute(_Sql.BEGIN)
            try:
                return tuple(self._drift())
            finally:
                self._db.execute(_Sql.COMMIT)

    def _drift(self) -> Iterator[Drift]:
        for gid, uid in self._db.execute(_Sql.OTHER_MEMBERS):
            yield Drift("member", f"group {gid!r} lists {uid!r}, who is not a SCIM user")
        try:
            directory = self._read()
        except ScimRolesError as err:
            for problem in err.problems:
                yield Drift("state", str(problem))
            return
        stored = self._stored_memberships()
        for change in reconcile(stored, resolve_all(directory.org, directory.users.values())):
            where = f"user {change.user_id!r} on team {change.team!r}"
            yield Drift(
                "membership", f"{where}: stored {_role_text(change.before)}, the rules give {_role_text(change.after)}"
            )
        for change in _differences(self._folded(), stored):
            where = f"user {change.user_id!r} on team {change.team!r}"
            yield Drift(
                "feed", f"{where}: the feed gives {_role_text(change.before)}, stored {_role_text(change.after)}"
            )

    def _stored_memberships(self) -> dict[str, dict[str, Role]]:
        out: dict[str, dict[str, Role]] = {}
        for uid, team, role in self._db.execute(_Sql.MEMBERSHIPS):
            out.setdefault(uid, {})[team] = Role(role)
        return out

    def _folded(self) -> dict[str, dict[str, Role]]:
        out: dict[str, dict[str, Role]] = {}
        for uid, team, after in self._db.execute(_Sql.FEED_FOLD):
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
        are not SCIM users go.

        Returns:
            The feed entries appended, as changes.

        Raises:
            InvalidUser: the stored users do not fit the stored settings:
                nothing derived can be repaired until they do.
            StoreUnavailable: the repair could not be made durable.
        """
        with self._lock, self._transaction():
            directory = self._read()
            wanted = {
                uid: dict(res.roles)
                for uid, res in resolve_all(directory.org, directory.users.values()).items()
                if res.memberships
            }
            changes = _differences(self._folded(), wanted)
            self._db.execute(_Sql.DELETE_OTHER_MEMBERS)  # never read (they are drift): the directory stands
            self._db.execute(_Sql.DELETE_MEMBERSHIPS)
            self._db.executemany(
                _Sql.PUT_MEMBERSHIP,
                [(uid, team, role.value) for uid, roles in wanted.items() for team, role in roles.items()],
            )
            self._feed(changes, "repair")
        return changes


class RequestLog:
    """Writes :class:`~scim_roles.asgi.ScimApp`'s ``request_log`` to a store, about once a second.

    Entries are kept in memory and written in one transaction, by a thread of
    its own, off the request path.

    A server killed with ``-9`` loses at most the last second of its log
    (never a SCIM write: those are committed before they are answered).
    :meth:`close` writes what is left.

    Args:
        store: Where the log goes (its own connection is best: a write of the
            log then never waits for a SCIM write).
        keep_rows: Keep at most this many entries.
        keep_days: Drop entries older than this many days (``None``: no age
            limit).
        every: Seconds between writes.
    """

    def __init__(
        self,
        store: SqliteStore,
        *,
        keep_rows: int = REQUEST_LOG_ROWS,
        keep_days: int | None = None,
        every: float = 1.0,
    ) -> None:
        self._store, self._keep_rows, self._keep_days, self._every = store, keep_rows, keep_days, every
        self._pending: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scim-roles request log", daemon=True)
        self._thread.start()

    def __call__(self, entry: LoggedRequest) -> None:
        """Keep an entry for the next write."""
        with self._lock:
            self._pending.append(entry)

    def flush(self) -> None:
        """Write the entries kept so far; a state that cannot be written keeps them for the next try."""
        with self._lock:
            entries, self._pending = self._pending, []
        if not entries:
            return
        try:
            self._store.log_requests(entries, keep_rows=self._keep_rows, keep_days=self._keep_days)
        except StoreUnavailable as err:
            with self._lock:
                self._pending[:0] = entries[-self._keep_rows :]
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


def _json(value: Mapping[str, object] | None) -> str | None:
    return None if value is None else json.dumps(value)  # a Directory's resources come with their keys sorted


def _read_only_uri(path: str) -> str:
    return "file:" + quote(path) + "?mode=ro"


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
