"""Throughput and latency of `scim-roles serve`: a user PATCH and a group member add, over real HTTP.

Usage: ``python benchmarks/serve_bench.py [--users 300] [--requests 300] [--clients 1,2,4,8]
[--processes 1,2,4] [--postgres URL]`` (with the ``serve`` extra; ``postgres`` for PostgreSQL).

For each backend (SQLite; PostgreSQL too with ``--postgres``, a server URL:
each run gets a new database on it), each number of server processes and
each number of clients: a fresh state with one tenant, that many
``scim-roles serve`` processes on it, the users provisioned, then each kind
of request timed: requests per second, and p50/p99 latency as each client
sees it. Client ``n`` talks to process ``n mod P`` (as a load balancer
would spread them). The clients, the servers and the database share the
machine. Prints a table; asserts nothing. Every write is committed before
it is answered (SQLite: ``synchronous=FULL``).

``--peer``: instead, one ``scim-roles serve`` (SQLite, or PostgreSQL with
``--postgres``) and scim2-server's own ASGI app (``peer_apps.py``: in
memory, not durable; ``pip install scim2-server`` in this environment)
under the same uvicorn settings, the same keep-alive client, each workload
run on both in turn for ``--rounds`` rounds (best round kept): provisioning
(``POST /Users``), a user PATCH with 1 and with 8 clients, a filtered read,
a group member add; then, on ``scim-roles serve`` alone, a member added and
removed in turn on a group of 10 and on one of 1,000 (the same cost is the
goal). Beside them, the ceilings: a bare ASGI answer under the
same uvicorn, and durable SQLite commits one after another in this process.
Prints each workload's requests/s, p50 and p99 on both and their ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ORG = Path(__file__).resolve().parent.parent / "examples" / "org.json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"  # every PATCH body names it, as the IdPs send it


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    """One keep-alive HTTP connection, as an IdP's provisioning worker holds one."""

    def __init__(self, port: int, token: str, base: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    def send(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """One request on the kept connection: the status and the body."""
        data = None if body is None else json.dumps(body)
        self.connection.request(method, self.base + path, body=data, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def timed(clients: list[Client], count: int, make: Callable[[Client, int], tuple[str, str, object]]) -> list[float]:
    """Send ``count`` requests spread over the clients at once; each request's latency, in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()

    def work(client: Client, start: int) -> None:
        for i in range(start, count, len(clients)):
            method, path, body = make(client, i)
            began = time.perf_counter()
            status, raw = client.send(method, path, body)
            took = time.perf_counter() - began
            if status not in (200, 201, 204):
                msg = f"{method} {path}: {status} {raw[:200]!r}"
                raise RuntimeError(msg)
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=work, args=(c, n)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def numbers(text: str) -> list[int]:
    """``1,2,4`` as a list of whole numbers."""
    return [int(part) for part in text.split(",")]


def new_postgres_database(server: str, name: str) -> str:
    """A new, empty database on the server: its URL."""
    import psycopg  # noqa: PLC0415 -- the postgres extra
    import sqlalchemy as sa  # noqa: PLC0415

    url = sa.make_url(server)
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def run(db: str, processes: int, clients: int, args: argparse.Namespace, folder: Path) -> list[str]:
    """One state, ``processes`` servers, ``clients`` clients: the table's rows."""
    command = [sys.executable, "-m", "scim_roles"]
    added = subprocess.run(  # noqa: S603 -- this project's own command
        [*command, "tenants", "add", "bench", str(ORG), "--db", db, "--json"], check=True, capture_output=True
    )
    token = json.loads(added.stdout)["token"]
    ports = [free_port() for _ in range(processes)]
    env = {k: v for k, v in os.environ.items() if k != "SCIM_ROLES_TOKEN"}
    servers = [
        subprocess.Popen(  # noqa: S603
            [*command, "serve", "--db", db, "--port", str(port)],
            env=env,
            stderr=(folder / f"serve-{port}.log").open("wb"),
        )
        for port in ports
    ]
    try:
        for port in ports:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        workers = [Client(ports[n % processes], token, "/scim/v2/bench") for n in range(clients)]
        ids = []
        for i in range(args.users):
            status, raw = workers[0].send("POST", "/Users", {"userName": f"user{i}@example.com"})
            assert status == 201, raw  # noqa: S101 -- a benchmark's sanity check
            ids.append(json.loads(raw)["id"])

        def patch_user(_: Client, i: int) -> tuple[str, str, object]:
            op = {"op": "replace", "path": "displayName", "value": f"name {i}"}
            return "PATCH", f"/Users/{ids[i % len(ids)]}", {"schemas": [PATCH_OP], "Operations": [op]}

        def add_member(_: Client, i: int) -> tuple[str, str, object]:
            op = {"op": "add", "path": "members", "value": [{"value": ids[i % len(ids)]}]}
            return "PATCH", "/Groups/okta-everyone", {"schemas": [PATCH_OP], "Operations": [op]}

        rows = []
        for label, make in (("user PATCH", patch_user), ("member add", add_member)):
            began = time.perf_counter()
            latencies = timed(workers, args.requests, make)
            wall = time.perf_counter() - began
            cuts = statistics.quantiles(latencies, n=100)
            rows.append(
                f"| {label} | {processes} | {clients} | {len(latencies) / wall:.0f} | {cuts[49] * 1e3:.1f} ms"
                f" | {cuts[98] * 1e3:.1f} ms |"
            )
        return rows
    finally:
        for server in servers:
            server.kill()
            server.wait()


PEER_WORKLOADS = ("provisioning, POST /Users", "user PATCH, 1 client", "user PATCH, 8 clients", "filtered read",
                  "group member add")  # fmt: skip
HERE = Path(__file__).resolve().parent


def listening(port: int) -> bool:
    """Whether something listens on the port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def up(port: int) -> None:
    """Until something listens on the port."""
    for _ in range(300):
        if listening(port):
            return
        time.sleep(0.05)
    msg = f"nothing listens on port {port}"
    raise RuntimeError(msg)


def uvicorn_app(factory: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``peer_apps.<factory>`` under uvicorn with the settings ``scim-roles serve`` uses."""
    command = [sys.executable, "-m", "uvicorn", f"peer_apps:{factory}", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(command, cwd=HERE, env=env, stderr=log.open("wb"))  # noqa: S603


class Target:
    """A server under test: its clients, a group and users to work on."""

    def __init__(self, name: str, port: int, token: str, base: str) -> None:
        self.name, self.port, self.token, self.base = name, port, token, base
        self.ids: list[str] = []
        self.group = ""

    def clients(self, count: int) -> list[Client]:
        """``count`` new keep-alive connections to it."""
        return [Client(self.port, self.token, self.base) for _ in range(count)]

    def post_user(self, client: Client, name: str) -> str:
        """Provision a user: its id."""
        status, raw = client.send("POST", "/Users", user_body(name))
        if status != 201:
            msg = f"{self.name}: POST /Users: {status} {raw[:200]!r}"
            raise RuntimeError(msg)
        return str(json.loads(raw)["id"])


def user_body(name: str) -> dict[str, object]:
    """A user as Okta and Entra ID provision one: userName, name, a primary work email."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "name": {"givenName": "Given", "familyName": "Family"},
        "emails": [{"value": name, "type": "work", "primary": True}],
        "active": True,
    }


def workload(target: Target, kind: str, round_: int) -> tuple[int, Callable[[Client, int], tuple[str, str, object]]]:
    """How many clients a workload uses, and its request maker."""
    ids = target.ids
    if kind.startswith("provisioning"):
        return 1, lambda _, i: ("POST", "/Users", user_body(f"r{round_}-new{i}@example.com"))
    if kind.startswith("user PATCH"):
        op = {"op": "replace", "path": "displayName"}
        clients = 8 if kind.endswith("8 clients") else 1
        return clients, lambda _, i: ("PATCH", f"/Users/{ids[i % len(ids)]}", {
            "schemas": [PATCH_OP], "Operations": [{**op, "value": f"name {round_} {i}"}]})  # fmt: skip
    if kind == "filtered read":
        return 1, lambda _, i: ("GET", f"/Users?filter=userName%20eq%20%22user{i % len(ids)}%40example.com%22", None)
    add = {"op": "add", "path": "members"}
    return 1, lambda _, i: ("PATCH", f"/Groups/{target.group}", {
        "schemas": [PATCH_OP], "Operations": [{**add, "value": [{"value": ids[i % len(ids)]}]}]})  # fmt: skip


def member_add_by_size(target: Target, args: argparse.Namespace) -> tuple[float, float]:
    """Requests/s of a member add or remove (in turn) on a group of 10 and on one of 1,000, best of the rounds."""
    client = target.clients(1)[0]
    more = [target.post_user(client, f"flat{i}@example.com") for i in range(1_010 - len(target.ids))]
    people = (target.ids + more)[:1_010]
    spare = people[-10:]  # added and removed in turn; the groups' own members stay
    groups = []
    for size in (10, 1_000):
        _, raw = client.send("POST", "/Groups", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": f"flat {size}"})  # fmt: skip
        gid = str(json.loads(raw)["id"])
        for start in range(0, size, 200):
            listed = [{"value": uid} for uid in people[start : min(size, start + 200)]]
            client.send("PATCH", f"/Groups/{gid}", {
                "schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": listed}]})  # fmt: skip
        groups.append(gid)

    def toggle(gid: str) -> Callable[[Client, int], tuple[str, str, object]]:
        def make(_: Client, i: int) -> tuple[str, str, object]:
            op = {"op": "add" if i % 2 == 0 else "remove", "path": "members", "value": [{"value": spare[i // 2 % 10]}]}
            return "PATCH", f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [op]}

        return make

    best = [0.0, 0.0]
    for _ in range(args.rounds):
        for n, gid in enumerate(groups):
            began = time.perf_counter()
            done = len(timed(target.clients(1), args.requests, toggle(gid)))
            best[n] = max(best[n], done / (time.perf_counter() - began))
    return best[0], best[1]


def durable_commits(folder: Path, seconds: float = 2.0) -> float:
    """SQLite commits a second, one after another, in WAL mode with ``synchronous=FULL``: one row each."""
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(folder / "ceiling.db", isolation_level=None) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (n INTEGER)")
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?)", (count,))
            db.execute("COMMIT")
            count += 1
        return count / (time.perf_counter() - began)


def peer(args: argparse.Namespace, folder: Path) -> None:
    """``scim-roles serve`` beside scim2-server's ASGI app: every workload, interleaved, with the ceilings."""
    env = {k: v for k, v in os.environ.items() if k != "SCIM_ROLES_TOKEN"}
    db = str(folder / "peer.db") if not args.postgres else new_postgres_database(args.postgres, "bench_peer")
    command = [sys.executable, "-m", "scim_roles"]
    added = subprocess.run(  # noqa: S603 -- this project's own command
        [*command, "tenants", "add", "bench", str(ORG), "--db", db, "--json"], check=True, capture_output=True
    )
    ports = [free_port() for _ in range(3)]
    peer_token = "peer-" + os.urandom(16).hex()
    servers = [
        subprocess.Popen(  # noqa: S603
            [*command, "serve", "--db", db, "--port", str(ports[0])], env=env, stderr=(folder / "ours.log").open("wb")
        ),
        uvicorn_app("scim2_server", ports[1], {**env, "PEER_TOKEN": peer_token}, folder / "peer.log"),
        uvicorn_app("bare", ports[2], env, folder / "bare.log"),
    ]
    try:
        for port in ports:
            up(port)
        ours = Target("scim_roles", ports[0], json.loads(added.stdout)["token"], "/scim/v2/bench")
        theirs = Target("scim2-server", ports[1], peer_token, "/v2")
        for target in (ours, theirs):
            client = target.clients(1)[0]
            target.ids = [target.post_user(client, f"user{i}@example.com") for i in range(args.users)]
        ours.group = "okta-everyone"  # a group of the example org, synced from the start
        _, raw = theirs.clients(1)[0].send("POST", "/Groups", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "everyone"})  # fmt: skip
        theirs.group = json.loads(raw)["id"]
        best: dict[tuple[str, str], tuple[float, list[float]]] = {}
        for round_ in range(args.rounds):
            for kind in PEER_WORKLOADS:
                for target in (ours, theirs) if round_ % 2 == 0 else (theirs, ours):
                    count, make = workload(target, kind, round_)
                    clients = target.clients(count)
                    began = time.perf_counter()
                    latencies = timed(clients, args.requests, make)
                    rate = len(latencies) / (time.perf_counter() - began)
                    if rate > best.get((target.name, kind), (0.0, []))[0]:
                        best[target.name, kind] = (rate, latencies)
        flat = member_add_by_size(ours, args)
        bare = Target("bare", ports[2], "x", "")
        bare_rate = max(
            args.requests / sum(timed(bare.clients(1), args.requests, lambda _, __: ("GET", "/", None)))
            for _ in range(args.rounds)
        )
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"\n| workload ({backend}) | scim_roles req/s | p50 | p99 | scim2-server req/s | p50 | p99 | ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for kind in PEER_WORKLOADS:
            cells = []
            for name in ("scim_roles", "scim2-server"):
                rate, latencies = best[name, kind]
                cuts = statistics.quantiles(latencies, n=100)
                cells += [f"{rate:,.0f}", f"{cuts[49] * 1e3:.1f} ms", f"{cuts[98] * 1e3:.1f} ms"]
            ratio = best["scim_roles", kind][0] / best["scim2-server", kind][0]
            print(f"| {kind} | {' | '.join(cells)} | {ratio:.2f} |")
        print(f"\nscim_roles, a member added to and removed from a group of 10 / of 1,000 (best of {args.rounds}):"
              f" {flat[0]:,.0f} / {flat[1]:,.0f} req/s, ratio {flat[1] / flat[0]:.2f} (goal: about 1)")  # fmt: skip
        print(f"\nceilings: a bare ASGI answer under the same uvicorn, 1 client: {bare_rate:,.0f} req/s;"
              f" durable SQLite commits one after another: {durable_commits(folder):,.0f}/s")  # fmt: skip
    finally:
        for server in servers:
            server.kill()
            server.wait()


def main() -> None:
    """For each backend, process count and client count: serve, provision, time; print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=numbers, default=[1, 2, 4, 8])
    parser.add_argument("--processes", type=numbers, default=[1, 2, 4])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server: each run gets a new database on it")
    parser.add_argument("--peer", action="store_true", help="beside scim2-server's ASGI app, with the ceilings")
    parser.add_argument("--rounds", type=int, default=3, help="--peer: rounds of every workload (the best is kept)")
    args = parser.parse_args()
    if args.peer:
        with tempfile.TemporaryDirectory() as folder:
            print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {args.users} users,"
                  f" {args.requests} requests a workload and round; clients and servers on this machine")  # fmt: skip
            peer(args, Path(folder))
        return
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {args.users} users, {args.requests}"
          " requests of each kind; clients, servers and database on this machine")  # fmt: skip
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            print(
                f"\n{backend}\n\n| request | processes | clients | req/s | p50 | p99 |\n|---|---:|---:|---:|---:|---:|"
            )
            for processes in args.processes:
                for clients in args.clients:
                    name = f"bench_{processes}_{clients}"
                    if backend == "sqlite":
                        db = str(Path(folder) / f"{name}.db")
                    else:
                        db = new_postgres_database(args.postgres, name)
                    for row in run(db, processes, clients, args, Path(folder)):
                        print(row, flush=True)


if __name__ == "__main__":
    main()
