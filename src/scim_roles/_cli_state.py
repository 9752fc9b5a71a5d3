"""The commands on a stored state (``--db STATE``): serve, settings, edit, changes, explain, check, repair, groups.

A stored state is the truth (RULES.md T1-T7): an org document only seeds a
new one, and a document given with an existing state must be its stored
settings (exit 2 otherwise, naming ``scim-roles edit``). Needs the
``serve`` extra (Python 3.11+).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ._builtins import to_builtins
from ._cli import USAGE_ERROR, _Fail, _load_org, _prefixed, _print_preview, _Reader, _selected, _share
from ._errors import ScimRolesError
from ._model import Org
from ._words import counted


def add_commands(commands: Any) -> None:  # noqa: ANN401 -- argparse's subparsers action has no public type
    """The state commands, each with its function as ``func``."""
    serve = commands.add_parser(
        "serve", help="serve SCIM 2.0 at /scim/v2/TENANT and /scim/v2 (stored tokens, or SCIM_ROLES_TOKEN)"
    )
    serve.add_argument("org", metavar="ORG", nargs="?", help="org document: needed only to create a new state")
    serve.add_argument(
        "--db",
        metavar="STATE",
        required=True,
        help="the state: a SQLite file (created on first run) or postgresql+psycopg://...; every tenant is served",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--public-url",
        metavar="STATE",
        help="where IdPs reach the server (https://scim.example.com), for resource locations;"
        " by default the address a request came in on, never its Host header",
    )
    serve.add_argument(
        "--log-rows", type=_positive, default=10_000, metavar="N", help="the request log keeps N rows (10000)"
    )
    serve.add_argument("--log-days", type=_positive, metavar="D", help="and drops rows older than D days")
    serve.add_argument(
        "--cache-tenants",
        type=_positive,
        default=100,
        metavar="N",
        help="keep at most N tenants' states in memory, least recently used out (100)",
    )
    serve.set_defaults(func=_serve)
    settings = commands.add_parser("settings", help="print a state's stored settings as an org document")
    settings.add_argument("--db", metavar="STATE", required=True)
    settings.set_defaults(func=_settings)
    edit = commands.add_parser("edit", help="preview (and with --apply save) new settings for a state")
    edit.add_argument("after", metavar="AFTER", help="org document: the settings as they should be")
    edit.add_argument("--db", metavar="STATE", required=True)
    edit.add_argument("--apply", action="store_true", help="save exactly what the preview shows")
    edit.add_argument("--strict", action="store_true", help="exit 1, saving nothing, when a guardrail fires")
    edit.add_argument("--max-share", type=_share, default=0.1, metavar="X", help="mass-change threshold (0.1)")
    edit.add_argument("--json", action="store_true", help="print JSON")
    edit.set_defaults(func=_edit)
    changes = commands.add_parser("changes", help="the feed: every membership change, in order")
    changes.add_argument("--db", metavar="STATE", required=True)
    changes.add_argument("--after", type=_seq, default=0, metavar="SEQ", help="only entries after this one")
    changes.add_argument("--json", action="store_true", help="one JSON object per line")
    changes.set_defaults(func=_changes)
    repair = commands.add_parser("repair", help="rewrite a state's derived rows (memberships, feed) from the rules")
    repair.add_argument("--db", metavar="STATE", required=True)
    repair.set_defaults(func=_repair)
    groups = commands.add_parser("groups", help="the synced IdP groups, their members and mappings")
    groups.add_argument("--db", metavar="STATE", required=True)
    groups.add_argument("--json", action="store_true", help="print JSON")
    groups.set_defaults(func=_groups)
    migrate = commands.add_parser("migrate", help="upgrade a state to this release's schema (back it up first)")
    migrate.add_argument("--db", metavar="STATE", required=True, help="a SQLite file or postgresql+psycopg://...")
    migrate.set_defaults(func=_migrate)
    for command in (settings, edit, changes, repair, groups):
        _tenant_option(command)
    from ._cli_tenants import add_commands as tenant_commands  # noqa: PLC0415 -- it imports this module

    tenant_commands(commands)


def _tenant_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--tenant", metavar="TENANT", help="the tenant whose state to use (not needed when the state holds one)"
    )


def _positive(text: str, unit: str = "") -> int:
    """A whole number from 1 on the command line (``unit``: " of days", say, for the message)."""
    if not text.isdigit() or int(text) < 1:
        msg = f"must be a whole number{unit} from 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _seq(text: str) -> int:
    if not text.isdigit():
        msg = f"must be a sequence number (0 or more), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


# -- opening a state


def _store_module() -> Any:  # noqa: ANN401 -- the module, imported only with its extra
    try:
        return importlib.import_module("scim_roles.store")  # needs the scim extra
    except ImportError as err:
        needs = "the SQLite state needs the serve extra (Python 3.11+): python -m pip install '.[serve]'"
        raise _Fail([needs + " in a clone of scim_roles"], USAGE_ERROR) from err


@contextmanager
def open_state(
    name: str, org: Org | None = None, *, readonly: bool = True, load: bool = True, tenant: str | None = None
) -> Iterator[Any]:
    """The state at ``name``, checked against ``org`` and ``tenant`` when given, loaded unless ``load`` is false.

    Every failure, opening it or using it, is a one-line :class:`_Fail`.
    """
    module = _store_module()
    if readonly:
        _must_exist(name)
    with warnings.catch_warnings():
        # Stored settings that claim no domain: check and serve say so in their own words (_NO_DOMAINS).
        warnings.filterwarnings("ignore", message="the org document claims no domain")
        yield from _opened(module, name, org, readonly=readonly, load=load, tenant=tenant)


def _opened(  # noqa: PLR0913 -- open_state's arguments, passed on
    module: Any,  # noqa: ANN401 -- the store module
    name: str,
    org: Org | None,
    *,
    readonly: bool,
    load: bool,
    tenant: str | None,
) -> Iterator[Any]:
    try:
        store = module.SqlStore(name, org, readonly=readonly, tenant=tenant)
        if load:
            store.load()
    except module.SettingsDiffer as err:
        raise _Fail([f"{name}: {p}" for p in err.problems], USAGE_ERROR) from err
    except ScimRolesError as err:
        raise _prefixed(name, err) from err
    except module.StoreUnavailable as err:  # an older state (naming migrate), none, or no database there
        raise _Fail([str(err)]) from err
    try:
        yield store
    except module.StoreUnavailable as err:  # a write that could not be made durable: nothing was written
        raise _Fail([str(err)]) from err
    except ScimRolesError as err:  # stored users that no longer fit the stored settings, say
        raise _prefixed(name, err) from err
    finally:
        store.close()


def _exists(db: str) -> bool:
    """Whether ``--db`` may name a state: a file that is there, or a URL (its database says if it holds one)."""
    return "://" in db or Path(db).is_file()


def _must_exist(db: str) -> None:
    if not _exists(db):
        raise _Fail([f"{db}: no such state file"])


def tenants(db: str, *, new: bool = False) -> tuple[str, ...]:
    """The tenants ``db`` holds (none for a file not made yet, when ``new``); a one-line failure otherwise."""
    module = _store_module()
    if new and not _exists(db):
        return ()
    _must_exist(db)
    try:
        return tuple(module.tenants_of(db))
    except module.StoreUnavailable as err:
        raise _Fail([str(err)]) from err


def active_tokens_of(db: str) -> dict[str, int]:
    """Each tenant ``db`` holds with its number of active tokens; a one-line failure otherwise."""
    module = _store_module()
    _must_exist(db)
    try:
        return dict(module.active_tokens(db))
    except module.StoreUnavailable as err:
        raise _Fail([str(err)]) from err


def _org_if_given(read: _Reader, name: str | None) -> Org | None:
    return None if name is None else _load_org(read, name)


# -- the commands


def _unclaimed(store: Any, drift: Sequence[Any], db: str) -> list[str]:  # noqa: ANN401 -- a SqliteStore
    """The line that says a state's org claims no domain; none when it claims one, or its users do not load."""
    if any(d.what == "state" for d in drift) or store.org.domains:
        return []
    return [_NO_DOMAINS.format(db=db)]


_NO_DOMAINS = (
    "{db}: the org claims no domain: under R14 nobody gets access through SAML or SCIM and every SCIM user"
    " write is refused (S13); claim the org's domains with `scim-roles edit --db {db} AFTER` (previewed);"
    " `scim-roles check --db {db}` then lists who still holds access the rules no longer give"
)


def _serve(read: _Reader, args: argparse.Namespace, _out: IO[str]) -> int:
    token = os.environ.get("SCIM_ROLES_TOKEN", "")
    if token.strip() and token != token.strip():
        raise _Fail(
            ["SCIM_ROLES_TOKEN has spaces or line breaks around it: no request's token would match; remove them"],
            USAGE_ERROR,
        )
    token = token.strip()  # blank: not set
    new = not _exists(args.db)
    if not token and new:  # a new state has no stored token yet
        raise _Fail([_NO_CREDENTIAL], USAGE_ERROR)
    try:
        import uvicorn  # noqa: PLC0415 -- needs the serve extra

        from .asgi import TenantApp, _public_url  # noqa: PLC0415
    except ImportError as err:
        raise _Fail(
            ["serve needs the serve extra (Python 3.11+): python -m pip install '.[serve]' in a clone of scim_roles"],
            USAGE_ERROR,
        ) from err
    if args.public_url is not None:
        try:
            _public_url(args.public_url)
        except ScimRolesError as err:
            raise _Fail([f"--public-url {err.problems[0].detail}"], USAGE_ERROR) from err
    org = _org_if_given(read, args.org)
    if org is None and new:
        raise _Fail([f"{args.db}: no such state file; give the org document to create it"], USAGE_ERROR)
    module = _store_module()
    if org is not None:  # creates the state, or checks the document is its settings
        with open_state(args.db, org, readonly=False, load=False):
            pass
    held = tenants(args.db)
    default = held[0] if len(held) == 1 else None
    if default is not None:  # one tenant, served at /scim/v2 too: checked before serving, as a 0.1 server was
        _check_before_serving(args.db, default, token)
    elif token:
        sys.stderr.write(
            f"scim-roles: WARNING {args.db} holds {len(held)} tenants: SCIM_ROLES_TOKEN authenticates none of"
            " them (it is the token of a one-tenant state); each tenant's stored tokens do\n"
        )
        token = ""
    _log_to_stderr()
    engine = module.open_database(args.db)
    stores = functools.lru_cache(maxsize=1024)(lambda tenant: module.SqlStore(engine, tenant=tenant))
    request_log = module.RequestLog(stores, keep_rows=args.log_rows, keep_days=args.log_days)
    app = TenantApp(
        engine,
        cache_size=args.cache_tenants,
        default_tenant=default,
        token=token or None,
        public_url=args.public_url,
        request_log=request_log,
    )
    where = f"http://{args.host}:{args.port}/scim/v2"
    served = f"{where}/{default} (and /scim/v2)" if default is not None else f"{where}/TENANT for its tenants"
    sys.stderr.write(f"scim-roles: serving SCIM 2.0 at {served}\n")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        request_log.close()
        engine.dispose()
    return 0


def _check_before_serving(db: str, tenant: str, token: str) -> None:
    """A one-tenant state: a token to serve with, and no drift (a 0.1 server checked the same)."""
    with open_state(db, tenant=tenant) as store:
        now = datetime.now(timezone.utc)
        if not token and not any(t.active_at(now) for t in store.tokens()):
            raise _Fail([_NO_CREDENTIAL], USAGE_ERROR)
        drift = store.check()
        unclaimed = _unclaimed(store, drift, db)
    if drift:
        lines = [f"{db}: {d}" for d in drift]
        raise _Fail([*lines, *unclaimed, f"{db}: the state has drifted: see `scim-roles repair --db {db}`"])
    for line in unclaimed:
        sys.stderr.write(f"scim-roles: WARNING {line}\n")


_NO_CREDENTIAL = (
    "set SCIM_ROLES_TOKEN to the bearer token the IdP will send (never on the command line),"
    " or add a stored token to an existing state: scim-roles tokens add TENANT --db STATE"
)


def _log_to_stderr() -> None:
    """The service's own log lines (a refused write, a store gone) on standard error, one line each."""
    log = logging.getLogger("scim_roles")
    if not log.handlers:  # a host that configured it keeps its own
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _settings(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, tenant=args.tenant) as store:
        settings = to_builtins(store.org)
    out.write(json.dumps(settings, indent=2) + "\n")
    return 0


def _edit(read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    after = _load_org(read, args.after)
    module = _store_module()
    with open_state(args.db, readonly=not args.apply, tenant=args.tenant) as store:
        try:
            if args.apply:
                result = store.put_org(after, actor=None, max_share=args.max_share, strict=args.strict)
            else:
                result = store.preview_org(after, max_share=args.max_share)
        except module.GuardrailFired as refused:
            _print_preview(refused.preview, out, as_json=args.json)
            fired = ", ".join(dict.fromkeys(f.kind.value for f in refused.preview.findings))
            raise _Fail([f"--strict: a guardrail fired: {fired}; nothing was saved"]) from refused
    _print_preview(result, out, as_json=args.json)
    if args.apply:
        sys.stderr.write(f"scim-roles: {args.db}: saved\n")
    elif args.strict and result.findings:
        fired = ", ".join(dict.fromkeys(f.kind.value for f in result.findings))
        raise _Fail([f"--strict: a guardrail fired: {fired}"])
    return 0


def _changes(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, tenant=args.tenant) as store:
        entries = store.changes(args.after)
    for entry in entries:
        if args.json:
            out.write(json.dumps(entry.to_builtins()) + "\n")
        else:
            before = "-" if entry.before is None else entry.before.value
            after = "-" if entry.after is None else entry.after.value
            out.write(f"{entry.seq} {entry.at} {entry.origin} {entry.user_id!r} {entry.team!r} {before} -> {after}\n")
    return 0


def explain_state(read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    """``explain [ORG] --db STATE``: the stored settings and users, whole or not at all."""
    from ._cli import _explain  # noqa: PLC0415 -- the document command's writer

    if args.users is not None:
        raise _Fail(["give a users document or --db STATE, one of them"], USAGE_ERROR)
    with open_state(args.db, _org_if_given(read, args.org), tenant=args.tenant) as store:
        directory = store.load().directory
    users = tuple(sorted(directory.users.values(), key=lambda u: u.id))
    # Whole or absent: the Directory checked every user against the stored settings when it loaded, so no
    # resolution can fail once the first line is written.
    _explain(directory.org, tuple(_selected(users, args.user)), None, out, as_json=args.json)
    return 0


def check_state(read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    """``check [ORG] --db STATE``: the stored state against the rules (T6); exit 1 naming every difference."""
    if args.users is not None:
        raise _Fail(["give a users document or --db STATE, one of them"], USAGE_ERROR)
    with open_state(args.db, _org_if_given(read, args.org), load=False, tenant=args.tenant) as store:
        drift = store.check()
        directory = store.load().directory if not drift else None
        unclaimed = _unclaimed(store, drift, args.db)
    if directory is None:
        raise _Fail([*(f"{args.db}: {d}" for d in drift), *unclaimed])
    for line in unclaimed:
        sys.stderr.write(f"scim-roles: WARNING {line}\n")
    scim = sum(1 for u in directory.users.values() if u.scim)
    org = directory.org
    sizes = f"{counted(len(org.teams), 'team')}, {counted(len(org.groups), 'group')}"
    head = f"{args.org}: ok ({sizes}); " if args.org else ""
    out.write(f"{head}{args.db}: ok ({counted(len(directory.users), 'user')}, {scim} SCIM-managed; no drift)\n")
    return 0


def _migrate(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    module = _store_module()
    _must_exist(args.db)
    try:
        before, after = module.migrate(args.db)
    except module.StoreUnavailable as err:
        raise _Fail([str(err)]) from err
    if before == after:
        out.write(f"{args.db}: up to date (schema {after})\n")
    else:
        out.write(f"{args.db}: migrated from schema {before} to {after}\n")
    return 0


def _repair(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, readonly=False, load=False, tenant=args.tenant) as store:
        changes = store.repair()
    for change in changes:
        out.write(f"  {change.describe()}\n")
    out.write(f"{args.db}: repaired ({len(changes)} feed entries appended)\n")
    return 0


def _groups(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, tenant=args.tenant) as store:
        directory = store.load().directory
    rows = []
    for group in directory.org.groups:
        resource = directory.group_resource(group.id)
        assert resource is not None  # noqa: S101 -- every synced group has a record
        rows.append(
            {
                "id": group.id,
                "displayName": resource["displayName"],
                "members": len(directory.members(group.id)),
                "teams": sorted(group.teams),
                "role": None if group.role is None else group.role.value,
            }
        )
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    for row in rows:
        teams = ", ".join(repr(t) for t in row["teams"]) or "(default teams)"
        role = row["role"] or "(default role)"
        out.write(f"{row['id']!r} {row['displayName']!r}: {row['members']} members -> {teams} as {role}\n")
    return 0
