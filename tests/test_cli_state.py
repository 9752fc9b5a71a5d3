"""The command line on a live SQLite state and `serve` (extras scim and serve: Python 3.11 or later)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from test_cli import ORG, cli


def test_explain_and_check_read_a_live_state(tmp_path: Path) -> None:
    """`--db STATE` in place of a users document: the users SCIM and the app stored, explained and checked."""
    from scim_roles import Grant, Role, User  # noqa: PLC0415
    from scim_roles.io import load_org  # noqa: PLC0415
    from scim_roles.scim import ScimRequest, handle  # noqa: PLC0415
    from scim_roles.store import SqliteStore  # noqa: PLC0415

    db = tmp_path / "state.db"
    store = SqliteStore(db, load_org(json.loads(Path(ORG).read_text(encoding="utf-8"))))
    store.put_user(User("sam", saml=True, manual=[Grant("ops", Role.TEAM_ADMIN)]), user_name="sam@example.com")
    snapshot = store.load()
    body = {"userName": "ann@example.com"}
    assert store.commit(snapshot, handle(snapshot.directory, ScimRequest("POST", "/Users", body, new_id="u-ann")))
    code, out, _ = cli("explain", ORG, "--db", str(db), "--user", "u-ann")
    assert (code, out.splitlines()[0]) == (0, "User 'u-ann': 1 membership, locked (SCIM-managed; manual edits are off)")
    code, out, _ = cli("explain", ORG, "--db", str(db), "--json")
    assert (code, sorted(json.loads(out))) == (0, ["sam", "u-ann"])
    code, out, _ = cli("check", ORG, "--db", str(db))
    assert (code, out) == (0, f"{ORG}: ok (4 teams, 4 groups); {db}: ok (2 users, 1 SCIM-managed)\n")
    code, _, err = cli("check", ORG, "--db", str(tmp_path / "missing.db"))
    assert (code, err) == (1, f"scim-roles: {tmp_path / 'missing.db'}: no such state file\n")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    code, _, err = cli("check", ORG, "--db", str(tmp_path / "junk.db"))
    assert code == 1
    assert err.startswith(f"scim-roles: {tmp_path / 'junk.db'}: not a scim-roles state: ")
    no_ops = json.loads(Path(ORG).read_text(encoding="utf-8"))
    no_ops["teams"] = [t for t in no_ops["teams"] if t["id"] != "ops"]
    (tmp_path / "no-ops.json").write_text(json.dumps(no_ops), encoding="utf-8")
    code, _, err = cli("check", str(tmp_path / "no-ops.json"), "--db", str(db))
    assert (code, err) == (1, f"scim-roles: {db}: user 'sam': manual: grant on unknown team 'ops'\n")


def test_serve_builds_the_app_and_runs_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """serve: the token from the environment, the state created, the app on /scim/v2, one server run."""
    import uvicorn  # noqa: PLC0415

    from scim_roles.asgi import ScimApp  # noqa: PLC0415

    ran: list[tuple[object, str, int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **_: ran.append((app, host, port)))
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "secret")
    code, _, err = cli("serve", ORG, "--db", str(tmp_path / "state.db"), "--port", "9999")
    assert code == 0
    assert err == "scim-roles: serving SCIM 2.0 at http://127.0.0.1:9999/scim/v2\n"
    ((app, host, port),) = ran
    assert (isinstance(app, ScimApp), host, port) == (True, "127.0.0.1", 9999)
    assert (tmp_path / "state.db").is_file()


def test_serve_needs_a_token_in_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No SCIM_ROLES_TOKEN: exit 2 before anything is opened."""
    monkeypatch.delenv("SCIM_ROLES_TOKEN", raising=False)
    code, _, err = cli("serve", ORG, "--db", str(tmp_path / "state.db"))
    assert (code, err.count("\n")) == (2, 1)
    assert "SCIM_ROLES_TOKEN" in err
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("missing", ["uvicorn", "scim_roles.store"])
def test_serve_without_its_extra_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """Without uvicorn or the scim extra: one line naming the extra to install, exit 2."""
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "secret")
    code, _, err = cli("serve", ORG, "--db", str(tmp_path / "state.db"))
    assert code == 2
    assert "python -m pip install '.[serve]' in a clone of scim_roles" in err
