"""Fuzz targets: every entry point that takes outside data, fed generated garbage and near-misses.

Only the library's typed errors may escape; the command line exits 0, 1 or 2
with no traceback. The ``ci`` profile runs a few hundred cases per target;
``HYPOTHESIS_PROFILE=fuzz`` runs many more (docs/verification.md records a
30-minute run).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_roles import ScimRolesError, load_org, load_user, load_users
from scim_roles.io import NoClaimedDomains

from helpers import AFTER, ORG, USERS, mutated, run_module, values

ORG_DOC = json.loads(Path(ORG).read_text(encoding="utf-8"))
USERS_DOC = json.loads(Path(USERS).read_text(encoding="utf-8"))
CASES = settings().max_examples  # the profile's count: 100 in CI, many more under `fuzz`


@given(st.one_of(values(), mutated(ORG_DOC)))
def test_fuzz_load_org(data: Any) -> None:
    """load_org: an Org, or a ScimRolesError; nothing else (a document without domains warns, as it should)."""
    with contextlib.suppress(ScimRolesError), warnings.catch_warnings():
        warnings.simplefilter("ignore", NoClaimedDomains)
        load_org(data)


@given(st.one_of(values(), mutated(USERS_DOC)), st.booleans())
def test_fuzz_load_users(data: Any, with_org: bool) -> None:  # noqa: FBT001
    """load_users and load_user: users, or a ScimRolesError; nothing else."""
    org = load_org(ORG_DOC) if with_org else None
    for load in (load_users, load_user):
        with contextlib.suppress(ScimRolesError):
            load(data, org)


def document_bytes() -> st.SearchStrategy[bytes]:
    """What a file may hold: mutated documents, garbage values, broken JSON, bytes that are not UTF-8."""
    return st.one_of(
        st.builds(lambda d: json.dumps(d).encode(), st.one_of(mutated(ORG_DOC), mutated(USERS_DOC), values())),
        st.builds(lambda d, cut: json.dumps(d).encode()[:cut], mutated(USERS_DOC), st.integers(0, 400)),
        st.binary(max_size=64),
        st.sampled_from([b"[" * 5000, b"\xef\xbb\xbf{}", b'{"a": 1, "a": 2}', b"\x00", b""]),
    )


COMMANDS = [
    ("check", "{doc}"),
    ("check", ORG, "{doc}"),
    ("explain", ORG, "{doc}"),
    ("explain", "{doc}", USERS, "--json"),
    ("preview", ORG, "{doc}", USERS, "--strict"),
    ("preview", ORG, AFTER, "{doc}", "--json"),
]


@settings(max_examples=max(10, CASES // 20), suppress_health_check=[HealthCheck.too_slow])
@given(document_bytes(), st.sampled_from(COMMANDS), st.sampled_from([".json", ".toml"]))
def test_fuzz_cli_commands(content: bytes, command: tuple[str, ...], suffix: str) -> None:
    """Every command, in a real subprocess, on a generated file: exit 0, 1 or 2, and never a traceback."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"doc{suffix}"
        path.write_bytes(content)
        args = [part.replace("{doc}", str(path)) for part in command]
        done = run_module(*args, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert done.returncode in (0, 1, 2), done.stderr
    assert b"Traceback" not in done.stderr
    if done.returncode:
        assert done.stderr.startswith(b"scim-roles") or b"usage:" in done.stderr
