"""Tenants and their bearer tokens: minted once, stored as hashes, rotated, expired, revoked (extras scim, serve)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from scim_roles import InvalidArgument, Problem
from scim_roles import _tokens as tokens
from scim_roles.store import LoggedRequest, SqliteStore, TokenInfo, TooManyTokens, check_tenant_id

from helpers import ORG, article_org, cli
from serve_helpers import free_port, request

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_token_is_prefix_lookup_id_and_secret_and_only_its_hash_is_kept() -> None:
    """The shape, the split, the hash; a malformed token has no parts; an unknown id does the same hashing."""
    lookup, token, hashed = tokens.mint()
    prefix, found, secret = token.split("_", 2)
    assert (prefix, found, len(lookup), len(token.split("_", 2)[2])) == ("scimroles", lookup, 12, 43)
    assert tokens.split(token) == (lookup, secret)
    assert hashed == tokens.digest(secret) != secret
    assert len(secret) >= 43  # 32 bytes from secrets, URL-safe base64
    assert tokens.matches(secret, hashed)
    assert not tokens.matches(secret + "x", hashed)
    assert not tokens.matches(tokens.digest("x") and "no such token", None)  # the dummy's own text: still False
    for bad in (
        "",
        "scimroles",
        f"other_{lookup}_{secret}",
        f"scimroles_{lookup.upper()}_{secret}",
        f"scimroles_{lookup}x_{secret}",
        f"scimroles_{lookup}_",
        f"scimroles_{lookup[:-1]}_{secret}",
    ):
        assert tokens.split(bad) is None, bad
    assert tokens.mint()[1] != token


def test_tenant_ids_are_url_segments_that_name_no_scim_endpoint() -> None:
    """Lower-case letters, digits, hyphens, 1 to 63; never Users, Groups or another endpoint's name."""
    from scim_roles.store import is_tenant_id  # noqa: PLC0415

    for good in ("acme", "a", "0-org", "x" * 63):
        assert check_tenant_id(good) == good
        assert is_tenant_id(good)
    for bad in ("", "-acme", "Acme", "ac me", "acme/x", "x" * 64, "ac_me", "é", 7, None):
        with pytest.raises(InvalidArgument, match="lower-case letters"):
            check_tenant_id(bad)  # type: ignore[arg-type]
        assert not is_tenant_id(bad)
    for reserved in ("users", "groups", "schemas", "me", "bulk", "resourcetypes", "serviceproviderconfig"):
        assert not is_tenant_id(reserved)
        with pytest.raises(InvalidArgument) as err:
            check_tenant_id(reserved)
        assert err.value.problems == (
            Problem("tenant", "id", f"{reserved!r} names a SCIM endpoint: choose another id", reserved),
        )


def test_a_database_holds_many_tenants_each_claiming_its_own_domains(tmp_path: Path) -> None:
    """A tenant is created from its org (``default`` in a new database, if not named), found again by id, or
    alone without it; a domain is claimed by one tenant only, at creation and at a settings edit."""
    import attrs  # noqa: PLC0415

    from scim_roles.store import DomainClaimed, tenants_of  # noqa: PLC0415

    assert SqliteStore(tmp_path / "d.db", article_org()).tenant == "default"
    db = tmp_path / "a.db"
    store = SqliteStore(db, article_org(), tenant="acme")
    assert store.tenant == "acme"
    assert SqliteStore(db).tenant == "acme"  # the only one
    beta_org = attrs.evolve(article_org(), domains=["beta.example"])
    beta = SqliteStore(db, beta_org, tenant="beta")
    assert tenants_of(db) == ("acme", "beta")
    assert SqliteStore(db, tenant="beta").org == beta.org
    with pytest.raises(InvalidArgument) as err:
        SqliteStore(db, tenant="other")
    assert err.value.problems == (
        Problem(
            "SqlStore",
            "tenant",
            f"{db} holds no tenant 'other' (it holds 'acme', 'beta'); add it with its org document",
            "other",
        ),
    )
    with pytest.raises(InvalidArgument, match=r"holds tenants 'acme', 'beta': name one \(tenant=, --tenant\)"):
        SqliteStore(db)
    with pytest.raises(DomainClaimed) as taken:
        SqliteStore(db, article_org(), tenant="gamma")
    assert taken.value.problems == (
        Problem("org", "domains", "'example.com' is claimed by tenant 'acme': a domain has one tenant", "example.com"),
    )
    assert tenants_of(db) == ("acme", "beta")  # refused: nothing was created
    with pytest.raises(DomainClaimed, match=r"'example\.com' is claimed by tenant 'acme'"):
        beta.put_org(attrs.evolve(beta.org, domains=["beta.example", "example.com"]), actor=None)
    assert beta.org.domains == frozenset({"beta.example"})
    beta.put_org(attrs.evolve(beta.org, domains=["other.example"]), actor=None)  # beta.example is free again
    store.put_org(attrs.evolve(store.org, domains=["example.com", "beta.example"]), actor=None)
    with closing(sqlite3.connect(db)) as raw:
        assert raw.execute("SELECT domain, tenant FROM domains ORDER BY 1").fetchall() == [
            ("beta.example", "acme"), ("example.com", "acme"), ("other.example", "beta")
        ]  # fmt: skip
    with pytest.raises(InvalidArgument, match="lower-case"):
        SqliteStore(tmp_path / "b.db", article_org(), tenant="Bad")
    assert not (tmp_path / "b.db").exists()


def test_tokens_rotate_two_at_a_time_expire_and_revoke(tmp_path: Path) -> None:
    """At most two active; an expired or revoked one frees a place; each refused the moment it stops."""
    clock = Clock()
    store = SqliteStore(tmp_path / "s.db", article_org(), clock=clock)
    first_id, first = store.add_token()
    second_id, second = store.add_token(expires_days=2)
    assert store.check_token(first)
    assert store.check_token(second)
    with pytest.raises(TooManyTokens) as err:
        store.add_token()
    assert err.value.problems == (
        Problem(
            "add_token",
            "tokens",
            f"tenant 'default' has 2 active tokens ({first_id!r}, {second_id!r}):"
            " revoke one first (`scim-roles tokens revoke`)",
        ),
    )
    clock.now = T0 + timedelta(days=2)  # the second expires exactly now
    assert not store.check_token(second)
    assert store.check_token(first)
    third_id, third = store.add_token()  # the expired one no longer counts
    store.revoke_token(first_id)
    assert not store.check_token(first)
    assert store.check_token(third)
    listed = store.tokens()
    assert [t.id for t in listed] == [first_id, second_id, third_id]
    assert listed[0] == TokenInfo(
        first_id, "2026-11-30T09:00:00Z", None, "2026-12-02T09:00:00Z", "2026-12-02T09:00:00Z"
    )
    assert listed[1].expires == "2026-12-02T09:00:00Z"
    assert [t.active_at(clock.now) for t in listed] == [False, False, True]
    assert "hash" not in listed[0].to_builtins()
    for token_id, detail in ((first_id, "is revoked already"), ("nope", "is no token of this tenant")):
        with pytest.raises(InvalidArgument) as err2:
            store.revoke_token(token_id)
        assert err2.value.problems == (Problem("revoke_token", "id", f"{token_id!r} {detail}", token_id),)
    for days in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgument, match="expires_days"):
            store.add_token(expires_days=days)  # type: ignore[arg-type]
    with closing(sqlite3.connect(tmp_path / "s.db")) as raw:
        (stored,) = raw.execute("SELECT group_concat(hash) FROM tokens").fetchone()
    assert (tokens.split(third) or ("", third))[1] not in stored  # only hashes on disk


def test_a_wrong_unknown_or_malformed_token_is_refused(tmp_path: Path) -> None:
    """Another state's token, a changed secret, an unknown id, a token of another shape: all simply False."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    other = SqliteStore(tmp_path / "o.db", article_org(), tenant="other")
    _, mine = store.add_token()
    _, theirs = other.add_token()
    lookup, secret = tokens.split(mine) or ("", "")
    for presented in (theirs, f"scimroles_{lookup}_{secret}x", f"scimroles_{'0' * 12}_{secret}", "s3cret", ""):
        assert not store.check_token(presented), presented
    assert store.check_token(mine)


def test_last_use_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    """Cheap: a request within a minute of the recorded use writes nothing."""
    clock = Clock()
    store = SqliteStore(tmp_path / "s.db", article_org(), clock=clock)
    token_id, token = store.add_token()
    assert store.tokens()[0].last_used is None
    assert store.check_token(token)
    clock.now = T0 + timedelta(seconds=59)
    assert store.check_token(token)
    assert store.tokens()[0].last_used == "2026-11-30T09:00:00Z"
    clock.now = T0 + timedelta(seconds=60)
    assert store.check_token(token)
    assert store.tokens()[0] == TokenInfo(token_id, "2026-11-30T09:00:00Z", None, "2026-11-30T09:01:00Z", None)


def test_tenant_and_token_commands(tmp_path: Path) -> None:
    """tenants add/list, tokens add/list/revoke, text and JSON; the token shown once; refusals exit 1 or 2."""
    db = str(tmp_path / "acme.db")
    code, out, err = cli("tenants", "add", "acme", ORG, "--db", db, "--json")
    assert (code, err) == (0, "")
    added = json.loads(out)
    assert (added["tenant"], added["endpoint"]) == ("acme", "/scim/v2/acme")
    first_id = tokens.split(added["token"])[0]  # type: ignore[index]
    assert cli("tenants", "add", "acme", ORG, "--db", db) == (
        1,
        "",
        f"scim-roles: {db}: holds tenant 'acme' already: each tenant is added once\n",
    )
    code, out, _ = cli("tenants", "add", "beta", ORG, "--db", str(tmp_path / "beta.db"))
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["tenant: beta", "endpoint: /scim/v2/beta"]
    assert lines[2].startswith("token: scimroles_")
    assert lines[3].startswith("  (shown once: give it to the IdP now; only its hash is stored; its id: ")
    code, _, err = cli("tenants", "add", "Users", ORG, "--db", str(tmp_path / "u.db"))
    assert (code, "lower-case letters" in err, (tmp_path / "u.db").exists()) == (1, True, False)
    assert cli("tenants", "list", "--db", db, "--json") == (
        0,
        '[{"tenant": "acme", "endpoint": "/scim/v2/acme", "active_tokens": 1}]\n',
        "",
    )
    assert cli("tenants", "list", "--db", db) == (0, "acme\t/scim/v2/acme\t1 active token\n", "")
    code, out, _ = cli("tokens", "add", "acme", "--db", db, "--expires-days", "30", "--json")
    second = json.loads(out)
    assert (code, sorted(second)) == (0, ["id", "token"])
    code, out, err = cli("tokens", "add", "acme", "--db", db)
    assert (code, out) == (1, "")
    assert "has 2 active tokens" in err
    code, out, _ = cli("tokens", "list", "acme", "--db", db, "--json")
    assert code == 0
    listed = json.loads(out)
    assert [t["id"] for t in listed] == [first_id, second["id"]]
    assert listed[1]["expires"] is not None
    assert added["token"] not in out
    code, out, _ = cli("tokens", "list", "acme", "--db", db)
    assert out.splitlines()[0] == "id\tcreated\texpires\tlast used\trevoked"
    assert out.splitlines()[1].startswith(f"{first_id}\t")
    assert out.splitlines()[1].endswith("\t-\t-\t-")
    assert cli("tokens", "revoke", "acme", first_id, "--db", db) == (
        0,
        f"revoked {first_id}: every server refuses it from its next request\n",
        "",
    )
    code, out, _ = cli("tokens", "add", "acme", "--db", db)
    assert (code, out.splitlines()[0].startswith("id: "), out.splitlines()[1].startswith("token: ")) == (0, True, True)
    code, _, err = cli("tokens", "list", "beta", "--db", db)
    assert (code, err) == (
        1,
        (
            f"scim-roles: {db}: SqlStore: tenant: {db} holds no tenant 'beta' (it holds 'acme');"
            " add it with its org document\n"
        ),
    )
    for usage in (
        ("tokens", "add", "acme", "--db", db, "--expires-days", "0"),
        ("log", "acme", "--db", db, "--limit", "0"),
        ("serve", "--db", db, "--log-rows", "x"),
        ("serve", "--db", db, "--log-days", "-1"),
    ):
        with pytest.raises(SystemExit) as exited:  # argparse's own usage error
            cli(*usage)
        assert exited.value.code == 2
    # --tenant on the state commands: checked against the state's tenant.
    assert cli("check", "--db", db, "--tenant", "acme")[0] == 0
    assert cli("changes", "--db", db, "--tenant", "beta")[0] == 1
    assert cli("check", ORG, "--tenant", "acme") == (
        2,
        "",
        "scim-roles: --tenant names a tenant of a stored state: give it with --db STATE\n",
    )
    assert cli("explain", ORG, "--tenant", "acme")[0] == 2


def test_serve_answers_a_tenant_with_its_stored_tokens_and_sees_a_revoke_from_elsewhere(tmp_path: Path) -> None:
    """Two server processes on one state, no SCIM_ROLES_TOKEN: /scim/v2/acme and /scim/v2 with a stored token;
    a token revoked by another process is refused by both at their next request, with the same 401 as a token
    of another tenant, an unknown one or none; the second token goes on working (rotation)."""
    db = tmp_path / "acme.db"
    _, out, _ = cli("tenants", "add", "acme", ORG, "--db", str(db), "--json")
    old = json.loads(out)["token"]
    _, out, _ = cli("tokens", "add", "acme", "--db", str(db), "--json")
    new = json.loads(out)["token"]
    _, out, _ = cli("tenants", "add", "beta", ORG, "--db", str(tmp_path / "beta.db"), "--json")
    beta = json.loads(out)["token"]
    env = {k: v for k, v in os.environ.items() if k != "SCIM_ROLES_TOKEN"}
    ports = [free_port(), free_port()]
    logs = [(tmp_path / f"{p}.log").open("wb") for p in ports]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "scim_roles", "serve", "--db", str(db), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for port, log in zip(ports, logs, strict=True)
    ]
    try:
        bases = [f"http://127.0.0.1:{p}/scim/v2/acme" for p in ports]
        for base in bases:
            _wait(base, old)
        for base in bases:
            assert request(base, "GET", "/Users", token=old)[0] == 200
            status, body = request(base, "POST", "/Users", {"userName": f"u{base[-20:-15]}@example.com"}, token=new)
            assert (status, body["meta"]["location"].startswith(base + "/Users/")) == (201, True)
            assert request(base.removesuffix("/acme"), "GET", "/Users", token=new)[0] == 200  # as a 0.1 IdP calls
        assert cli("tokens", "revoke", "acme", tokens.split(old)[0], "--db", str(db))[0] == 0  # type: ignore[index]
        refusals = [request(base, "GET", "/Users", token=t) for base in bases for t in (old, beta, "scimroles_x", "")]
        assert {json.dumps(r, sort_keys=True) for r in refusals} == {
            json.dumps(
                [
                    401,
                    {
                        "detail": "a valid bearer token is required",
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": "401",
                    },
                ],
                sort_keys=True,
            )
        }
        for base in bases:
            assert request(base, "GET", "/Users", token=new)[0] == 200
            # no tenant of this one-tenant state: the path is the default tenant's, as a 0.1 server answered it
            assert request(base.removesuffix("/acme") + "/beta", "GET", "/Users", token=new)[0] == 404
            assert request(base.removesuffix("/acme") + "/beta", "GET", "/Users", token=beta)[0] == 401
        # Both servers' request logs reach the state within about a second: the ten refusals among them.
        deadline = time.monotonic() + 10
        while True:
            code, out, _ = cli("log", "acme", "--db", str(db), "--limit", "1000", "--json")
            refused = [json.loads(line) for line in out.splitlines() if '"wrong token"' in line]
            if len(refused) >= 10 or time.monotonic() > deadline:  # 2 servers x (4 refused tokens + beta's)
                break
            time.sleep(0.1)
        assert (code, len(refused), {r["status"] for r in refused}) == (0, 10, {401})
        code, out, _ = cli("log", "acme", "--db", str(db), "--limit", "1")
        assert (code, out.count("\n"), out.startswith("at=")) == (0, 1, True)
        on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("acme.db*"))
        for token in (old, new, beta):
            _, secret = tokens.split(token) or ("", token)
            assert secret.encode() not in on_disk  # a hash, never a secret
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for log in logs:
            log.close()


def _wait(base: str, token: str) -> None:
    """Until the server at ``base`` answers (with any status)."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            request(base, "GET", "/ServiceProviderConfig", token=token, timeout=1)
        except OSError:
            time.sleep(0.05)
        else:
            return
    msg = f"no server at {base}"
    raise RuntimeError(msg)


def test_serve_takes_stored_tokens_and_the_environment_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With SCIM_ROLES_TOKEN set, it and the stored tokens are good; without it, a stored active token is needed
    (exit 2 naming `tokens add` when every stored one is revoked)."""
    import uvicorn  # noqa: PLC0415

    presented = ["", "", "", ""]
    ran: list[tuple[bool, ...]] = []  # what the running server's check said of each presented token
    monkeypatch.setattr(
        uvicorn, "run", lambda app, **_: ran.append(tuple(map(app._app("acme", presented[0])._check, presented)))
    )
    db = str(tmp_path / "acme.db")
    _, out, _ = cli("tenants", "add", "acme", ORG, "--db", db, "--json")
    presented[:] = [json.loads(out)["token"], "from-the-environment", "from-the-environment2", "XXXX"]
    stored = presented[0]
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "from-the-environment")
    assert cli("serve", "--db", db)[0] == 0
    assert ran[-1] == (True, True, False, False)
    monkeypatch.delenv("SCIM_ROLES_TOKEN")
    assert cli("serve", "--db", db)[0] == 0
    assert ran[-1] == (True, False, False, False)
    assert cli("tokens", "revoke", "acme", tokens.split(stored)[0], "--db", db)[0] == 0  # type: ignore[index]
    assert cli("serve", "--db", db) == (
        2,
        "",
        (
            "scim-roles: set SCIM_ROLES_TOKEN to the bearer token the IdP will send (never on the command line),"
            " or add a stored token to an existing state: scim-roles tokens add TENANT --db STATE\n"
        ),
    )
    assert len(ran) == 2


def test_the_request_log_keeps_what_was_asked_and_why_it_was_refused_never_a_token_or_a_body(
    tmp_path: Path,
) -> None:
    """Through the app: each request's method, path, status, reason and duration; a refusal's reason in words."""
    from scim_roles.asgi import ScimApp  # noqa: PLC0415
    from test_asgi import call, exchange  # noqa: PLC0415

    logged: list[LoggedRequest] = []
    store = SqliteStore(tmp_path / "s.db", article_org())
    ids = iter(range(100))
    app = ScimApp(
        store, token="s3cret-token", request_log=logged.append, clock=lambda: T0, mint_id=lambda: f"u{next(ids)}"
    )
    ann = json.dumps({"userName": "ann@example.com", "password": "hunter2"}).encode()
    call(app, "POST", "/Users", json.dumps({"userName": "ann@example.com"}).encode())
    call(app, "POST", "/Users", json.dumps({"userName": "ANN@example.com"}).encode())
    call(app, "POST", "/Users", json.dumps({"userName": "bob@elsewhere.test"}).encode())
    call(app, "GET", "/Users/a b", token="not-the-t0ken")
    call(app, "GET", "/Users/nobody")
    call(app, "POST", "/Users", ann, content_type="text/plain")
    call(app, "POST", "/Users", b"x" * (1024 * 1024 + 1))
    exchange(app, "GET", "/Users", [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")], [])
    call(app, "DELETE", "/Users")
    call(app, "POST", "/Users", ann)
    assert [(e.method, e.path, e.status, e.reason) for e in logged] == [
        ("POST", "/Users", 201, ""),
        ("POST", "/Users", 409, "conflict"),
        ("POST", "/Users", 400, "out of domain"),
        ("GET", "/Users/a b", 401, "wrong token"),
        ("GET", "/Users/nobody", 404, "not found"),
        ("POST", "/Users", 415, "unsupported media type"),
        ("POST", "/Users", 413, "too large"),
        ("GET", "/Users", 400, "invalid"),
        ("DELETE", "/Users", 405, "method not allowed"),
        ("POST", "/Users", 400, "invalid"),  # a password (S8)
    ]
    assert {e.at for e in logged} == {"2026-11-30T09:00:00Z"}
    assert all(e.ms >= 0 and e.seq is None for e in logged)
    store.log_requests(logged)
    text = "\n".join(map(str, store.requests()))
    for secret in ("s3cret-token", "hunter2", "not-the-t0ken"):
        assert secret not in text
    assert str(store.requests()[3]).startswith(
        'at=2026-11-30T09:00:00Z method="GET" path="/Users/a b" status=401 reason="wrong token" ms='
    )


def test_the_request_log_is_bounded_by_rows_and_days(tmp_path: Path) -> None:
    """The oldest rows past the limit go, and with a day limit the rows older than it; ``requests`` gives the
    last ones, oldest first."""
    from scim_roles.store import LoggedRequest  # noqa: PLC0415

    clock = Clock()
    store = SqliteStore(tmp_path / "s.db", article_org(), clock=clock)
    old = LoggedRequest("2026-11-20T09:00:00Z", "GET", "/Users", 200, "", 1.0)
    new = [LoggedRequest(f"2026-11-30T09:00:0{i}Z", "GET", f"/Users/{i}", 200, "", 1.0) for i in range(5)]
    store.log_requests([old, *new])
    assert [e.path for e in store.requests()] == ["/Users", *(e.path for e in new)]
    assert [e.seq for e in store.requests(limit=2)] == [5, 6]
    store.log_requests([], keep_days=7)
    assert [e.path for e in store.requests()] == [e.path for e in new]
    store.log_requests(new[:1], keep_rows=3)
    assert [(e.seq, e.path) for e in store.requests()] == [(5, "/Users/3"), (6, "/Users/4"), (7, "/Users/0")]


def test_the_request_log_writer_writes_in_the_background_and_keeps_what_it_could_not_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """About once a period, off the request path; a state that cannot be written keeps the entries for the
    next try with one warning; close writes what is left."""
    from scim_roles.store import LoggedRequest, RequestLog  # noqa: PLC0415

    db = tmp_path / "s.db"
    store = SqliteStore(db, article_org())
    entry = LoggedRequest("2026-11-30T09:00:00Z", "GET", "/Users", 200, "", 1.0)
    writer = RequestLog(store, every=0.01)
    writer(entry)
    end = time.monotonic() + 10
    while not store.requests() and time.monotonic() < end:
        time.sleep(0.01)
    assert len(store.requests()) == 1
    writer.close()
    writer.flush()  # nothing kept: nothing written
    stopped = RequestLog(store, keep_rows=2, every=3600)
    moved = tmp_path / "moved.db"
    db.rename(moved)
    db.write_bytes(b"")  # another file at the path: the store refuses to write to it
    stopped(entry)
    stopped(entry)
    stopped(entry)
    stopped.flush()
    assert "the request log cannot be written now:" in caplog.text
    db.unlink()
    moved.rename(db)
    stopped.close()  # the kept entries (the last keep_rows of them) now written, and the log pruned to keep_rows
    assert [e.seq for e in store.requests()] == [2, 3]


PLUS_2 = timezone(timedelta(hours=2))


def test_times_are_stored_in_utc_whatever_the_clock_s_zone(tmp_path: Path) -> None:
    """A clock two hours east: created, expires, last used and the request log's times are UTC, with a Z."""
    from scim_roles.asgi import ScimApp  # noqa: PLC0415
    from test_asgi import call  # noqa: PLC0415

    east = T0.astimezone(PLUS_2)
    store = SqliteStore(tmp_path / "s.db", article_org(), clock=lambda: east)
    token_id, token = store.add_token(expires_days=1)
    assert store.check_token(token)
    assert store.tokens() == (
        TokenInfo(token_id, "2026-11-30T09:00:00Z", "2026-12-01T09:00:00Z", "2026-11-30T09:00:00Z", None),
    )
    logged: list[LoggedRequest] = []
    call(ScimApp(store, token="t", request_log=logged.append, clock=lambda: east), "GET", "/Users", token="t")
    assert logged[0].at == "2026-11-30T09:00:00Z"


def test_a_token_is_good_even_when_its_last_use_cannot_be_written(tmp_path: Path) -> None:
    """Authentication reads; the last-use write is best effort: a state that refuses writes refuses no token."""
    db = tmp_path / "s.db"
    store = SqliteStore(db, article_org())
    _, token = store.add_token()
    db.rename(tmp_path / "moved.db")
    db.write_bytes(b"")  # the store's file replaced: its writes fail, StoreUnavailable
    assert store.check_token(token)


def test_tenant_ids_and_day_counts_are_refused_with_their_reason() -> None:
    """The exact problems, and the boundaries: 1 day, 1 row, "0" and "x" refused."""
    import argparse  # noqa: PLC0415

    from scim_roles._cli_state import _positive  # noqa: PLC0415
    from scim_roles._cli_tenants import _days  # noqa: PLC0415

    with pytest.raises(InvalidArgument) as err:
        check_tenant_id("Acme")
    assert err.value.problems == (
        Problem(
            "tenant",
            "id",
            "must be 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit, got 'Acme'",
        ),
    )
    assert (_positive("1"), _days("1"), _positive("12")) == (1, 1, 12)
    for parse, unit in ((_positive, ""), (_days, " of days")):
        for bad in ("0", "x", "-1"):
            with pytest.raises(argparse.ArgumentTypeError) as refused:
                parse(bad)
            assert str(refused.value) == f"must be a whole number{unit} from 1, got {bad!r}"


def test_add_token_takes_whole_days_from_one(tmp_path: Path) -> None:
    """One day is the least; anything else is refused with the field and the value named."""
    store = SqliteStore(tmp_path / "s.db", article_org(), clock=Clock())
    store.add_token(expires_days=1)
    with pytest.raises(InvalidArgument) as err:
        store.add_token(expires_days=0)
    assert err.value.problems == (Problem("add_token", "expires_days", "must be a whole number of days from 1, got 0"),)


def test_the_reason_of_each_kind_of_answer() -> None:
    """Successes have none; statuses without a word of their own are "invalid" (4xx) or "error" (5xx)."""
    from scim_roles.asgi import _reason  # noqa: PLC0415

    assert [_reason(s, b"") for s in (200, 201, 204, 399, 400, 403, 499, 500, 501, 503)] == [
        "",
        "",
        "",
        "",
        "invalid",
        "invalid",
        "invalid",
        "error",
        "error",
        "unavailable",
    ]
    assert _reason(400, b'{"detail": "... is not claimed (S13)"}') == "out of domain"
    assert _reason(404, b"(S13)") == "not found"


def test_public_urls_plain_http_and_any_path() -> None:
    """http and https, any host and path; one trailing slash or more dropped."""
    from scim_roles.asgi import _public_url  # noqa: PLC0415

    assert _public_url("http://X.example:8080/") == "http://X.example:8080"
    assert _public_url("https://scim.example.com/X/") == "https://scim.example.com/X"
    assert _public_url("https://scim.example.com//") == "https://scim.example.com"


def test_the_request_log_writer_runs_as_a_named_daemon_and_passes_its_retention_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its thread never keeps a stopping server alive; keep_days reaches the store; entries that arrive while a
    write fails come after the ones kept back; the warning names the failure."""
    from scim_roles.store import LoggedRequest, RequestLog, StoreUnavailable  # noqa: PLC0415

    store = SqliteStore(tmp_path / "s.db", article_org(), clock=Clock())
    store.log_requests([LoggedRequest("2026-11-01T00:00:00Z", "GET", "/old", 200, "", 1.0)])
    writer = RequestLog(store, keep_days=7, every=3600)
    assert (writer._thread.daemon, writer._thread.name) == (True, "scim-roles request log")
    writer(LoggedRequest("2026-11-30T09:00:00Z", "GET", "/new", 200, "", 1.0))
    writer.close()
    assert [e.path for e in store.requests()] == ["/new"]

    entries = [LoggedRequest("2026-11-30T09:00:00Z", "GET", f"/{i}", 200, "", 1.0) for i in range(3)]

    class Failing:
        """A store whose write fails once, while another entry arrives."""

        tenant = "default"

        def __init__(self) -> None:
            self.written: list[LoggedRequest] = []

        def log_requests(self, batch: list[LoggedRequest], **_: object) -> None:
            if not self.written and batch[0] is entries[0]:
                late(entries[2])
                self.written.append(entries[2])  # the next try writes
                raise StoreUnavailable('s.db: the write could not be made durable: "full"')
            self.written[:] = batch

    failing = Failing()
    late = RequestLog(failing, every=3600)  # type: ignore[arg-type]
    late(entries[0])
    late(entries[1])
    late.flush()
    assert [r.getMessage() for r in caplog.records] == [
        'the request log cannot be written now: s.db: the write could not be made durable: \\"full\\"'
    ]
    late.close()
    assert failing.written == entries


def test_a_request_log_refuses_an_entry_it_would_write_to_the_wrong_tenants_log(tmp_path: Path) -> None:
    """A log of one tenant's store refuses another tenant's entry (given to a TenantApp, it wrote every
    tenant's requests into its one tenant's log); a log of many tenants refuses an entry without a tenant (its
    thread failed, and the log stopped). Each refusal names the tenant or the path, and nothing of it is kept."""
    from scim_roles.asgi import TenantApp  # noqa: PLC0415
    from scim_roles.store import RequestLog, SqlStore  # noqa: PLC0415
    from test_asgi import call  # noqa: PLC0415
    from test_backends import tenants_with_tokens  # noqa: PLC0415

    db = str(tmp_path / "s.db")
    given = tenants_with_tokens(db, ["acme", "beta"])
    entry = LoggedRequest("2026-11-30T09:00:00Z", "GET", "/Users", 200, "", 1.0)
    acme, beta = SqlStore(db, tenant="acme"), SqlStore(db, tenant="beta")
    one = RequestLog(acme, every=3600)
    with pytest.raises(InvalidArgument) as refused:
        one(entry, tenant="beta")
    wrong = "'beta' is not the tenant of this log's store ('acme')"
    assert refused.value.problems == (Problem("RequestLog", "tenant", wrong, "beta"),)
    app = TenantApp(db, request_log=one)
    with pytest.raises(
        InvalidArgument, match=re.escape(wrong)
    ):  # after beta was answered: the host's error log shows it
        call(app, "GET", "/scim/v2/beta/Users", token=given["beta"])
    assert call(app, "GET", "/scim/v2/acme/Users", token=given["acme"])[0] == 200
    one(entry, tenant="acme")
    one(entry)  # no tenant: its one store's
    one.close()
    assert [e.path for e in acme.requests()] == ["/scim/v2/acme/Users", "/Users", "/Users"]

    many = RequestLog(lambda tenant: SqlStore(db, tenant=tenant), every=3600)
    with pytest.raises(InvalidArgument) as refused:
        many(entry)
    assert refused.value.problems == (
        Problem("RequestLog", "tenant", "'/Users': a log of many tenants needs each entry's tenant"),
    )
    many(entry, tenant="beta")
    many.close()
    assert [e.path for e in beta.requests()] == ["/Users"]
    assert len(acme.requests()) == 3
    app.close()


def test_tenant_and_token_commands_check_the_tenant_and_list_in_words(tmp_path: Path) -> None:
    """Each command checks TENANT; a bare `tenants` or `tokens` is a usage error; counts in words; the log's
    last 100 by default, text or JSON."""
    from scim_roles.store import LoggedRequest  # noqa: PLC0415

    db = str(tmp_path / "acme.db")
    assert cli("tenants", "add", "acme", ORG, "--db", db)[0] == 0
    for bare in ("tenants", "tokens"):
        with pytest.raises(SystemExit) as exited:
            cli(bare)
        assert exited.value.code == 2
    for command in (("tokens", "add", "beta"), ("tokens", "revoke", "beta", "x"), ("log", "beta")):
        code, out, err = cli(*command, "--db", db)
        assert (code, out) == (1, "")
        assert "holds no tenant 'beta' (it holds 'acme')" in err
    clock = Clock()
    with SqliteStore(db, clock=clock) as store:
        store.add_token(expires_days=1)
    assert cli("tenants", "list", "--db", db) == (0, "acme\t/scim/v2/acme\t2 active tokens\n", "")
    code, out, _ = cli("tokens", "list", "acme", "--db", db)
    assert (code, len(out.splitlines())) == (0, 3)
    with SqliteStore(db) as store:
        store.log_requests(
            [
                LoggedRequest(f"2026-11-30T09:{i // 60:02}:{i % 60:02}Z", "GET", f"/{i}", 200, "", 1.5)
                for i in range(101)
            ]
        )
    code, out, _ = cli("log", "acme", "--db", db)
    lines = out.splitlines()
    assert (code, len(lines), lines[0]) == (
        0,
        100,
        'at=2026-11-30T09:00:01Z method="GET" path="/1" status=200 reason="" ms=1.5',
    )
    code, out, _ = cli("log", "acme", "--db", db, "--limit", "2", "--json")
    assert (code, [json.loads(line) for line in out.splitlines()]) == (
        0,
        [
            {
                "at": "2026-11-30T09:01:39Z",
                "method": "GET",
                "path": "/99",
                "status": 200,
                "reason": "",
                "ms": 1.5,
                "seq": 100,
            },
            {
                "at": "2026-11-30T09:01:40Z",
                "method": "GET",
                "path": "/100",
                "status": 200,
                "reason": "",
                "ms": 1.5,
                "seq": 101,
            },
        ],
    )


def test_serve_refuses_a_state_whose_only_token_has_expired_and_logs_what_it_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expired token is no token; a served request reaches the state's log when serve stops, within its
    retention (rows and days)."""
    import uvicorn  # noqa: PLC0415

    from scim_roles.store import LoggedRequest  # noqa: PLC0415

    db = str(tmp_path / "acme.db")
    monkeypatch.delenv("SCIM_ROLES_TOKEN", raising=False)
    past = Clock()
    past.now = datetime(2020, 1, 1, tzinfo=timezone.utc)
    SqliteStore(db, article_org(), clock=past, tenant="acme").add_token(expires_days=1)
    code, _, err = cli("serve", "--db", db)
    assert (code, err.startswith("scim-roles: set SCIM_ROLES_TOKEN")) == (2, True)
    with SqliteStore(db) as store:
        _, token = store.add_token()
        store.log_requests([LoggedRequest("2020-01-01T00:00:00Z", "GET", "/ancient", 200, "", 1.0)])

    def run(app: Any, **_: object) -> None:  # one request through the app, as uvicorn would make it
        from test_asgi import call  # noqa: PLC0415

        for path in ("/scim/v2/acme/Users", "/scim/v2/Users"):
            assert call(app, "GET", path, token=token)[0] == 200

    monkeypatch.setattr(uvicorn, "run", run)
    assert cli("serve", "--db", db, "--log-rows", "10", "--log-days", "30")[0] == 0  # the 2020 row: by age
    with SqliteStore(db) as store:
        assert [(e.path, e.status) for e in store.requests()] == [("/scim/v2/acme/Users", 200), ("/scim/v2/Users", 200)]
    assert cli("serve", "--db", db, "--log-rows", "1")[0] == 0  # by count
    with SqliteStore(db) as store:
        assert [(e.path, e.status) for e in store.requests()] == [("/scim/v2/Users", 200)]


def test_the_token_and_log_commands_work_on_a_state_whose_users_no_longer_load(tmp_path: Path) -> None:
    """Tokens and the log never need the users: on a state whose stored users do not fit its settings (a team
    with manual grants gone from them), they still answer; the commands that read users say what is wrong."""
    from scim_roles import Grant, Role, User  # noqa: PLC0415

    from helpers import OPS  # noqa: PLC0415

    db = tmp_path / "acme.db"
    store = SqliteStore(db, article_org(manual_edits=True), tenant="acme")
    store.put_user(User("sam", saml=True, manual=[Grant(OPS, Role.MEMBER)], email="sam@example.com"))
    token_id, _ = store.add_token()
    store.close()
    with closing(sqlite3.connect(db)) as raw, raw:  # closed, and committed
        (settings,) = raw.execute("SELECT settings FROM tenants").fetchone()
        org = json.loads(settings)
        org["teams"] = [t for t in org["teams"] if t["id"] != OPS]
        org["groups"] = [g for g in org["groups"] if OPS not in g.get("teams", [])]
        raw.execute("UPDATE tenants SET settings = ?, version = version + 1", (json.dumps(org),))
    assert cli("explain", "--db", str(db))[0] == 1  # the users no longer load
    for command in (("tenants", "list"), ("tokens", "list", "acme"), ("log", "acme"), ("tokens", "add", "acme")):
        assert cli(*command, "--db", str(db))[0] == 0, command
    assert cli("tokens", "revoke", "acme", token_id, "--db", str(db))[0] == 0
    code, _, err = cli("serve", "--db", str(db))
    assert (code, "'sam'" in err) == (1, True)  # serve needs the users: it names what is wrong


def test_serve_and_tenants_list_on_several_tenants_an_older_state_or_no_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several tenants: serve starts without loading any, and SCIM_ROLES_TOKEN (a one-tenant state's token)
    authenticates none of them, with a warning; an older state: serve and tenants list name `migrate`; no
    state file: tenants list says so."""
    import shutil  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    ran: list[Any] = []

    def run(app: Any, **_: object) -> None:
        """What the server sees while it serves (its engine is closed once it stops); a request it logs."""
        ran.append((app._default, app._token, app.cached, app._app("acme", "from-the-environment"), app._size))
        app._request_log(
            LoggedRequest("2026-11-30T10:00:00Z", "GET", "/scim/v2/beta/Users", 200, "", 1.5), tenant="beta"
        )

    monkeypatch.setattr(uvicorn, "run", run)
    db = str(tmp_path / "many.db")
    beta = tmp_path / "beta.json"
    beta.write_text(json.dumps(json.loads(Path(ORG).read_text()) | {"domains": ["beta.example"]}))
    assert cli("tenants", "add", "acme", ORG, "--db", db)[0] == 0
    assert cli("tenants", "add", "beta", str(beta), "--db", db)[0] == 0
    assert [t["tenant"] for t in json.loads(cli("tenants", "list", "--db", db, "--json")[1])] == ["acme", "beta"]
    monkeypatch.delenv("SCIM_ROLES_TOKEN", raising=False)
    assert cli("serve", "--db", db) == (
        0,
        "",
        "scim-roles: serving SCIM 2.0 at http://127.0.0.1:8000/scim/v2/TENANT for its tenants\n",
    )  # no token to serve with is needed at start: each tenant's stored tokens are checked per request
    assert [entry.path for entry in SqliteStore(db, tenant="beta").requests()] == ["/scim/v2/beta/Users"]
    ran.clear()
    monkeypatch.setenv("SCIM_ROLES_TOKEN", "from-the-environment")
    assert cli("serve", "--db", db, "--cache-tenants", "7") == (
        0,
        "",
        (
            f"scim-roles: WARNING {db} holds 2 tenants: SCIM_ROLES_TOKEN authenticates none of them (it is the"
            " token of a one-tenant state); each tenant's stored tokens do\n"
            "scim-roles: serving SCIM 2.0 at http://127.0.0.1:8000/scim/v2/TENANT for its tenants\n"
        ),
    )
    assert ran == [(None, None, (), None, 7)]  # none loaded at start; the environment's token is no tenant's
    old = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "state-0.1.db", old)
    for command in (("serve",), ("tenants", "list")):
        code, out, err = cli(*command, "--db", str(old))
        assert (code, out) == (1, "")
        assert f"`scim-roles migrate --db {old}`" in err
    missing = tmp_path / "none.db"
    assert cli("tenants", "list", "--db", str(missing)) == (1, "", f"scim-roles: {missing}: no such state file\n")
