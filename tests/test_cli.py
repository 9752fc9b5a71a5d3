"""The scim-roles command, in-process and through a real subprocess."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import scim_roles._cli as cli_module
from scim_roles._cli import _Fail, _json, _json_array, _parsed, main, run

from helpers import AFTER, BAD, ORG, ORG_TOML, USERS, USERS_TOML, cli, run_module

KNOWN = "default_role, default_teams, domains, groups, manual_edits, teams"


def test_demo_prints_a_table_of_user_team_role_and_why() -> None:
    """`scim-roles demo` (and no command at all) prints the example org as a table, toggle off and on."""
    code, out, _ = cli("demo")
    assert code == 0
    assert out.splitlines()[1].split() == ["USER", "TEAM", "ROLE", "WHY"]
    assert '"Editing users manually" ON' in out
    assert "overridden (locked): manual grant (Team Admin)" in out
    assert "deprovisioned: no access" in out
    assert cli() == (0, out, "")


def test_explain_text_for_selected_users() -> None:
    """explain prints each selected user's resolution, in the order asked."""
    code, out, _ = cli("explain", ORG, USERS_TOML, "--user", "fay", "--user", "ann", "--user", "fay")
    assert code == 0
    assert out.index("User 'fay'") < out.index("User 'ann'")
    assert out.count("User 'fay'") == 1
    assert 'the user is managed by SCIM and "Editing users manually" is off' in out


def test_explain_json_is_one_object_keyed_by_user_id() -> None:
    """explain --json prints one object keyed by user id, with lower-case enum values."""
    code, out, _ = cli("explain", ORG_TOML, USERS, "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal"]
    assert data["gus"]["org_admin"] is True
    assert data["eve"]["memberships"][0] == {
        "team": "eng",
        "role": "team_admin",
        "reasons": [
            {
                "source": "idp_group",
                "role": "team_admin",
                "group": "okta-eng-leads",
                "text": "IdP group 'okta-eng-leads' (Team Admin)",
            }
        ],
    }
    assert data["eve"]["user_id"] == "eve"
    assert data["hal"]["overridden"][0]["cause"] == "deprovisioned"
    assert json.loads(cli("explain", ORG, "-", "--json", stdin="[]")[1]) == {}


def test_explain_unknown_user_is_invalid_input() -> None:
    """Asking for a user the document does not have exits 1 with one line naming it."""
    assert cli("explain", ORG, USERS, "--user", "zed") == (
        1,
        "",
        "scim-roles: --user: no user 'zed' in the users document\n",
    )


def test_check_ok_and_every_problem_with_paths() -> None:
    """check prints a summary when valid; otherwise every problem, one line each, and exits 1."""
    code, out, _ = cli("check", ORG, USERS)
    assert (code, out) == (0, f"{ORG}: ok (4 teams, 4 groups); {USERS}: ok (8 users)\n")
    assert cli("check", ORG_TOML)[1] == f"{ORG_TOML}: ok (4 teams, 4 groups)\n"
    code, out, err = cli("check", BAD, "-", stdin='[{"id": "x"}]')
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"scim-roles: {BAD}: org: default_role: 'owner' is not one of member, team_admin, org_admin",
        f"scim-roles: {BAD}: org: manual_edit: unknown key (known: {KNOWN})",
        "scim-roles: -: users[0]: source: has no source: needs saml=True, scim=True or a manual grant",
    ]


def test_preview_text_json_and_strict() -> None:
    """preview prints the dry run; --strict exits 1 when a guardrail fires; --json is machine-readable."""
    code, out, _ = cli("preview", ORG, AFTER, USERS)
    assert code == 0
    assert "WARNING no_org_admin: no user would be an org admin" in out
    assert "gus: it Org Admin -> Team Admin" in out
    code, _, err = cli("preview", ORG, AFTER, USERS, "--strict")
    assert (code, err) == (1, "scim-roles: --strict: a guardrail fired: loses_org_admin, no_org_admin, mass_change\n")
    assert cli("preview", ORG, ORG, USERS, "--strict")[0] == 0
    data = json.loads(cli("preview", ORG, AFTER, USERS, "--json", "--max-share", "0.5")[1])
    assert [{k: v for k, v in c.items() if k != "text"} for c in data["changes"]] == [
        {"user": "fay", "team": "ops", "before": None, "after": "team_admin"},
        {"user": "gus", "team": "it", "before": "org_admin", "after": "team_admin"},
    ]
    assert data["states"][-1] == {
        "user": "gus",
        "state": "org_admin",
        "before": True,
        "after": False,
        "text": "gus: no longer an org admin",
    }
    assert [f["kind"] for f in data["findings"]] == ["loses_org_admin", "no_org_admin"]
    for bad in ("2", "-0.1", "nan", "x"):
        with pytest.raises(SystemExit) as exit_info:
            cli("preview", ORG, AFTER, USERS, "--max-share", bad)
        assert exit_info.value.code == 2  # a usage error, as argparse's own


def test_preview_json_shows_removals_as_null(tmp_path: Path) -> None:
    """A membership the change removes has "after": null."""
    org = json.loads(Path(ORG).read_text())
    org["groups"] = [g for g in org["groups"] if g["id"] != "okta-marketing"]
    after = tmp_path / "after.json"
    after.write_text(json.dumps(org), encoding="utf-8")
    data = json.loads(cli("preview", ORG, str(after), USERS, "--json", "--max-share", "1")[1])
    removal = {
        "user": "eve",
        "team": "mkt",
        "before": "member",
        "after": None,
        "text": "eve: removed from mkt (was Member)",
    }
    assert removal in data["changes"]


def test_bad_files_are_reported_in_one_line(tmp_path: Path) -> None:
    """Unsupported types are usage errors (2); unreadable or malformed files are invalid input (1)."""
    assert cli("check", "org")[2] == "scim-roles: org: unsupported file type '(none)'; use .json or .toml\n"
    assert cli("check", "org.yaml") == (
        2,
        "",
        "scim-roles: org.yaml: unsupported file type '.yaml'; use .json or .toml\n",
    )
    code, _, err = cli("check", str(tmp_path / "missing.json"))
    assert code == 1
    assert err.startswith(f"scim-roles: {tmp_path / 'missing.json'}: cannot read: No such file or directory")
    broken = tmp_path / "broken.toml"
    broken.write_text("teams = [", encoding="utf-8")
    code, _, err = cli("check", str(broken), USERS)
    assert code == 1
    assert err.startswith(f"scim-roles: {broken}: not valid TOML: ")
    assert cli("check", "-", stdin="{")[2].startswith("scim-roles: -: not valid JSON: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Missing arguments or an unknown command are usage errors."""
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", ORG])
    assert exit_info.value.code == 2
    assert "required: --db" in capsys.readouterr().err
    for args in (("explain", ORG), ("explain", ORG, USERS, "--db", "x.db"), ("check", ORG, USERS, "--db", "x.db")):
        code, _, err = cli(*args)
        assert (code, err) == (2, "scim-roles: give a users document or --db STATE, one of them\n")


def test_run_exits_with_the_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The console script exits with main()'s code."""
    monkeypatch.setattr(sys, "argv", ["scim-roles", "check", ORG])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 0
    assert "ok (4 teams" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`scim-roles explain ... | head` stops without a traceback when the reader goes away."""
    users = tmp_path / "users.json"
    users.write_text(json.dumps([{"id": f"u{i}", "saml": True} for i in range(20_000)]), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scim_roles", "explain", ORG, str(users)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.readline().startswith(b"User 'u0'")
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1
    assert b"Traceback" not in proc.stderr.read()
    proc.stderr.close()


def test_run_handles_a_broken_pipe_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """run() turns a broken pipe into exit 1 and points stdout at the null device (checked with fakes)."""

    class Gone(io.StringIO):
        def write(self, text: str) -> int:  # noqa: ARG002 -- the reader is gone
            raise BrokenPipeError

        def fileno(self) -> int:
            return 99

    calls: list[tuple[object, ...]] = []

    def fake_open(path: str, flags: int) -> int:
        calls.append((path, flags))
        return 42

    monkeypatch.setattr(sys, "argv", ["scim-roles", "demo"])
    monkeypatch.setattr(sys, "stdout", Gone())
    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "dup2", lambda a, b: calls.append((a, b)))
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 1
    assert calls == [(os.devnull, os.O_WRONLY), (42, 99)]


def test_python_m_module_imports_the_command() -> None:
    """`python -m scim_roles` runs the same main()."""
    module = importlib.import_module("scim_roles.__main__")
    assert module.main is main


def test_real_subprocess_python_m_and_console_script() -> None:
    """`python -m scim_roles` and the installed `scim-roles` behave alike, errors on stderr, no traceback."""
    done = run_module("check", BAD)
    assert done.returncode == 1
    assert b"Traceback" not in done.stderr
    assert done.stderr.count(b"\n") == 2
    script = Path(sys.executable).with_name("scim-roles")
    proc = subprocess.run(
        [str(script), "explain", ORG, USERS, "--user", "gus"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "User 'gus': 1 membership, org admin" in proc.stdout


def test_check_validates_users_against_the_org() -> None:
    """With a valid org, check reports the users' problems against it (V5), with exit 1."""
    code, out, err = cli("check", ORG, "-", stdin='[{"id": "x", "scim": true, "groups": ["okta-ghost"]}]')
    assert (code, out) == (1, "")
    assert err == "scim-roles: -: users[0]: groups: IdP group 'okta-ghost' is not synced to the org\n"


def test_explain_checks_users_against_the_org() -> None:
    """explain refuses a users document that names groups the org does not sync, with paths."""
    code, out, err = cli("explain", ORG, "-", stdin='[{"id": "x", "scim": true, "groups": ["okta-ghost"]}]')
    assert (code, out, err) == (
        1,
        "",
        "scim-roles: -: users[0]: groups: IdP group 'okta-ghost' is not synced to the org\n",
    )


def test_explain_output_exactly() -> None:
    """Text: each user's explanation, a blank line between; JSON of nobody is an empty object."""
    from scim_roles import resolve_memberships  # noqa: PLC0415
    from scim_roles.io import load_org, load_users  # noqa: PLC0415

    org = load_org(json.loads(Path(ORG).read_text()))
    users = {u.id: u for u in load_users(json.loads(Path(USERS).read_text()), org)}
    expected = "\n".join(resolve_memberships(org, users[u]).explain() + "\n" for u in ("ann", "cat"))
    assert cli("explain", ORG, USERS, "--user", "ann", "--user", "cat") == (0, expected, "")
    assert cli("explain", ORG, "-", "--json", stdin="[]") == (0, "{}\n", "")


def test_without_the_io_extra_documents_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cattrs, commands that read documents say which extra to install, and exit 2; demo still works."""
    import scim_roles  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "scim_roles.io", None)  # what a missing dependency looks like to import
    monkeypatch.delattr(scim_roles, "io", raising=False)
    assert cli("check", ORG) == (
        2,
        "",
        "scim-roles: reading documents needs the io extra: python -m pip install '.[io]' in a clone of scim_roles\n",
    )
    assert cli("demo")[0] == 0


# -- large documents: read one user at a time, progress on a terminal only

_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["", "a", "id", "u"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(st.sampled_from(["id", "a", "b"]), inner), max_size=3),  # pairs: repeats allowed
    ),
    max_leaves=8,
)


def _dumped(value: object) -> str:
    """JSON text, with objects drawn as lists of pairs (so a key may repeat)."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        return "{" + ", ".join(f"{json.dumps(k)}:{_dumped(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumped(v) for v in value) + "]"
    return json.dumps(value)


@given(
    items=st.lists(_JSON, max_size=4),
    space=st.sampled_from(["", " ", "\n  ", "\t"]),
    cut=st.one_of(st.none(), st.integers(0, 200)),
    extra=st.sampled_from(["", ",", "]", " x", "[", ",]"]),
)
def test_a_json_list_read_item_by_item_is_what_reading_it_whole_gives(
    items: list[object], space: str, cut: int | None, extra: str
) -> None:
    """The streamed reader yields the same items, or fails with the same lines, as json.loads on the whole text."""
    text = space + "[" + space + ("," + space).join(_dumped(i) for i in items) + space + "]" + space
    text = (text if cut is None else text[:cut]) + extra
    if not text.lstrip(" \t\n\r").startswith("["):
        return  # not a list: read whole, never streamed

    def outcome(read: Callable[[], object]) -> object:
        try:
            return read()
        except _Fail as fail:
            return list(fail.lines)

    streamed = outcome(lambda: list(_json_array("d.json", text, lambda _: None)))
    whole = outcome(lambda: _parsed("d.json", ".json", lambda: _json("d.json", text)))
    assert streamed == whole


def test_a_deeply_nested_user_in_a_streamed_list_is_refused_in_one_line(tmp_path: Path) -> None:
    """Nesting too deep for the decoder, inside the list of users: one line, exit 1."""
    users = tmp_path / "users.json"
    users.write_text('[{"id": "a", "saml": true}, ' + "[" * 100_000 + "]" * 100_000 + "]")
    assert cli("check", ORG, str(users)) == (1, "", f"scim-roles: {users}: nested too deeply to read\n")


class _Terminal(io.StringIO):
    """Standard error as a terminal."""

    def isatty(self) -> bool:
        return True


def _big_users(tmp_path: Path, n: int, suffix: str = ".json") -> Path:
    users = [{"id": f"u{i}", "saml": True} for i in range(n)]
    path = tmp_path / f"users{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(users))
    else:
        path.write_text("".join(f'[[users]]\nid = "u{i}"\nsaml = true\n' for i in range(n)))
    return path


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_check_explain_and_preview_show_progress_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """A large users document shows a progress bar on standard error, when it is a terminal."""
    users = str(_big_users(tmp_path, 5_000, suffix))
    monkeypatch.setattr("scim_roles._cli._progress_delay", 0)
    for args in (["check", ORG, users], ["explain", ORG, users, "--user", "u1"], ["preview", ORG, AFTER, users]):
        err = _Terminal()
        monkeypatch.setattr(sys, "stderr", err)
        assert main(args, stdout=io.StringIO()) == 0
        shown = err.getvalue()
        assert f"{users}: reading users" in shown
        assert "\r" in shown  # redrawn in place
        assert ("resolving" in shown) is (args[0] == "explain")  # explain writes its output with a bar too


def test_explain_draws_no_bar_over_its_own_output_on_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When standard output is the terminal too, only the reading shows a bar: the report is not overdrawn."""
    users = str(_big_users(tmp_path, 3_000))
    monkeypatch.setattr("scim_roles._cli._progress_delay", 0)
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    out = _Terminal()
    assert main(["explain", ORG, users, "--json"], stdout=out) == 0
    assert "reading users" in err.getvalue()
    assert "resolving" not in err.getvalue()
    assert json.loads(out.getvalue())["u1"]["user_id"] == "u1"


def test_no_progress_when_standard_error_is_not_a_terminal(tmp_path: Path) -> None:
    """Piped, standard error stays empty: the progress bar is for people, not for logs."""
    users = str(_big_users(tmp_path, 5_000))
    for args in (["check", ORG, users], ["explain", ORG, users, "--user", "u1"]):
        done = run_module(*args)
        assert done.returncode == 0
        assert done.stderr == b""


def test_check_counts_users_it_does_not_keep(tmp_path: Path) -> None:
    """`check` reads a users document without keeping the users, and still counts them."""
    users = _big_users(tmp_path, 2_500)
    assert cli("check", ORG, str(users))[1].endswith(f"{users}: ok (2500 users)\n")
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"users": json.loads(users.read_text())}))
    assert cli("check", ORG, str(wrapped))[1].endswith(f"{wrapped}: ok (2500 users)\n")
    assert cli("check", ORG, str(tmp_path / "none.json"))[0] == 1


def test_streamed_lists_that_break_off_read_as_json_says() -> None:
    """A list whose items are not separated by commas, or that stops, fails as json.loads fails on it."""
    for text in ('[{"id": "a"} {"id": "b"}]', '[{"id": "a"},', "[1 x", "[]", " [ ] ", "[1,]"):
        try:
            whole: object = _parsed("d.json", ".json", lambda: _json("d.json", text))  # noqa: B023
        except _Fail as fail:
            whole = list(fail.lines)
        try:
            streamed: object = list(_json_array("d.json", text, lambda _: None))
        except _Fail as fail:
            streamed = list(fail.lines)
        assert streamed == whole, text


def test_a_users_document_of_another_shape_is_refused_with_its_name(tmp_path: Path) -> None:
    """Neither a list nor a table with only `users`: refused, as load_users refuses it."""
    for name, text in (("t.json", '{"people": []}'), ("n.json", "3"), ("t.toml", 'name = "x"')):
        path = tmp_path / name
        path.write_text(text)
        code, _, err = cli("check", ORG, str(path))
        assert code == 1
        assert err.startswith(f"scim-roles: {path}: ")


def test_preview_takes_a_max_share_of_zero() -> None:
    """--max-share 0 is a share (every change is a mass change), not a usage error."""
    code, out, _ = cli("preview", ORG, AFTER, USERS, "--json", "--max-share", "0")
    assert code == 0
    assert "mass_change" in [f["kind"] for f in json.loads(out)["findings"]]


def test_standard_input_is_read_as_bytes_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A standard input with a byte buffer is read as bytes (a BOM is fine); past the limit is refused, at it
    read whole; a text-only input is read as text, with the same limit."""

    class Stdin(io.StringIO):
        def __init__(self, data: bytes) -> None:
            super().__init__()
            self.raw = io.BytesIO(data)

        @property
        def buffer(self) -> io.BytesIO:
            return self.raw

    doc = b"\xef\xbb\xbf" + Path(ORG).read_bytes()
    out = io.StringIO()
    assert main(["check", "-"], stdin=Stdin(doc), stdout=out) == 0
    assert out.getvalue() == "-: ok (4 teams, 4 groups)\n"
    monkeypatch.setattr(cli_module, "MAX_DOCUMENT", len(doc))
    assert main(["check", "-"], stdin=Stdin(doc), stdout=io.StringIO()) == 0
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["check", "-"], stdin=Stdin(doc + b" "), stdout=io.StringIO()) == 1
    assert err.getvalue() == f"scim-roles: -: larger than the {len(doc):,}-byte limit for a document\n"
    text = Path(ORG).read_text()
    monkeypatch.setattr(cli_module, "MAX_DOCUMENT", len(text))
    assert main(["check", "-"], stdin=io.StringIO(text), stdout=io.StringIO()) == 0
    assert main(["check", "-"], stdin=io.StringIO(text + " "), stdout=io.StringIO()) == 1


def test_error_lines_keep_printable_text_and_escape_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Printable characters, non-ASCII and backslashes included, stay as they are; the rest are escaped."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    cli_module._error_line("José \\ x\ny\x1b")
    assert err.getvalue() == "scim-roles: José \\ x\\ny\\x1b\n"
