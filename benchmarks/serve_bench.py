"""Throughput and latency of `scim-roles serve`: a user PATCH and a group member add, over real HTTP.

Usage: ``python benchmarks/serve_bench.py [--users 1000] [--requests 500] [--clients 1]``
(with the ``serve`` extra). Starts the server on localhost with a fresh SQLite
state, provisions the users, then times each kind of request: requests per
second, and p50/p99 latency as each client sees it. Prints a table; asserts
nothing. Every write is committed (``synchronous=FULL``) before it is answered.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
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

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    def send(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """One request on the kept connection: the status and the body."""
        data = None if body is None else json.dumps(body)
        self.connection.request(method, "/scim/v2" + path, body=data, headers=self.headers)
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


def main() -> None:
    """Serve, provision, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    token, port = secrets.token_urlsafe(16), free_port()
    with tempfile.TemporaryDirectory() as folder:
        log = (Path(folder) / "serve.log").open("wb")
        server = subprocess.Popen(  # noqa: S603 -- this project's own command
            [
                sys.executable,
                "-m",
                "scim_roles",
                "serve",
                str(ORG),
                "--db",
                str(Path(folder) / "s.db"),
                "--port",
                str(port),
            ],
            env={**os.environ, "SCIM_ROLES_TOKEN": token},
            stderr=log,
        )
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            clients = [Client(port, token) for _ in range(args.clients)]
            ids = []
            began = time.perf_counter()
            for i in range(args.users):
                status, raw = clients[0].send("POST", "/Users", {"userName": f"user{i}@example.com"})
                assert status == 201, raw  # noqa: S101 -- a benchmark's sanity check
                ids.append(json.loads(raw)["id"])
            provision = time.perf_counter() - began
            print(
                f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {args.users:,} users, "
                f"{args.clients} client(s); provisioning {args.users / provision:,.0f} POST/s"
            )
            print(f"{'request':44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")

            def patch_user(_: Client, i: int) -> tuple[str, str, object]:
                op = {"op": "replace", "path": "displayName", "value": f"name {i}"}
                return "PATCH", f"/Users/{ids[i % len(ids)]}", {"Operations": [op]}

            def add_member(_: Client, i: int) -> tuple[str, str, object]:
                op = {"op": "add", "path": "members", "value": [{"value": ids[i % len(ids)]}]}
                return "PATCH", "/Groups/okta-everyone", {"Operations": [op]}

            for label, make in (
                ("PATCH /Users/{id} (displayName)", patch_user),
                ("PATCH /Groups/{id} (add a member)", add_member),
            ):
                began = time.perf_counter()
                latencies = timed(clients, args.requests, make)
                wall = time.perf_counter() - began
                cuts = statistics.quantiles(latencies, n=100)
                print(f"{label:44} {len(latencies) / wall:8.0f} {cuts[49] * 1e3:8.2f} {cuts[98] * 1e3:8.2f}")
        finally:
            server.kill()
            server.wait()
            log.close()


if __name__ == "__main__":
    main()
