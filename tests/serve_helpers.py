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
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvicorn

from scim_roles.asgi import ScimApp
from scim_roles.scim import Outcome, ScimRequest, handle
from scim_roles.store import SqliteStore

from scim_helpers import START

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
