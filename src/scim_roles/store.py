"""Where the SCIM state lives between requests: the :class:`Store` protocol and :class:`SqliteStore`.

A store gives the current state as a :class:`Snapshot` (a
:class:`~scim_roles.scim.Directory` and a version) and commits an
:class:`~scim_roles.scim.Outcome` atomically, only if nobody committed since
that snapshot (compare-and-swap). :class:`SqliteStore` is the embedded
default, on the standard library's ``sqlite3`` in WAL mode; it is also the
example of what a host stores for itself. Part of the ``serve`` layer: it
does I/O; needs the ``scim`` extra.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Protocol
from urllib.parse import quote

import attrs

from ._builtins import to_builtins
from ._bulk import Preview, diff
from ._errors import InvalidOrg, Problem
from ._model import Grant, IdpGroup, Org, User
from ._resolve import index_of, resolve_indexed
from ._result import Resolution
from ._roles import Role
from .scim import Directory, Outcome, ScimResponse, user_name_key
from .scim._pmap import PMap

__all__ = ["Snapshot", "SqliteStore", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,          -- the RFC 8265 key of user_name (S2)
    user_name TEXT NOT NULL,
    saml INTEGER NOT NULL,
    scim INTEGER NOT NULL,
    deprovisioned INTEGER NOT NULL,
    resource TEXT                      -- the SCIM resource the IdP sent, with meta (SCIM users)
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
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '0');
"""


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


class Store(Protocol):
    """What the ASGI app needs of a store.

    ``load()`` returns the current state. ``commit(snapshot, outcome)``
    writes what ``outcome`` changed, in one transaction, and returns
    ``True``; if another commit happened since ``snapshot`` was loaded it
    writes nothing and returns ``False`` (the app loads again and retries).
    Once ``commit`` returns, the write must survive a crash: the app answers
    only after it.
    """

    def load(self) -> Snapshot:
        """The current state."""
        ...  # pragma: no cover -- a protocol

    def commit(self, snapshot: Snapshot, outcome: Outcome) -> bool:
        """Write the outcome if the state is still ``snapshot``'s; ``False`` otherwise."""
        ...  # pragma: no cover -- a protocol


class SqliteStore:
    """The SCIM state in one SQLite file: users, groups, members, the effective memberships.

    Args:
        path: The database file, created with its tables on first use.
        readonly: Open an existing store for reading only (``commit`` fails).
        org: The org's settings from its document: teams, default access,
            the toggle, and the group mappings by group id. Groups the
            document maps are synced groups from the start; groups the IdP
            pushes get a blank mapping (R2) until the document maps their id.
            A group the IdP deletes stays deleted, mapped or not: its id is
            never synced again.

    A commit writes only what the request touched (its users, its groups,
    its membership changes) in one transaction, with ``synchronous=FULL``:
    once it returns, the write survives a crash. The last state is cached
    and reused while the file's version has not moved.

    Raises:
        InvalidUser: the stored state does not fit the org (a member of a
            group the org no longer has, a manual grant on a removed team).
    """

    def __init__(self, path: str | os.PathLike[str], org: Org | None = None, *, readonly: bool = False) -> None:
        self._lock = threading.Lock()
        self._cache: Snapshot | None = None
        if readonly:  # an admin's read of the live state: never creates or changes the file
            uri = "file:" + quote(os.fspath(path)) + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=10000")
            self._version()  # fails here on a file that is not a store
            self._org = org if org is not None else self._stored_org()
            return
        self._db = sqlite3.connect(os.fspath(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)  # idempotent, outside any transaction
        self._org = org if org is not None else self._stored_org()
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('org', ?)", (json.dumps(to_builtins(self._org)),)
            )
            for group in self._org.groups:  # the document's groups are synced groups, unless the IdP deleted them
                self._db.execute(
                    "INSERT OR IGNORE INTO groups (id, resource)"
                    " SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM deleted_groups WHERE id = ?)",
                    (group.id, json.dumps({"displayName": group.id}), group.id),
                )

    def _stored_org(self) -> Org:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'org'").fetchone()
        if row is None:
            raise InvalidOrg(Problem("SqliteStore", "org", "a new store needs the org's settings: pass org="))
        from .io import load_org  # noqa: PLC0415 -- the serve extra brings io

        org: Org = load_org(json.loads(row[0]))
        return org

    @property
    def org(self) -> Org:
        """The org's settings as stored: teams, defaults, toggle, and every synced group's mapping."""
        return self._org

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> SqliteStore:  # noqa: PYI034 -- Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with suppress(AttributeError, sqlite3.Error):  # half-built, or closed already
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])

    def load(self) -> Snapshot:
        """The current state: the cached one while the file's version has not moved."""
        with self._lock:
            version = self._version()
            if self._cache is not None and self._cache.version == version:
                return self._cache
            self._db.execute("BEGIN")
            try:
                snapshot = Snapshot(self._read(), self._version())
            finally:
                self._db.execute("COMMIT")
            self._cache = snapshot
            return snapshot

    def _read(self) -> Directory:
        db = self._db
        manual: dict[str, list[Grant]] = {}
        for uid, team, role in db.execute("SELECT user_id, team, role FROM manual"):
            manual.setdefault(uid, []).append(Grant(team, Role(role)))
        groups: dict[str, set[str]] = {}
        members: dict[str, list[dict[str, str | None]]] = {}
        for gid, uid, display in db.execute(
            "SELECT group_id, user_id, display FROM members ORDER BY group_id, user_id"
        ):
            groups.setdefault(uid, set()).add(gid)
            members.setdefault(gid, []).append({"value": uid, "display": display})
        users, names, resources = [], {}, {}
        for uid, name, saml, scim, gone, resource in db.execute(
            "SELECT id, user_name, saml, scim, deprovisioned, resource FROM users"
        ):
            users.append(User(uid, bool(saml), bool(scim), groups.get(uid, ()), bool(gone), manual.get(uid, ())))
            if resource is None:
                names[uid] = name
            else:
                resources[uid] = json.loads(resource)
        group_resources = {
            gid: {**json.loads(resource), "members": members.get(gid, [])}
            for gid, resource in db.execute("SELECT id, resource FROM groups")
        }
        mapped = {g.id: g for g in self._org.groups}
        org = attrs.evolve(self._org, groups=[mapped.get(gid, IdpGroup(gid)) for gid in group_resources])
        return Directory(org, users, user_names=names, resources=resources, groups=group_resources)

    def commit(self, snapshot: Snapshot, outcome: Outcome) -> bool:
        """Write what the outcome touched, if the state is still ``snapshot``'s."""
        with self._lock, self._transaction():
            updated = self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'version' AND value = ?",
                (str(snapshot.version + 1), str(snapshot.version)),
            )
            if updated.rowcount != 1:
                return False
            self._write(snapshot.directory, outcome)
            org = outcome.directory.org
            if org is not snapshot.directory.org:  # settings edited, or a group synced or deleted
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'org'", (json.dumps(to_builtins(org)),))
                self._org = org
            self._cache = Snapshot(outcome.directory, snapshot.version + 1)
        return True

    def _write(self, before: Directory, outcome: Outcome) -> None:
        db, after = self._db, outcome.directory
        for gid in sorted(outcome.touched_groups):
            resource = after.group_resource(gid)
            if resource is None:
                db.execute("DELETE FROM groups WHERE id = ?", (gid,))
                db.execute("INSERT OR IGNORE INTO deleted_groups (id) VALUES (?)", (gid,))
            else:
                db.execute("INSERT OR REPLACE INTO groups (id, resource) VALUES (?, ?)", (gid, json.dumps(resource)))
        for uid in sorted(outcome.touched):
            user = after.users.get(uid)
            if user is None:
                db.execute("DELETE FROM users WHERE id = ?", (uid,))
                continue
            name = after.user_name(uid)
            resource = after.resource(uid) if user.scim else None
            db.execute(
                "INSERT INTO users (id, key, user_name, saml, scim, deprovisioned, resource)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " key = excluded.key, user_name = excluded.user_name,"
                " saml = excluded.saml, scim = excluded.scim, deprovisioned = excluded.deprovisioned,"
                " resource = excluded.resource",
                (uid, user_name_key(name), name, user.saml, user.scim, user.deprovisioned, _json(resource)),
            )
            db.execute("DELETE FROM manual WHERE user_id = ?", (uid,))
            db.executemany(
                "INSERT INTO manual (user_id, team, role) VALUES (?, ?, ?)",
                [(uid, g.team, g.role.value) for g in sorted(user.manual, key=lambda g: g.team)],
            )
            old = before.users.get(uid)
            for gid in sorted((old.groups if old is not None else frozenset()) | user.groups):
                if gid in user.groups:
                    db.execute(
                        "INSERT OR REPLACE INTO members (group_id, user_id, display) VALUES (?, ?, ?)",
                        (gid, uid, after.members(gid)[uid]),
                    )
                else:
                    db.execute("DELETE FROM members WHERE group_id = ? AND user_id = ?", (gid, uid))
        for change in outcome.changes:
            if change.after is None:
                db.execute("DELETE FROM memberships WHERE user_id = ? AND team = ?", (change.user_id, change.team))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO memberships (user_id, team, role) VALUES (?, ?, ?)",
                    (change.user_id, change.team, change.after.value),
                )

    def put_user(self, user: User, *, user_name: str | None = None) -> Resolution:
        """Save a change the app makes to one user (an admin's edit, a SAML sign-in): cost ∝ that user.

        Applied with :meth:`Directory.with_user <scim_roles.scim.Directory.with_user>`
        and committed like a SCIM request: the user's record and the changes
        to their memberships, in one transaction.

        Returns:
            The user's new resolution.

        Raises:
            InvalidUser: as ``Directory.with_user`` says; nothing is written.
        """
        while True:
            snapshot = self.load()
            before = snapshot.directory
            after = before.with_user(user, user_name=user_name)
            old = before.users.get(user.id)
            index_before, index_after = index_of(before.org), index_of(after.org)
            resolution = resolve_indexed(index_after, user)
            was = resolve_indexed(index_before, old) if old is not None else Resolution(user.id, ())
            outcome = Outcome(after, ScimResponse(200, (), b""), diff(was, resolution), PMap({user.id: resolution}))
            if self.commit(snapshot, outcome):
                return resolution

    def put_org(self, org: Org, *, max_share: float = 0.1) -> Preview:
        """Save an admin's settings edit (a mapping, the defaults, the toggle, teams) and its membership changes.

        Preview it first with ``store.load().directory.preview(org)``: this
        saves whatever it is given. Cost ∝ the users the edit affects.

        Returns:
            The preview of the saved edit: its changes are what was written.

        Raises:
            InvalidOrg: ``org`` is not an :class:`Org`.
            InvalidUser: a group it drops still has members, or a team it
                drops still has manual grants (``Directory.with_org``).
        """
        while True:
            snapshot = self.load()
            before = snapshot.directory
            after = before.with_org(org)
            result = before.preview(org, max_share=max_share)
            old_groups, new_groups = {g.id for g in before.org.groups}, {g.id for g in org.groups}
            outcome = Outcome(
                after, ScimResponse(200, (), b""), result.changes, PMap(), frozenset(old_groups ^ new_groups)
            )
            if self.commit(snapshot, outcome):
                return result

    def memberships(self) -> dict[str, dict[str, Role]]:
        """The effective access as stored: user id to team to role (what the app reads)."""
        with self._lock:
            out: dict[str, dict[str, Role]] = {}
            for uid, team, role in self._db.execute("SELECT user_id, team, role FROM memberships ORDER BY 1, 2"):
                out.setdefault(uid, {})[team] = Role(role)
            return out


def _json(value: Mapping[str, object] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)
