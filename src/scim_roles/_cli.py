"""The ``scim-roles`` command: a thin shell around the pure core.

Reads documents (``.json``, ``.toml``, or ``-`` for JSON on standard input),
prints answers. Exit codes: 0 fine; 1 invalid input, or a guardrail finding
with ``--strict``; 2 a usage error. Errors go to standard error, one line
each, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import stat
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from . import _documents as documents
from ._builtins import to_builtins
from ._demo import demo_org, demo_users
from ._errors import ScimRolesError
from ._model import Org, User
from ._preview import Preview, preview
from ._resolve import resolve_memberships
from ._result import Resolution
from ._words import counted

USAGE_ERROR, INVALID = 2, 1


class _Fail(Exception):
    """A problem to report on standard error, with the exit code to leave with."""

    def __init__(self, lines: Sequence[str], code: int = INVALID) -> None:
        super().__init__(*lines)
        self.lines = lines
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scim-roles", description="Who is on which team, with which role, and why.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="resolve an example org and print user, team, role and why").set_defaults(
        func=_demo_command
    )
    explain = commands.add_parser("explain", help="each user's memberships with reasons, and overrides")
    explain.add_argument("org", metavar="ORG", nargs="?", help="org document (.json, .toml, or - for JSON on stdin)")
    explain.add_argument("users", metavar="USERS", nargs="?", help="users document (or --db)")
    explain.add_argument("--db", metavar="STATE", help="a stored state: its settings and users (ORG optional)")
    explain.add_argument("--user", action="append", metavar="ID", help="only this user (repeatable)")
    explain.add_argument("--json", action="store_true", help="one JSON object keyed by user id")
    explain.add_argument("--tenant", metavar="TENANT", help="with --db: the tenant (checked: a state holds one)")
    explain.set_defaults(func=_explain_command)
    check = commands.add_parser("check", help="validate documents, or a stored state, and print every problem")
    check.add_argument("org", metavar="ORG", nargs="?")
    check.add_argument("users", metavar="USERS", nargs="?")
    check.add_argument("--db", metavar="STATE", help="check a stored state against the rules (drift)")
    check.add_argument("--tenant", metavar="TENANT", help="with --db: the tenant (checked: a state holds one)")
    check.set_defaults(func=_check_command)
    from ._cli_state import add_commands  # noqa: PLC0415 -- it imports this module's helpers

    add_commands(commands)
    prev = commands.add_parser("preview", help="dry-run a settings change: changes and guardrail findings")
    prev.add_argument("old_org", metavar="OLD_ORG")
    prev.add_argument("new_org", metavar="NEW_ORG")
    prev.add_argument("users", metavar="USERS")
    prev.add_argument("--json", action="store_true", help="print JSON")
    prev.add_argument("--strict", action="store_true", help="exit 1 when a guardrail fires")
    prev.add_argument("--max-share", type=_share, default=0.1, metavar="X", help="mass-change threshold (0.1)")
    prev.set_defaults(func=_preview_command)
    parser.set_defaults(func=_demo_command)  # no command: the demo
    return parser


def _share(text: str) -> float:
    """``--max-share``: a number from 0 to 1, or a usage error."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        msg = f"must be a number from 0 to 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def run() -> None:
    """The console script's entry point: never a traceback, exit 0, 1, 2, or 130 when interrupted."""
    if sys.stdout is None:  # started with standard output closed (`>&-`)
        if sys.stderr is not None:
            sys.stderr.write("scim-roles: standard output is closed\n")
        sys.exit(INVALID)
    for stream in (sys.stdout, sys.stderr):  # an id the terminal cannot encode prints escaped
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        _quiet_stdout()
        code = 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        _quiet_stdout()
        code = INVALID
    except OSError as err:  # a full disk, /dev/full: the output could not be written
        _quiet_stdout()
        _error_line(f"cannot write the output: {err.strerror or err}")
        code = INVALID
    sys.exit(code)


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so the flush at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _error_line(text: str) -> None:
    """One line on standard error, unprintable characters escaped: a value can never forge a line."""
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"scim-roles: {escaped}\n")


def main(argv: Sequence[str] | None = None, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run the command; return its exit code."""
    out = stdout or sys.stdout
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(_Reader(stdin or sys.stdin), args, out)
    except _Fail as fail:
        for line in fail.lines:
            _error_line(line)
        return fail.code
    except ScimRolesError as err:
        for problem in err.problems:
            _error_line(str(problem))
        return INVALID
    return code


def _demo_command(_read: _Reader, _args: argparse.Namespace, out: IO[str]) -> int:
    out.write(render_demo() + "\n")
    return 0


def _preview_command(read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    result = preview(
        _load_org(read, args.old_org),
        _load_org(read, args.new_org),
        _load_users(read, args.users)[1],
        max_share=args.max_share,
    )
    _print_preview(result, out, as_json=args.json)
    if args.strict and result.findings:
        fired = ", ".join(dict.fromkeys(f.kind.value for f in result.findings))
        raise _Fail([f"--strict: a guardrail fired: {fired}"])
    return 0


# -- reading documents


class _Reader:
    """Reads each named document once: ``reader(name)`` is its decoded data, ``reader.text(name)`` its text."""

    def __init__(self, stdin: IO[str]) -> None:
        self._stdin = stdin
        self._texts: dict[str, tuple[str, str]] = {}
        self._decoded: dict[str, Any] = {}

    def text(self, name: str) -> tuple[str, str]:
        """The document's text and kind (``.json`` or ``.toml``), read once and kept."""
        if name not in self._texts:
            self._texts[name] = _read_text(name, self._stdin)
        return self._texts[name]

    def __call__(self, name: str) -> Any:
        if name not in self._decoded:
            text, kind = self.text(name)
            self._decoded[name] = _parsed(
                name, kind, lambda: _toml().loads(text) if kind == ".toml" else _json(name, text)
            )
        return self._decoded[name]


_STEP = 1000  # users between two progress updates


def _parsed(name: str, kind: str, parse: Callable[[], Any]) -> Any:
    """``parse()``, its errors as the command reports them."""
    try:
        return parse()
    except RecursionError:
        raise _Fail([f"{name}: nested too deeply to read"]) from None
    except ValueError as err:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise _Fail([f"{name}: not valid {kind[1:].upper()}: {err}"]) from err


MAX_DOCUMENT = 256 * 1024 * 1024  # bytes: about 3 million users; see docs/cli.md


def _read_text(name: str, stdin: IO[str]) -> tuple[str, str]:
    if name == "-":
        raw, kind = _read_stdin(stdin), ".json"
    else:
        path = Path(name)
        kind = path.suffix.lower()
        if kind not in (".json", ".toml"):
            raise _Fail([f"{name}: unsupported file type {kind or '(none)'!r}; use .json or .toml"], USAGE_ERROR)
        raw = _read_file(name, path)
    if len(raw) > MAX_DOCUMENT:
        raise _Fail([f"{name}: larger than the {MAX_DOCUMENT:,}-byte limit for a document"])
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8-sig"), kind
        except UnicodeDecodeError as err:
            raise _Fail([f"{name}: not UTF-8: byte {raw[err.start]:#04x} at offset {err.start}"]) from None
    return raw, kind


def _read_stdin(stdin: IO[str]) -> bytes | str:
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        return bytes(buffer.read(MAX_DOCUMENT + 1))
    return stdin.read(MAX_DOCUMENT + 1)


def _read_file(name: str, path: Path) -> bytes:
    """A regular file's bytes, up to the limit: a FIFO or a device (``/dev/zero``) is refused, never read."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise _Fail([f"{name}: not a regular file; give a .json or .toml file, or - for standard input"])
        with path.open("rb") as file:
            return file.read(MAX_DOCUMENT + 1)
    except OSError as err:
        raise _Fail([f"{name}: cannot read: {err.strerror or err}"]) from err


def _json(name: str, text: str) -> Any:
    """JSON, with a key given twice in one object refused (never the last one silently)."""
    try:
        return documents.loads(text)
    except documents.RepeatedKeys as err:
        raise _repeated(name, err) from None


def _json_array(name: str, text: str, shown: Callable[[int], None]) -> Iterator[Any]:
    """The items of a document that is a JSON list, decoded one at a time; ``shown(position)`` now and then."""
    try:
        yield from documents.items(text, shown, step=_STEP)
    except documents.RepeatedKeys as err:
        raise _repeated(name, err) from None
    except RecursionError:
        raise _Fail([f"{name}: nested too deeply to read"]) from None
    except ValueError as err:
        raise _Fail([f"{name}: not valid JSON: {err}"]) from err


def _repeated(name: str, err: documents.RepeatedKeys) -> _Fail:
    return _Fail(sorted(f"{name}: {path or 'document'}: key {key!r} appears more than once" for path, key in err.where))


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415 -- only for TOML documents
    else:  # pragma: no cover -- Python 3.10; tomli comes with the io extra
        import tomli as tomllib  # noqa: PLC0415
    return tomllib


def _io() -> Any:
    try:
        from . import io  # noqa: PLC0415 -- needs the io extra
    except ImportError as err:  # only without the extra
        raise _Fail(
            ["reading documents needs the io extra: python -m pip install '.[io]' in a clone of scim_roles"],
            USAGE_ERROR,
        ) from err
    return io


def _prefixed(name: str, err: ScimRolesError) -> _Fail:
    return _Fail([f"{name}: {p}" for p in err.problems])


def _load_org(read: _Reader, name: str) -> Org:
    """The org of a document; what loading it warns (a document without ``domains``) is a line of its own."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            org: Org = _io().load_org(read(name))
    except ScimRolesError as err:
        raise _prefixed(name, err) from err
    for warning in caught:
        _error_line(f"WARNING {name}: {warning.message}")
    return org


def _load_users(read: _Reader, name: str, org: Org | None = None, *, keep: bool = True) -> tuple[int, list[User]]:
    """How many users a users document has, and (with ``keep``) the users; every problem, or none.

    A JSON list is decoded and checked one user at a time, so that no more
    than one user's decoded form is held at once; with ``keep=False`` the
    users themselves are not kept either (``check`` of a large document).
    On a terminal, standard error shows the progress.
    """
    text, kind = read.text(name)
    count = 0
    with _progress(len(text), f"{name}: reading users", "B") as bar:

        def shown(position: int) -> None:
            bar.update(position - bar.n)

        start = documents.skip(text, 0)
        if kind == ".json" and text[start : start + 1] == "[":  # a list: read one user at a time
            items: Iterable[Any] = _json_array(name, text, shown)
            size = 0  # it shows its own progress
        else:
            data = read(name)
            if isinstance(data, Mapping) and set(data) == {"users"} and isinstance(data["users"], list):
                data = data["users"]
            if not isinstance(data, list):
                try:
                    return 0, list(_io().load_users(data, org))  # refused: its shape is wrong
                except ScimRolesError as err:
                    raise _prefixed(name, err) from err
            items, size = data, len(data)

        def counted(items: Iterable[Any], size: int) -> Iterator[Any]:
            nonlocal count
            for count, item in enumerate(items, 1):
                if size and count % _STEP == 0:  # a document decoded whole: show how far through its users
                    shown(len(text) * count // size)
                yield item

        try:
            io = _io()
            load = io.load_users if keep else io.check_users  # check_users keeps none: a large document stays small
            loaded = load(counted(items, size), org)
            users: list[User] = list(loaded) if keep else []
        except ScimRolesError as err:
            raise _prefixed(name, err) from err
    return count, users


class _NoProgress:
    """What a progress bar offers, doing nothing: standard error is not a terminal."""

    n = 0

    def update(self, _: int) -> None:
        """Nothing to show."""

    def __enter__(self) -> _NoProgress:  # noqa: PYI034 -- typing.Self needs Python 3.11
        return self

    def __exit__(self, *_: object) -> None:
        return None


def _progress(total: int, what: str, unit: str) -> Any:
    """A progress bar on standard error when it is a terminal (tqdm, from the io extra); else nothing."""
    stream = sys.stderr
    if not total or stream is None or not stream.isatty():
        return _NoProgress()
    from tqdm import tqdm  # noqa: PLC0415 -- only for a terminal

    return tqdm(
        total=total,
        desc=what,
        unit=unit,
        unit_scale=True,
        file=stream,
        leave=False,
        delay=_progress_delay,
        mininterval=_progress_delay / 2,
    )


_progress_delay = 0.5  # seconds: no bar for what is over sooner


def _check_command(read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    if args.db is not None:
        from ._cli_state import check_state  # noqa: PLC0415 -- needs the serve extra's modules

        return check_state(read, args, out)
    if args.tenant is not None:
        raise _Fail(["--tenant names a tenant of a stored state: give it with --db STATE"], USAGE_ERROR)
    if args.org is None:
        raise _Fail(["give an org document (and a users document), or --db STATE"], USAGE_ERROR)
    return _check(read, args.org, args.users, out)


def _explain_command(read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    if args.db is not None:
        from ._cli_state import explain_state  # noqa: PLC0415 -- needs the serve extra's modules

        return explain_state(read, args, out)
    if args.tenant is not None:
        raise _Fail(["--tenant names a tenant of a stored state: give it with --db STATE"], USAGE_ERROR)
    if args.org is None:
        raise _Fail(["give an org document (and a users document), or --db STATE"], USAGE_ERROR)
    if args.users is None:
        raise _Fail(["give a users document or --db STATE, one of them"], USAGE_ERROR)
    org = _load_org(read, args.org)
    _explain(org, tuple(_load_users(read, args.users, org)[1]), args.user, out, as_json=args.json)
    return 0


# -- the commands


def _check(read: _Reader, org_name: str, users_name: str | None, out: IO[str]) -> int:
    lines: list[str] = []
    code = 0
    org = None
    try:
        org = _load_org(read, org_name)
    except _Fail as fail:
        lines, code = list(fail.lines), fail.code
    if users_name is not None:
        try:
            count, _ = _load_users(read, users_name, org, keep=False)  # checked, not kept: a large document stays small
        except _Fail as fail:
            lines += fail.lines
            code = max(code, fail.code)
    if lines:
        raise _Fail(lines, code)
    assert org is not None  # noqa: S101 -- loaded, or lines would say why
    summary = f"{org_name}: ok ({counted(len(org.teams), 'team')}, {counted(len(org.groups), 'group')})"
    if users_name is not None:
        summary += f"; {users_name}: ok ({counted(count, 'user')})"
    out.write(summary + "\n")
    return 0


def _selected(users: tuple[User, ...], wanted: list[str] | None) -> Iterator[User]:
    if not wanted:
        yield from users
        return
    by_id = {u.id: u for u in users}
    missing = [w for w in wanted if w not in by_id]
    if missing:
        raise _Fail([f"--user: no user {m!r} in the users document" for m in missing])
    yield from (by_id[w] for w in dict.fromkeys(wanted))


def _explain(org: Org, users: tuple[User, ...], wanted: list[str] | None, out: IO[str], *, as_json: bool) -> None:
    selected = list(_selected(users, wanted))
    # A bar while writing, when the output goes elsewhere than the terminal the bar is drawn on.
    with _progress(len(selected) if not out.isatty() else 0, "resolving", "users") as bar:
        if as_json:
            out.write("{")
            for i, user in enumerate(selected):  # streamed: one user at a time
                out.write(("" if i == 0 else ",") + f"\n  {json.dumps(user.id)}: ")
                out.write(json.dumps(to_builtins(resolve_memberships(org, user))))
                bar.update(1)
            out.write("\n}\n" if selected else "}\n")
            return
        for i, user in enumerate(selected):
            out.write(("\n" if i else "") + resolve_memberships(org, user).explain() + "\n")
            bar.update(1)


def _print_preview(result: Preview, out: IO[str], *, as_json: bool) -> None:
    out.write((json.dumps(to_builtins(result), indent=2) if as_json else result.summary()) + "\n")


# -- the demo


def _rows(res: Resolution) -> list[tuple[str, str, str, str]]:
    rows = [(res.user_id, m.team, m.role.label, "; ".join(r.describe() for r in m.reasons)) for m in res.memberships]
    if not rows:  # only a deprovisioned user has no membership: every live source grants something
        rows.append((res.user_id, "-", "-", "deprovisioned: no access"))
    for o in res.overridden:
        cause = o.cause.value.replace("_", " ")
        rows.append(("", o.team, f"({o.reason.role.label})", f"overridden ({cause}): {o.reason.describe()}"))
    return rows


def render_demo() -> str:
    """The example org's users as a table (user, team, role, why), manual edits off and on."""
    blocks = []
    for manual_edits in (False, True):
        org = demo_org(manual_edits=manual_edits)
        rows = [("USER", "TEAM", "ROLE", "WHY")]
        for user in demo_users():
            rows += _rows(resolve_memberships(org, user))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{u:{widths[0]}}  {t:{widths[1]}}  {r:{widths[2]}}  {w}".rstrip() for u, t, r, w in rows]
        toggle = "ON" if manual_edits else "OFF"
        blocks.append(f'Example org, "Editing users manually" {toggle}:\n' + "\n".join(lines))
    return "\n\n".join(blocks)
