"""Hostile input: never a traceback, a hang, a silent guess or a forged line (docs/verification.md, threats)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scim_roles import (
    Change,
    InvalidArgument,
    InvalidOrg,
    InvalidUser,
    Org,
    Role,
    ScimRolesError,
    Team,
    User,
    diff,
    dump_org,
    dump_resolution,
    dump_user,
    dump_users,
    load_org,
    load_user,
    load_users,
    preview,
    resolve_all,
    resolve_memberships,
)
from scim_roles import _cli as cli_module
from scim_roles._many import Resolutions

from helpers import ORG, USERS, cli, run_module

ORG_DOC = json.loads(Path(ORG).read_text(encoding="utf-8"))


def one_clean_line(err: str | bytes) -> str:
    text = err.decode() if isinstance(err, bytes) else err
    assert "Traceback" not in text
    assert text.count("\n") == 1, text
    return text


def test_a_document_that_is_not_utf8_is_named_with_its_byte_offset(tmp_path: Path) -> None:
    """A file or standard input that is not UTF-8: one line, the file and the byte offset, exit 1."""
    bad = tmp_path / "org.json"
    bad.write_bytes(b'{"teams": [{"id": "caf\xe9"}]}')
    done = run_module("check", str(bad))
    assert done.returncode == 1
    assert one_clean_line(done.stderr) == f"scim-roles: {bad}: not UTF-8: byte 0xe9 at offset 22\n"
    assert cli("check", str(bad)) == (1, "", f"scim-roles: {bad}: not UTF-8: byte 0xe9 at offset 22\n")
    done = run_module("check", "-", stdin=b"\xff\xfe{}")
    assert (done.returncode, done.stderr) == (1, b"scim-roles: -: not UTF-8: byte 0xff at offset 0\n")
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + Path(ORG).read_bytes())
    assert run_module("check", str(bom)).returncode == 0  # a byte-order mark is read, not refused


@pytest.mark.parametrize(("suffix", "text"), [(".json", "[" * 100_000), (".toml", "a = " + "[" * 100_000)])
def test_deep_nesting_is_refused(tmp_path: Path, suffix: str, text: str) -> None:
    """100,000 open brackets, JSON or TOML: refused in one line, exit 1, no RecursionError."""
    path = tmp_path / f"org{suffix}"
    path.write_text(text, encoding="utf-8")
    code, _, err = cli("check", str(path))
    assert (code, err) == (1, f"scim-roles: {path}: nested too deeply to read\n")


def test_a_key_given_twice_is_refused_with_its_path(tmp_path: Path) -> None:
    """JSON that repeats a key, at any depth: every repeat named with its path; never the last one silently."""
    path = tmp_path / "org.json"
    path.write_text(
        '{"teams": [{"id": "eng", "id": "mkt"}], "default_teams": ["eng"],'
        ' "default_role": "org_admin", "default_role": "member"}',
        encoding="utf-8",
    )
    code, _, err = cli("check", str(path))
    assert code == 1
    assert err == (
        f"scim-roles: {path}: document: key 'default_role' appears more than once\n"
        f"scim-roles: {path}: teams[0]: key 'id' appears more than once\n"
    )
    users = tmp_path / "users.json"
    users.write_text('[{"id": "a", "saml": true, "manual": [{"team": "eng", "role": "member", "role": "org_admin"}]}]')
    for command in (("check", ORG, str(users)), ("explain", ORG, str(users)), ("preview", ORG, ORG, str(users))):
        code, _, err = cli(*command)
        assert (code, err) == (1, f"scim-roles: {users}: [0].manual[0]: key 'role' appears more than once\n")
    toml = tmp_path / "org.toml"
    toml.write_text('default_role = "member"\ndefault_role = "org_admin"\n', encoding="utf-8")
    code, _, err = cli("check", str(toml))
    assert code == 1
    assert "not valid TOML" in one_clean_line(err)


@pytest.mark.parametrize("key", ["\x00extra\x00", "a,b", "\x00", "x\x00y,z", '["a"]'])
def test_odd_keys_are_one_unknown_key_named_as_is(key: str) -> None:
    """Keys with NULs, commas or JSON in them: one unknown key each, named exactly, InvalidOrg."""
    with pytest.raises(InvalidOrg) as refused:
        load_org({**ORG_DOC, key: 1})
    (problem,) = refused.value.problems
    assert (problem.subject, problem.field, problem.id) == ("org", key, key)
    assert problem.detail.startswith("unknown key")
    with pytest.raises(InvalidOrg, match=r"^org: 1: unknown key") as refused:
        load_org({**ORG_DOC, 1: 2})  # type: ignore[dict-item]
    assert refused.value.problems[0].id == "1"  # a key that is no string is named as it reads


def test_odd_keys_print_escaped_in_one_line(tmp_path: Path) -> None:
    """On the command line an odd key shows escaped: it cannot break the line or drive the terminal."""
    path = tmp_path / "org.json"
    path.write_text(json.dumps({**ORG_DOC, "\x00evil\n\x1b[31m": 1}), encoding="utf-8")
    code, _, err = cli("check", str(path))
    assert code == 1
    assert one_clean_line(err) == (
        f"scim-roles: {path}: org: \\x00evil\\n\\x1b[31m: unknown key "
        "(known: default_role, default_teams, domains, groups, manual_edits, teams)\n"
    )


def test_ids_the_terminal_cannot_encode_print_escaped(tmp_path: Path) -> None:
    """A lone surrogate or non-ASCII id under PYTHONIOENCODING=ascii: printed escaped, exit 0, no traceback."""
    org = {**ORG_DOC, "teams": [*ORG_DOC["teams"], {"id": "\ud800"}, {"id": "équipe"}]}
    path = tmp_path / "org.json"
    path.write_text(json.dumps(org), encoding="utf-8")
    users = tmp_path / "users.json"
    users.write_text(
        json.dumps(
            [{"id": "zoë", "manual": [{"team": "\ud800", "role": "member"}, {"team": "équipe", "role": "member"}]}]
        )
    )
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = run_module("explain", str(path), str(users), env=env)
    assert (done.returncode, done.stderr) == (0, b"")
    out = done.stdout.decode("ascii")
    assert "User 'zo\\xeb'" in out
    assert "  '\\ud800': Member" in out
    assert "  \\xe9quipe: Member" in out
    done = run_module(
        "check", "-", env=env, stdin=b'{"teams": [{"id": "\\ud800"}], "default_teams": ["x"], "default_role": "member"}'
    )
    assert done.returncode == 1
    one_clean_line(done.stderr)


def test_forged_lines_cannot_appear_in_text_output(tmp_path: Path) -> None:
    """A user id with a newline and a fake line, or an ANSI escape: escaped in explain and preview text."""
    forged = "ann\n  gus: added to it as Org Admin"
    users = tmp_path / "users.json"
    saml = {"saml": True, "email": "ann@example.com"}
    users.write_text(json.dumps([{"id": forged, **saml}, {"id": "\x1b[2Jbob", **saml}]), encoding="utf-8")
    code, out, _ = cli("explain", ORG, str(users))
    assert code == 0
    assert not any(line.startswith("  gus:") for line in out.splitlines())
    assert "\x1b" not in out
    after = tmp_path / "after.json"
    after.write_text(json.dumps({**ORG_DOC, "default_role": "team_admin"}), encoding="utf-8")
    code, out, _ = cli("preview", ORG, str(after), str(users))
    assert code == 0
    assert "'ann\\n  gus: added to it as Org Admin': eng Member -> Team Admin" in out
    assert "'\\x1b[2Jbob': eng Member -> Team Admin" in out
    assert not any(line.startswith("  gus:") for line in out.splitlines())
    assert Change(forged, "eng", None, Role.MEMBER).describe().count("\n") == 0


def test_only_regular_files_are_read_and_their_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO or a device behind a .json name is refused without reading; past the size limit, refused."""
    fifo = tmp_path / "org.json"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    for path in (fifo, zero, tmp_path):
        code, _, err = cli("check", str(path) if path != tmp_path else str(tmp_path / "."))
        assert code in (1, 2)
        one_clean_line(err)
    code, _, err = cli("check", str(fifo))
    assert (code, err) == (
        1,
        f"scim-roles: {fifo}: not a regular file; give a .json or .toml file, or - for standard input\n",
    )
    monkeypatch.setattr(cli_module, "MAX_DOCUMENT", 100)
    code, _, err = cli("check", ORG)
    assert (code, err) == (1, f"scim-roles: {ORG}: larger than the 100-byte limit for a document\n")
    code, _, err = cli("check", "-", stdin="{" + " " * 200 + "}")
    assert (code, err) == (1, "scim-roles: -: larger than the 100-byte limit for a document\n")


def test_interrupts_and_write_errors_end_quietly(tmp_path: Path) -> None:
    """Ctrl-C during explain: 130, no traceback; output to /dev/full: 1, one line; stdout closed: 1."""
    users = tmp_path / "users.json"
    users.write_text(json.dumps([{"id": f"u{i}", "saml": True} for i in range(200_000)]), encoding="utf-8")
    # Ctrl-C as at a terminal, even when the tests run as a background job: a child inherits an ignored SIGINT
    # (and Python then leaves it ignored), never a handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "scim_roles", "explain", ORG, str(users)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert process.stdout is not None
    process.stdout.read(1000)  # it is writing
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)  # read on: the interrupt, not a closed pipe, must end it
    assert process.returncode == 130
    assert b"Traceback" not in err
    with Path("/dev/full").open("wb") as full:
        done = run_module("explain", ORG, USERS, stdout=full)
    assert done.returncode == 1
    assert one_clean_line(done.stderr) == "scim-roles: cannot write the output: No space left on device\n"
    done = subprocess.run(  # noqa: S602 -- a shell closes the child's stdout (`>&-`); our own command
        f'"{sys.executable}" -m scim_roles explain "{ORG}" "{USERS}" >&-',
        shell=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 1
    assert one_clean_line(done.stderr) == "scim-roles: standard output is closed\n"


A_ORG = Org(teams=[Team("a")], default_teams=["a"], default_role=Role.MEMBER)
A_USER = User("u", saml=True, email="u@example.com")
WRONG_TYPES: list[tuple[str, Callable[[], object], type[ScimRolesError], str]] = [
    (
        "resolve_all users",
        lambda: resolve_all(A_ORG, None),  # type: ignore[arg-type]
        InvalidArgument,
        "resolve_all: users: must be a collection",
    ),
    ("resolve_all users str", lambda: resolve_all(A_ORG, "ab"), InvalidArgument, "resolve_all: users"),  # type: ignore[arg-type]
    ("resolve_all org", lambda: resolve_all(None, []), InvalidOrg, "resolve_all: org: must be an Org"),  # type: ignore[arg-type]
    ("diff", lambda: diff(None, None), InvalidArgument, "diff: before: must be a Resolution"),  # type: ignore[arg-type]
    ("preview users", lambda: preview(A_ORG, A_ORG, None), InvalidArgument, "preview: users"),  # type: ignore[arg-type]
    ("preview org", lambda: preview(A_ORG, "x", []), InvalidOrg, "preview: after: org"),  # type: ignore[arg-type]
    ("preview before", lambda: preview("x", A_ORG, []), InvalidOrg, "^preview: before: org: must be an Org"),  # type: ignore[arg-type]
    ("load_users org", lambda: load_users([{"id": "a", "saml": True}], org="x"), InvalidArgument, "load_users: org"),  # type: ignore[arg-type]
    ("load_user org", lambda: load_user({"id": "a", "saml": True}, org=1), InvalidArgument, "load_user: org"),  # type: ignore[arg-type]
    ("load_org keys", lambda: load_org({1: 2}), InvalidOrg, "1: unknown key"),  # type: ignore[dict-item]
    ("load_users keys", lambda: load_users([{1: 2}]), InvalidUser, r"users\[0\]: 1: unknown key"),  # type: ignore[dict-item]
    ("dump_org", lambda: dump_org(None), InvalidArgument, "^dump_org: org: must be an Org, got NoneType None$"),  # type: ignore[arg-type]
    ("dump_user", lambda: dump_user("u"), InvalidArgument, "dump_user: user: must be a User"),  # type: ignore[arg-type]
    ("dump_users", lambda: dump_users([None]), InvalidArgument, "dump_user: user"),  # type: ignore[list-item]
    ("dump_resolution", lambda: dump_resolution(A_USER), InvalidArgument, "dump_resolution: res"),  # type: ignore[arg-type]
    ("Resolutions", lambda: Resolutions([1]), InvalidArgument, "Resolutions: items"),  # type: ignore[list-item]
    ("Resolutions items", lambda: Resolutions(None), InvalidArgument, "Resolutions: items"),  # type: ignore[arg-type]
    ("swapped", lambda: resolve_memberships(A_USER, A_ORG), InvalidArgument, "the arguments are swapped"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("label", "call", "error", "message"), WRONG_TYPES, ids=[w[0] for w in WRONG_TYPES])
def test_wrong_argument_types_are_typed_refusals(
    label: str, call: Callable[[], object], error: type[ScimRolesError], message: str
) -> None:
    """Every public entry point refuses a wrong argument with a ScimRolesError naming the function and argument."""
    del label
    with pytest.raises(error, match=message):
        call()


def test_a_repeated_group_or_grant_gets_one_verdict_everywhere(tmp_path: Path) -> None:
    """A users document repeating a group or a grant is refused by check, explain and preview alike."""
    users = tmp_path / "users.json"
    users.write_text(
        json.dumps([{"id": "a", "scim": True, "groups": ["okta-marketing", "okta-marketing"]}]), encoding="utf-8"
    )
    verdicts = {
        command[0]: cli(*command)
        for command in (("check", ORG, str(users)), ("explain", ORG, str(users)), ("preview", ORG, ORG, str(users)))
    }
    expected = f"scim-roles: {users}: users[0]: groups[1]: IdP group 'okta-marketing' appears more than once\n"
    assert {name: (code, err) for name, (code, _, err) in verdicts.items()} == dict.fromkeys(verdicts, (1, expected))
    with pytest.raises(InvalidUser, match="appears more than once"):
        load_users([{"id": "a", "manual": [{"team": "eng", "role": "member"}, {"team": "eng", "role": "member"}]}])


def test_run_turns_every_ending_into_an_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """run(): interrupted 130, a write error 1 with one line, stdout closed 1; never a traceback."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "argv", ["scim-roles", "demo"])
    for raised, code, line in (
        (KeyboardInterrupt(), 130, ""),
        (BrokenPipeError(), 1, ""),
        (OSError(28, "No space left on device"), 1, "scim-roles: cannot write the output: No space left on device\n"),
    ):

        def fail(raised: BaseException = raised) -> int:
            raise raised

        monkeypatch.setattr(cli_module, "main", fail)
        monkeypatch.setattr(sys, "stdout", io.StringIO())  # no file descriptor to point at /dev/null: suppressed
        with pytest.raises(SystemExit) as exit_info:
            cli_module.run()
        assert exit_info.value.code == code
        assert err.getvalue() == line
        err.seek(0)
        err.truncate()
    monkeypatch.setattr(sys, "stdout", None)
    with pytest.raises(SystemExit) as exit_info:
        cli_module.run()
    assert (exit_info.value.code, err.getvalue()) == (1, "scim-roles: standard output is closed\n")
    monkeypatch.setattr(sys, "stderr", None)  # nowhere to say it, but the exit code
    with pytest.raises(SystemExit) as exit_info:
        cli_module.run()
    assert exit_info.value.code == 1


def test_standard_input_is_read_as_bytes_when_it_has_them() -> None:
    """`-` reads the bytes under a text stream, so their encoding is checked like a file's."""
    stdin = io.TextIOWrapper(io.BytesIO(Path(ORG).read_bytes()), encoding="latin-1")
    out = io.StringIO()
    assert cli_module.main(["check", "-"], stdin=stdin, stdout=out) == 0
    assert out.getvalue().startswith("-: ok (4 teams")


def test_users_invalid_for_both_orgs_are_refused_by_preview(tmp_path: Path) -> None:
    """preview: a user naming a group neither org has is refused, one line per problem, exit 1."""
    users = tmp_path / "users.json"
    users.write_text(json.dumps([{"id": "a", "scim": True, "groups": ["nosuch"]}]), encoding="utf-8")
    code, _, err = cli("preview", ORG, ORG, str(users))
    assert (code, err) == (1, "scim-roles: user 'a': groups: IdP group 'nosuch' is not synced to the org\n")
