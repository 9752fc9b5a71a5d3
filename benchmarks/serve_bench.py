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
            if status not in (200, 204):
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
            return "PATCH", f"/Users/{ids[i % len(ids)]}", {"Operations": [op]}

        def add_member(_: Client, i: int) -> tuple[str, str, object]:
            op = {"op": "add", "path": "members", "value": [{"value": ids[i % len(ids)]}]}
            return "PATCH", "/Groups/okta-everyone", {"Operations": [op]}

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


def main() -> None:
    """For each backend, process count and client count: serve, provision, time; print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=numbers, default=[1, 2, 4, 8])
    parser.add_argument("--processes", type=numbers, default=[1, 2, 4])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server: each run gets a new database on it")
    args = parser.parse_args()
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
