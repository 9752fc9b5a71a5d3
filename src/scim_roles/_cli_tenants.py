"""The tenant and token commands: ``tenants add|list``, ``tokens add|list|revoke``.

A tenant is an org served at ``/scim/v2/{tenant}``; its tokens are shown
once and stored as hashes. A database (a SQLite file or PostgreSQL) holds
any number of tenants. Needs the ``serve`` extra (Python 3.11+).
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import IO, Any

from ._cli import _Fail, _Reader
from ._cli_state import _org_if_given, _positive, active_tokens_of, open_state, tenants

_SHOWN_ONCE = "shown once: give it to the IdP now; only its hash is stored"


def add_commands(commands: Any) -> None:  # noqa: ANN401 -- argparse's subparsers action has no public type
    """``tenants`` and ``tokens``, each subcommand with its function as ``func``."""
    tenants = commands.add_parser("tenants", help="the tenants of a state: add, list")
    tenant_commands = tenants.add_subparsers(metavar="ACTION", required=True)
    add = tenant_commands.add_parser("add", help="create a tenant from an org document; prints its first token once")
    add.add_argument("tenant", metavar="TENANT", help="tenant id: its endpoint is /scim/v2/TENANT")
    add.add_argument("org", metavar="ORG", help="org document: the tenant's settings")
    add.add_argument(
        "--db", metavar="STATE", required=True, help="a SQLite file (created if new) or postgresql+psycopg://"
    )
    add.add_argument("--json", action="store_true", help='print {"tenant", "endpoint", "token"}')
    add.set_defaults(func=_tenants_add)
    listed = tenant_commands.add_parser("list", help="the tenants and their endpoints")
    listed.add_argument("--db", metavar="STATE", required=True)
    listed.add_argument("--json", action="store_true", help="print a JSON list")
    listed.set_defaults(func=_tenants_list)
    tokens = commands.add_parser("tokens", help="a tenant's bearer tokens: add, list, revoke")
    token_commands = tokens.add_subparsers(metavar="ACTION", required=True)
    new = token_commands.add_parser("add", help="a new token, shown once (at most two active)")
    new.add_argument("tenant", metavar="TENANT")
    new.add_argument("--db", metavar="STATE", required=True)
    new.add_argument("--expires-days", type=_days, metavar="N", help="the token stops working after N days")
    new.add_argument("--json", action="store_true", help='print {"token", "id"}')
    new.set_defaults(func=_tokens_add)
    shown = token_commands.add_parser("list", help="ids and times of a tenant's tokens, never a secret")
    shown.add_argument("tenant", metavar="TENANT")
    shown.add_argument("--db", metavar="STATE", required=True)
    shown.add_argument("--json", action="store_true", help="print a JSON list")
    shown.set_defaults(func=_tokens_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token: refused from every server's next request")
    revoke.add_argument("tenant", metavar="TENANT")
    revoke.add_argument("id", metavar="ID", help="the token's id (tokens list)")
    revoke.add_argument("--db", metavar="STATE", required=True)
    revoke.set_defaults(func=_tokens_revoke)
    log = commands.add_parser("log", help="a tenant's request log: time, method, path, status, reason, duration")
    log.add_argument("tenant", metavar="TENANT")
    log.add_argument("--db", metavar="STATE", required=True)
    log.add_argument("--limit", type=_positive, default=100, metavar="N", help="the last N requests (100)")
    log.add_argument("--json", action="store_true", help="one JSON object per line")
    log.set_defaults(func=_log)


_days = partial(_positive, unit=" of days")


def _endpoint(tenant: str) -> str:
    return f"/scim/v2/{tenant}"


def _tenants_add(read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    from .store import check_tenant_id  # noqa: PLC0415 -- the serve extra

    check_tenant_id(args.tenant)  # before anything is read or created
    org = _org_if_given(read, args.org)
    if args.tenant in tenants(args.db, new=True):
        raise _Fail([f"{args.db}: holds tenant {args.tenant!r} already: each tenant is added once"])
    with open_state(args.db, org, readonly=False, load=False, tenant=args.tenant) as store:
        token_id, token = store.add_token()
    if args.json:
        out.write(json.dumps({"tenant": args.tenant, "endpoint": _endpoint(args.tenant), "token": token}) + "\n")
    else:
        out.write(f"tenant: {args.tenant}\nendpoint: {_endpoint(args.tenant)}\n")
        out.write(f"token: {token}\n  ({_SHOWN_ONCE}; its id: {token_id})\n")
    return 0


def _tenants_list(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    rows = [
        {"tenant": tenant, "endpoint": _endpoint(tenant), "active_tokens": active}
        for tenant, active in active_tokens_of(args.db).items()
    ]
    if args.json:
        out.write(json.dumps(rows) + "\n")
        return 0
    for row in rows:
        active = row["active_tokens"]
        out.write(f"{row['tenant']}\t{row['endpoint']}\t{active} active token{'' if active == 1 else 's'}\n")
    return 0


def _tokens_add(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, readonly=False, load=False, tenant=args.tenant) as store:
        token_id, token = store.add_token(expires_days=args.expires_days)
    if args.json:
        out.write(json.dumps({"token": token, "id": token_id}) + "\n")
    else:
        out.write(f"id: {token_id}\ntoken: {token}\n  ({_SHOWN_ONCE})\n")
    return 0


def _tokens_list(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, load=False, tenant=args.tenant) as store:
        tokens = store.tokens()
    if args.json:
        out.write(json.dumps([t.to_builtins() for t in tokens]) + "\n")
        return 0
    out.write("id\tcreated\texpires\tlast used\trevoked\n")
    for t in tokens:
        out.write("\t".join(v or "-" for v in (t.id, t.created, t.expires, t.last_used, t.revoked)) + "\n")
    return 0


def _tokens_revoke(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, readonly=False, load=False, tenant=args.tenant) as store:
        store.revoke_token(args.id)
    out.write(f"revoked {args.id}: every server refuses it from its next request\n")
    return 0


def _log(_read: _Reader, args: argparse.Namespace, out: IO[str]) -> int:
    with open_state(args.db, load=False, tenant=args.tenant) as store:
        entries = store.requests(limit=args.limit)
    for entry in entries:
        out.write((json.dumps(entry.to_builtins()) if args.json else str(entry)) + "\n")
    return 0
