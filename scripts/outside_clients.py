"""Run the outside SCIM conformance clients against a running `scim-roles serve`.

Usage, with the clients' own virtual environment (they are not ours, and pull
pydantic and an HTTP client; .ci/run sets it up)::

    SCIM_ROLES_TOKEN=... .venv-clients/bin/python scripts/outside_clients.py http://127.0.0.1:8000/scim/v2

Runs scim2-tester's ``check_server`` under several random seeds and
scim-sanity's ``probe``. Every check must pass, except the refusals the rules (docs/scim.md)
asks for, listed in ``REFUSED`` with their rule (and in docs/scim.md). Prints
each failure and a closing count; exits 1 on any unexpected failure, or if a
listed refusal no longer happens (the list must stay true).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

SEEDS = (1, 2, 3, 4, 5)

# (client, check, text in its reason or name): why the rules refuse it.
REFUSED = {
    ("scim2-tester", "check_remove_attribute", "'active'"): (
        "S5/S6/R10: removing `active` from a deactivated user does not reactivate it; it still reads active false"
    ),
    ("scim-sanity", "PATCH /Groups/{id} add member", "add member"): (
        "S9: a member must be a SCIM user of the org; an unknown id is 400 invalidValue"
    ),
}


def refused(client: str, check: str, text: str) -> str | None:
    """The rule a failing check is refused under, if it is one the rules ask for."""
    for (who, name, mark), why in REFUSED.items():
        if who == client and name == check and mark in text:
            return why
    return None


def run_tester(base: str, token: str) -> tuple[int, list[str], set[str]]:
    """scim2-tester under each seed: (checks passed, unexpected failures, refusals seen)."""
    passed, failures, seen = 0, list[str](), set[str]()
    for seed in SEEDS:
        random.seed(seed)
        client = SyncSCIMClient(Client(base_url=base, headers={"Authorization": f"Bearer {token}"}))
        for result in check_server(client):
            if result.status in (Status.SUCCESS, Status.SKIPPED):
                passed += 1
                continue
            text = f"{result.title} {result.reason}"
            why = refused("scim2-tester", result.title, text)
            if why is None:
                failures.append(f"scim2-tester seed {seed}: {result.status.name} {result.resource_type} {text}")
            else:
                seen.add(why)
    return passed, failures, seen


def run_sanity(base: str, token: str) -> tuple[int, list[str], set[str]]:
    """scim-sanity's probe: (checks passed, unexpected failures, refusals seen)."""
    command = Path(sys.executable).with_name("scim-sanity")
    done = subprocess.run(
        [str(command), "probe", base, "--token", token, "--strict", "--i-accept-side-effects", "--json-output"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = json.loads(done.stdout)
    passed, failures, seen = 0, list[str](), set[str]()
    for result in report["results"]:
        if result["status"] not in ("fail", "error"):
            passed += 1
            continue
        text = f"{result['name']} {result.get('message', '')}"
        why = refused("scim-sanity", result["name"], text)
        if why is None:
            failures.append(f"scim-sanity: {result['status']} {text}")
        else:
            seen.add(why)
    return passed, failures, seen


def main() -> int:
    """Run both clients; print failures and the count."""
    base, token = sys.argv[1], os.environ["SCIM_ROLES_TOKEN"]
    passed, failures, seen = 0, list[str](), set[str]()
    for run in (run_tester, run_sanity):
        p, f, s = run(base, token)
        passed, failures, seen = passed + p, failures + f, seen | s
    for why in sorted(seen):
        print(f"refused on purpose: {why}")
    for line in failures:
        print(f"FAILED {line}")
    for why in set(REFUSED.values()) - seen:
        print(f"FAILED the listed refusal did not happen: {why}")
        failures.append(why)
    print(f"{len(seen)} kinds of check refused on purpose, as the rules ask (docs/scim.md)")
    print(f"clients: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
