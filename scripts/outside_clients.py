"""Run the outside SCIM conformance clients against a running `scim-roles serve`.

Usage, with the clients' own virtual environment (they are not ours, and pull
pydantic and an HTTP client; .ci/run sets it up)::

    SCIM_ROLES_TOKEN=... .venv-clients/bin/python scripts/outside_clients.py http://127.0.0.1:8000/scim/v2

Runs scim2-tester's ``check_server`` under several random seeds and
scim-sanity's ``probe``. Every check must pass, except the refusals the rules (docs/scim.md)
asks for, listed in ``REFUSED`` with their rule (and in docs/scim.md). Prints
each failure and a closing count; exits 1 on any unexpected failure, or if a
listed refusal no longer happens (the list must stay true).

The served org claims ``example.com`` (``CLAIMED``). scim2-tester writes every
user with emails ``<uuid>@<uuid>.com``, outside any claimed domain: its first
pass, as published, meets the S13 refusal on every user write (listed in
``REFUSED``); a second pass runs the same checks with its generated emails in
the claimed domain (``<uuid>@example.com``, the only change), so that every
user write it makes is covered and must pass. scim-sanity takes the domain
itself (``--domain``).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server, filling
from scim2_tester.checkers import patch_add, patch_replace

SEEDS = (1, 2, 3, 4, 5)
CLAIMED = "example.com"  # the domain examples/org.json claims (R14, S13)

# (client, check, text in its reason or name): why the rules refuse it.
REFUSED = {
    ("scim2-tester", "check_remove_attribute", "'active'"): (
        "S5/S6/R10: removing `active` from a deactivated user does not reactivate it; it still reads active false"
    ),
    ("scim-sanity", "PATCH /Groups/{id} add member", "add member"): (
        "S9: a member must be a SCIM user of the org; an unknown id is 400 invalidValue"
    ),
    # scim2-tester as published: every user it writes has an email outside the claimed domains.
    ("scim2-tester (emails as published)", "*", "is not claimed (S13)"): (
        "S13: a user's email outside the claimed domains is 400 invalidValue (scim2-tester's <uuid>@<uuid>.com)"
    ),
}


def refused(client: str, check: str, text: str) -> str | None:
    """The rule a failing check is refused under, if it is one the rules ask for."""
    for (who, name, mark), why in REFUSED.items():
        if who == client and name in (check, "*") and mark in text:
            return why
    return None


def run_tester(base: str, token: str) -> tuple[int, list[str], set[str]]:
    """scim2-tester under each seed, as published and with claimed emails: (passed, unexpected failures, refusals)."""
    passed, failures, seen = 0, list[str](), set[str]()
    for name, claimed in (("scim2-tester (emails as published)", False), ("scim2-tester", True)):
        for seed in SEEDS:
            random.seed(seed)
            client = SyncSCIMClient(Client(base_url=base, headers={"Authorization": f"Bearer {token}"}))
            with _emails_in(CLAIMED if claimed else None):
                results = list(check_server(client))
            for result in results:
                if result.status in (Status.SUCCESS, Status.SKIPPED):
                    passed += 1
                    continue
                text = f"{result.title} {result.reason}"
                why = refused(name, result.title, text)
                if why is None:
                    failures.append(f"{name} seed {seed}: {result.status.name} {result.resource_type} {text}")
                else:
                    seen.add(why)
    return passed, failures, seen


@contextmanager
def _emails_in(domain: str | None) -> Iterator[None]:
    """scim2-tester's generated emails in ``domain`` (``<uuid>@domain``), everything else as it draws it."""
    if domain is None:
        yield
        return
    draw = filling.generate_random_value

    def claimed(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 -- whatever scim2-tester draws
        value = draw(*args, **kwargs)
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f-]{36}@[0-9a-f-]{36}\.com", value):
            return f"{value.partition('@')[0]}@{domain}"
        return value

    drawers = (filling, patch_add, patch_replace)  # each imported the function by name
    for module in drawers:
        module.generate_random_value = claimed
    try:
        yield
    finally:
        for module in drawers:
            module.generate_random_value = draw


def run_sanity(base: str, token: str) -> tuple[int, list[str], set[str]]:
    """scim-sanity's probe: (checks passed, unexpected failures, refusals seen)."""
    command = Path(sys.executable).with_name("scim-sanity")
    done = subprocess.run(
        [
            str(command),
            "probe",
            base,
            "--token",
            token,
            "--user-domain",
            CLAIMED,
            "--strict",
            "--i-accept-side-effects",
            "--json-output",
        ],
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
