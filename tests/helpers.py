"""What the tests share: a small org after the article's examples, the example documents, the command line
run in-process or in a real subprocess, and generated documents for fuzzing."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from hypothesis import strategies as st

from scim_roles import IdpGroup, Org, Role, Team
from scim_roles._cli import main

ENG, MKT, OPS, IT = "eng", "mkt", "ops", "it"


def article_org(*, manual_edits: bool = False, default_role: Role = Role.MEMBER) -> Org:
    """Four teams, defaults on eng; groups: leads, marketing, blank, IT admins, partly blank."""
    return Org(
        teams=[Team(ENG, "Engineering"), Team(MKT, "Marketing"), Team(OPS, "Operations"), Team(IT, "IT")],
        default_teams=[ENG],
        default_role=default_role,
        groups=[
            IdpGroup("leads", teams=[ENG], role=Role.TEAM_ADMIN),
            IdpGroup("marketing", teams=[MKT], role=Role.MEMBER),
            IdpGroup("everyone"),
            IdpGroup("it-admins", teams=[IT], role=Role.ORG_ADMIN),
            IdpGroup("ops-blank-role", teams=[OPS, MKT]),
            IdpGroup("admins-blank-teams", role=Role.ORG_ADMIN),
        ],
        manual_edits=manual_edits,
        domains=["example.com"],
    )


def small_org(**changes: Any) -> Org:
    """Teams a and b, defaults Member of a; ``changes`` override any field (valid or not)."""
    fields: dict[str, Any] = {
        "teams": [Team("a"), Team("b")],
        "default_teams": ["a"],
        "default_role": Role.MEMBER,
        "domains": ["example.com"],
    }
    return Org(**{**fields, **changes})


# -- the example documents and the command line

EXAMPLES = Path(__file__).parent.parent / "examples"
ORG, ORG_TOML, AFTER = str(EXAMPLES / "org.json"), str(EXAMPLES / "org.toml"), str(EXAMPLES / "org-after.json")
USERS, USERS_TOML, BAD = str(EXAMPLES / "users.json"), str(EXAMPLES / "users.toml"), str(EXAMPLES / "bad-org.json")


def cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run main() in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    old_err, sys.stderr = sys.stderr, err
    try:
        code = main(list(args), stdin=io.StringIO(stdin), stdout=out)
    finally:
        sys.stderr = old_err
    return code, out.getvalue(), err.getvalue()


def run_module(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    stdout: IO[bytes] | int = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m scim_roles ARGS`` in a real subprocess: exit code, and the bytes it wrote (stderr always)."""
    return subprocess.run(
        [sys.executable, "-m", "scim_roles", *args],
        input=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
        timeout=120,
    )


# -- generated documents

KEYS = [
    "teams", "default_teams", "default_role", "groups", "manual_edits", "id", "name", "role", "saml", "scim",
    "deprovisioned", "manual", "team", "users", "a,b", "\x00extra\x00", "", "ID",
]  # fmt: skip
ROLES = ["member", "team_admin", "org_admin", "owner", "MEMBER", ""]


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        st.text(max_size=8),
        st.sampled_from([*ROLES, "eng", "mkt", "okta-marketing", "\ud800", "a\nb"]),
    )


def values() -> st.SearchStrategy[Any]:
    """JSON-like values, keys drawn mostly from the documents' own."""
    keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6))
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
        max_leaves=25,
    )


def mutated(document: Any) -> st.SearchStrategy[Any]:
    """A real document with one value somewhere replaced, or one key added or dropped."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        doc = json.loads(json.dumps(document))
        node = doc
        for _ in range(draw(st.integers(0, 3))):
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node)))
                if not isinstance(node[key], (dict, list)) or not node[key]:
                    break
                node = node[key]
            elif isinstance(node, list) and node:
                index = draw(st.integers(0, len(node) - 1))
                if not isinstance(node[index], (dict, list)) or not node[index]:
                    break
                node = node[index]
        if isinstance(node, dict):
            action = draw(st.sampled_from(["set", "add", "drop"]))
            key = draw(st.sampled_from(sorted(node) or KEYS)) if action != "add" else draw(st.sampled_from(KEYS))
            if action == "drop":
                node.pop(key, None)
            else:
                node[key] = draw(values())
        elif isinstance(node, list):
            node.append(draw(values()))
        return doc

    return build()


def example_module(name: str, relative: str) -> ModuleType:
    """An example application under examples/ (not a package), loaded as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
