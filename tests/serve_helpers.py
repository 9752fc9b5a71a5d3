"""Real servers on localhost for the tests: `scim-roles serve` in a subprocess, or the ASGI app in a thread."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import uvicorn

from scim_roles import Role, User, to_builtins
from scim_roles.asgi import ScimApp
from scim_roles.scim import Outcome, ScimRequest, handle
from scim_roles.store import SqliteStore, SqlStore

from helpers import ENG, OPS, article_org
from scim_helpers import START, patch

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    base: str, method: str, path: str, body: Any = None, *, token: str = TOKEN, timeout: float = 30
) -> tuple[int, Any]:
    """One HTTP request; the status and the decoded JSON body (or None)."""
    data = None if body is None else json.dumps(body).encode()
    path, _, query = path.partition("?")
    url = base + path + ("?" + quote(query, safe="=&%+") if query else "")
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 -- localhost, http
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def wait_until_up(base: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            request(base, "GET", "/ServiceProviderConfig", timeout=1)
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
        else:
            return
    msg = f"no server at {base}"
    raise RuntimeError(msg)


@contextmanager
def serve_process(org: Path, db: Path, port: int, *, token: str = TOKEN) -> Iterator[subprocess.Popen[bytes]]:
    """`scim-roles serve` as a subprocess, stopped (killed) on the way out."""
    env = {**os.environ, "SCIM_ROLES_TOKEN": token}
    log = db.with_name(db.name + f".{port}.log").open("wb")  # a file: a full pipe would stall the server
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_roles", "serve", str(org), "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/scim/v2")
        yield process
    finally:
        process.kill()
        process.wait()
        log.close()


@contextmanager
def serve_thread(app: ScimApp) -> Iterator[str]:
    """The ASGI app behind a real uvicorn server in a thread; yields its base URL."""
    port = free_port()

    async def forward(scope: Any, receive: Any, send: Any) -> None:
        # uvicorn tells an ASGI app from an app factory by inspecting it; a plain coroutine function is
        # always an app, whatever wraps the app's own __call__ (mutation testing does).
        await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(forward, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def send(store: SqliteStore, method: str, path: str, body: Any = None, new_id: str = "n", query: str = "") -> Outcome:
    """One SCIM request handled and committed to the store, as the ASGI app does it."""
    snapshot = store.load()
    out = handle(snapshot.directory, ScimRequest(method, path, body, new_id=new_id, query=query, now=START))
    if out.directory is not snapshot.directory:
        assert store.commit(snapshot, out)
    return out


@contextmanager
def behind_the_store(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A plain connection to a state file, as another writer would use it: committed and closed on the way out."""
    with closing(sqlite3.connect(path)) as db, db:
        yield db


@contextmanager
def held_elsewhere(hold: AbstractContextManager[object]) -> Iterator[threading.Event]:
    """``hold`` (a lock, a write lock of SQLite's) held by a thread of its own, from before the block until the
    event it gives is set, at the latest when the block ends."""
    held, release = threading.Event(), threading.Event()

    def run() -> None:
        with hold:
            held.set()
            release.wait(30)

    holding = threading.Thread(target=run)
    holding.start()
    held.wait(10)
    try:
        yield release
    finally:
        release.set()
        holding.join()


@contextmanager
def _write_lock(path: Path | str) -> Iterator[None]:
    with behind_the_store(path) as holder:
        holder.execute("BEGIN IMMEDIATE")
        yield


def another_writer(path: Path | str) -> AbstractContextManager[threading.Event]:
    """Another process's write, as SQLite sees it: a connection holding the write lock (:func:`held_elsewhere`)."""
    return held_elsewhere(_write_lock(path))


def kill_9_during(
    process: subprocess.Popen[bytes], burst: Callable[[threading.Event], None], rng: random.Random
) -> None:
    """Run ``burst(stop)`` in a thread, kill the server with SIGKILL 0.3 to 1.3 s in, then stop and join it."""
    stop = threading.Event()
    thread = threading.Thread(target=burst, args=(stop,))
    thread.start()
    time.sleep(0.3 + rng.random())
    os.kill(process.pid, signal.SIGKILL)
    stop.set()
    thread.join(timeout=30)


class GroupWrites:
    """Member adds, removes and group renames sent at random to a server, and what it acknowledged.

    ``members`` and ``names`` fold every acknowledged write; ``inflight``
    holds, by group, the write sent to it and not (yet) answered, which a
    server killed under it may or may not have made durable. Several
    clients may write at once (:meth:`bursts`), each to groups of its own:
    a group has at most one write in flight.
    """

    def __init__(self, gids: list[str], rng: random.Random) -> None:
        self.members: dict[str, set[str]] = {gid: set() for gid in gids}
        self.names = {gid: gid for gid in gids}
        self.inflight: dict[str, tuple[str, str]] = {}
        self.rng = rng

    def burst(
        self,
        url: str,
        users: list[str],
        tag: str,
        *,
        token: str = TOKEN,
        gids: list[str] | None = None,
        rng: random.Random | None = None,
    ) -> Callable[[threading.Event], None]:
        """What :func:`kill_9_during` runs: writes to ``gids`` (all groups) until stopped or the server dies."""
        mine, draw = sorted(gids or self.members), rng or self.rng

        def run(stop: threading.Event) -> None:
            for i in range(100_000):
                if stop.is_set():
                    return
                gid = draw.choice(mine)
                kind = draw.choice(["add", "remove", "rename"])
                value = f"{gid} {tag}.{i}" if kind == "rename" else draw.choice(users)
                body = patch(
                    {"op": "replace", "value": {"id": gid, "displayName": value}}
                    if kind == "rename"
                    else {"op": kind, "path": "members", "value": [{"value": value}]}
                )
                self.inflight[gid] = (kind, value)
                try:
                    status, _ = request(url, "PATCH", f"/Groups/{gid}", body, token=token, timeout=5)
                except (OSError, http.client.HTTPException):
                    return  # died under this request: not acknowledged
                assert status == 200
                self._fold(gid, *self.inflight.pop(gid))

        return run

    def bursts(
        self, url: str, users: list[str], tag: str, clients: int, *, token: str = TOKEN
    ) -> Callable[[threading.Event], None]:
        """``clients`` bursts at once, each in a thread of its own and writing to groups of its own."""
        groups = sorted(self.members)
        runs = [
            self.burst(
                url,
                users,
                f"{tag}.{n}",
                token=token,
                gids=groups[n::clients],
                rng=random.Random(self.rng.random()),  # noqa: S311
            )
            for n in range(clients)
        ]

        def run(stop: threading.Event) -> None:
            threads = [threading.Thread(target=one, args=(stop,)) for one in runs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        return run

    def check(self, directory: Any) -> None:
        """Every acknowledged write is in the state read back (and each one in flight, if it is there)."""
        got = {gid: set(directory.members(gid)) for gid in self.members}
        got_names = {gid: directory.group_resource(gid)["displayName"] for gid in self.members}
        for gid in self.members:
            if (got[gid], got_names[gid]) != (self.members[gid], self.names[gid]):  # made durable, not answered
                assert gid in self.inflight, f"an acknowledged write to {gid} is missing"
                self._fold(gid, *self.inflight[gid])
        assert (got, got_names) == (self.members, self.names)
        self.inflight.clear()  # those not made durable never will be

    def _fold(self, gid: str, kind: str, value: str) -> None:
        if kind == "add":
            self.members[gid].add(value)
        elif kind == "remove":
            self.members[gid].discard(value)
        else:
            self.names[gid] = value


def kill_settings_edits(db: str, tmp_path: Path, users: int, *, tenant: str | None = None) -> None:
    """`scim-roles edit --apply` of a default team over ``users`` users, killed with SIGKILL at six moments
    from before its work to twice the time it needs, each time editing towards the settings not stored: the
    state has the settings before or after, with exactly the memberships they give (check clean), never part
    of the edit; some kills came before the commit, some after."""
    documents = {}
    for team in (ENG, OPS):
        documents[team] = tmp_path / f"{team}.json"
        org = attrs.evolve(article_org(), default_teams=[team])
        documents[team].write_text(json.dumps(to_builtins(org)), encoding="utf-8")
    with SqlStore(db, article_org(), tenant=tenant) as store:
        for i in range(users):
            store.put_user(User(f"u{i}", saml=True, email=f"u{i}@example.com"))
    where = ["--db", db] + (["--tenant", tenant] if tenant is not None else [])

    def edit(team: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "scim_roles", "edit", *where, str(documents[team]), "--apply"]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = time.monotonic()  # one edit left to finish: how long an edit takes on this machine, now
    assert edit(OPS).wait(timeout=120) == 0
    took = time.monotonic() - started
    seen = set()
    for share in (0.1, 0.4, 0.7, 0.85, 1.0, 2.0):  # kills before the commit, around it and after it
        with SqlStore(db, tenant=tenant) as before:
            (stored,) = before.org.default_teams
        target = OPS if stored == ENG else ENG
        process = edit(target)
        time.sleep(share * took)
        process.kill()
        process.wait()
        with SqlStore(db, tenant=tenant) as after:
            assert after.check() == ()
            (now,) = after.org.default_teams
            assert now in (stored, target)
            assert after.memberships() == {f"u{i}": {now: Role.MEMBER} for i in range(users)}
        seen.add(now == target)
    assert seen == {True, False}  # some kills came before the commit, some after
