"""scim_roles.asgi: the HTTP edge — authentication, bad requests, mounting, logging."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import threading
from collections.abc import Callable, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_roles import InvalidArgument, Problem
from scim_roles.asgi import ScimApp, TenantApp
from scim_roles.scim import Directory
from scim_roles.store import Snapshot, SqliteStore, SqlStore, Store

from helpers import article_org
from serve_helpers import held_elsewhere, send

TOKEN = "s3cret-token"


def call(
    app: ScimApp | TenantApp,
    method: str,
    path: str,
    body: bytes | None = None,
    **request: Any,
) -> tuple[int, dict[str, str], Any]:
    """One request through the ASGI callable, in an event loop of its own; the status, headers and decoded body."""
    return asyncio.run(answer(app, method, path, body, **request))


async def answer(
    app: ScimApp | TenantApp,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    token: str | None = TOKEN,
    content_type: str = "application/scim+json",
    headers: dict[str, str] | None = None,
    root_path: str = "",
    chunks: int = 1,
    disconnect: bool = False,
) -> tuple[int, dict[str, str], Any]:
    """One request through the ASGI callable, in the running event loop; the status, headers and decoded body."""
    raw_path, _, query = path.partition("?")
    sent: list[MutableMapping[str, Any]] = []
    pieces = [body[i::chunks] for i in range(chunks)] if body and chunks > 1 else [body or b""]
    given = {"host": "forged.example.net", **(headers or {})}  # never used: locations come from the server
    if body is not None:
        given.setdefault("content-type", content_type)
        given.setdefault("content-length", str(len(body)))
    if token is not None:
        given["authorization"] = f"Bearer {token}"
    scope = {
        "type": "http",
        "method": method,
        "path": unquote(root_path + raw_path),
        "raw_path": (root_path + raw_path).encode(),
        "root_path": root_path,
        "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in given.items()],
        "scheme": "https",
        "server": ("app.example.com", 443),
    }

    async def receive() -> MutableMapping[str, Any]:
        if disconnect:
            return {"type": "http.disconnect"}
        piece = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, payload = sent
    assert (start["type"], payload["type"]) == ("http.response.start", "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    data = json.loads(payload["body"]) if payload["body"] else None
    return start["status"], response_headers, data


@pytest.fixture
def app(tmp_path: Path) -> ScimApp:
    return ScimApp(SqliteStore(tmp_path / "state.db", article_org()), token=TOKEN, base_path="/scim/v2")


def test_s11_a_missing_or_wrong_token_is_401_before_anything_is_read(app: ScimApp) -> None:
    """No token, another scheme, a wrong token: 401 with a SCIM error body and WWW-Authenticate."""
    for token, headers in ((None, {}), ("wrong", {}), (None, {"authorization": f"Basic {TOKEN}"}), ("", {})):
        status, got, data = call(app, "GET", "/scim/v2/Users", token=token, headers=headers)
        assert status == 401
        assert got["www-authenticate"] == 'Bearer realm="SCIM"'
        assert data["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    status, _, _ = call(app, "POST", "/scim/v2/Users", b"x" * 10_000_000, token="wrong")
    assert status == 401  # refused before the body is read


def test_s11_a_check_token_function_or_a_token_never_both(tmp_path: Path) -> None:
    """check_token decides; giving neither, both, or an empty token is refused."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    app = ScimApp(store, check_token=lambda t: t == "other")
    assert call(app, "GET", "/Users", token="other")[0] == 200
    assert call(app, "GET", "/Users")[0] == 401
    for kwargs in ({}, {"token": "a", "check_token": bool}, {"token": ""}):
        with pytest.raises(InvalidArgument, match="token"):
            ScimApp(store, **kwargs)


def test_s10_requests_route_through_the_service(app: ScimApp) -> None:
    """A create, a read and a filter over the app; ids minted, Location from the server's address."""
    status, headers, data = call(app, "POST", "/scim/v2/Users", json.dumps({"userName": "ann@example.com"}).encode())
    assert status == 201
    assert headers["location"] == f"https://app.example.com/scim/v2/Users/{data['id']}"
    assert headers["content-type"] == "application/scim+json"
    assert len(data["id"]) == 32
    assert call(app, "POST", "/scim/v2/Users", json.dumps({"userName": "bob@example.com"}).encode())[0] == 201
    status, _, listed = call(app, "GET", '/scim/v2/Users?filter=userName eq "ANN@example.COM"')
    assert (status, listed["totalResults"], listed["Resources"][0]["id"]) == (200, 1, data["id"])
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ann"}],
    }
    status, _, patched = call(app, "PATCH", "/scim/v2/Users/" + data["id"], json.dumps(patch).encode())
    assert (status, patched["displayName"]) == (200, "Ann")
    replaced = {"userName": "ann@example.com", "displayName": "Ann B"}
    status, _, put = call(app, "PUT", "/scim/v2/Users/" + data["id"], json.dumps(replaced).encode())
    assert (status, put["displayName"]) == (200, "Ann B")
    assert call(app, "GET", "/scim/v2/Users/" + data["id"])[0] == 200
    assert call(app, "GET", "/scim/v2")[0] == 404
    assert call(app, "GET", "/scim/v2/")[0] == 404
    assert call(app, "GET", "/other/Users")[0] == 404
    assert call(app, "GET", "/scim/v2Users")[0] == 404


def test_s11_bad_http_is_a_clear_scim_error(app: ScimApp) -> None:
    """Too large (declared or streamed), wrong content type, not JSON, a key twice, deep nesting, unknown methods."""
    big = b'{"userName": "' + b"a" * (1024 * 1024) + b'"}'
    assert call(app, "POST", "/scim/v2/Users", big)[0] == 413
    assert call(app, "POST", "/scim/v2/Users", big, headers={"content-length": "10"}, chunks=3)[0] == 413
    status, _, data = call(app, "POST", "/scim/v2/Users", b'{"userName": "a@example.com"}', content_type="text/plain")
    assert (status, data["status"]) == (415, "415")
    for body in (b"{not json", b"\xff\xfe\x00", b"[" * 100_000, b'{"userName": "a", "active": false, "active": true}'):
        status, _, data = call(app, "POST", "/scim/v2/Users", body)
        assert (status, data["scimType"]) == (400, "invalidSyntax"), body[:20]
    assert "appears twice" in call(app, "POST", "/scim/v2/Users", b'{"a": {"b": 1, "b": 2}}')[2]["detail"]
    assert call(app, "POST", "/scim/v2/Users", b"")[0] == 400  # no body
    assert call(app, "POST", "/scim/v2/Users", b"{}", disconnect=True)[0] == 400  # the client went away
    status, headers, _ = call(app, "TRACE", "/scim/v2/Users")
    assert (status, headers["allow"]) == (405, "GET, POST")
    status, _, _ = call(
        app, "POST", "/scim/v2/Users", b'{"userName": "b@example.com"}', content_type="application/json; charset=utf-8"
    )
    assert status == 201


def test_s1_ids_with_slashes_stay_whole(tmp_path: Path) -> None:
    """The raw path is used, so a percent-encoded '/' in an id is not a path separator."""
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN, mint_id=lambda: "a/b")
    status, headers, _ = call(app, "POST", "/Users", b'{"userName": "ann@example.com"}')
    assert (status, headers["location"]) == (201, "https://app.example.com/Users/a%2Fb")
    assert call(app, "GET", "/Users/a%2Fb")[0] == 200
    assert call(app, "GET", "/Users/a/b")[0] == 404


def test_the_app_mounts_under_a_root_path(tmp_path: Path) -> None:
    """Mounted at /scim/v2 by a framework (root_path), it answers below it and says so in locations."""
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN)
    status, headers, _ = call(app, "POST", "/Users", b'{"userName": "ann@example.com"}', root_path="/scim/v2")
    assert status == 201
    assert headers["location"].startswith("https://app.example.com/scim/v2/Users/")
    assert call(app, "GET", "/ServiceProviderConfig", root_path="/scim/v2")[0] == 200


def test_lifespan_and_other_scopes(app: ScimApp) -> None:
    """The lifespan protocol is answered; a websocket scope is left alone."""
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    asyncio.run(app({"type": "websocket"}, receive, send))
    assert len(sent) == 2


def test_one_log_line_per_request_never_a_token_or_a_body(app: ScimApp, caplog: pytest.LogCaptureFixture) -> None:
    """Method, path (escaped), status, duration, changes; the token and the body never appear."""
    caplog.set_level(logging.INFO, logger="scim_roles.serve")
    call(app, "POST", "/scim/v2/Users", json.dumps({"userName": "secret-name@example.com"}).encode())
    call(app, "GET", "/scim/v2/Users/x%0Aforged")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith('method="POST" path="/scim/v2/Users" status=201 ms=')
    assert lines[0].endswith(" changes=1")
    assert "\n" not in lines[1]
    assert lines[1].startswith('method="GET" path="/scim/v2/Users/x\\nforged" status=404 ')
    text = "\n".join(lines)
    assert TOKEN not in text
    assert "secret-name" not in text


def test_a_lost_race_is_retried_on_the_new_state(tmp_path: Path) -> None:
    """When another writer committed between load and commit, the request runs again on the fresh state."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    other = SqliteStore(tmp_path / "s.db", article_org())
    real_commit = store.commit
    raced: list[bool] = []

    def commit(snapshot: Any, outcome: Any) -> bool:
        if not raced:  # another process writes first
            raced.append(True)
            theirs = other.load()
            from scim_roles.scim import ScimRequest, handle  # noqa: PLC0415

            assert other.commit(
                theirs,
                handle(theirs.directory, ScimRequest("POST", "/Users", {"userName": "bob@example.com"}, new_id="b")),
            )
        return real_commit(snapshot, outcome)

    store.commit = commit  # type: ignore[method-assign,assignment]
    app = ScimApp(store, token=TOKEN, mint_id=lambda: "a")
    status, _, data = call(app, "POST", "/Users", b'{"userName": "ann@example.com"}', headers={"host": ""})
    assert (status, data["meta"]["location"]) == (201, "https://app.example.com/Users/a")
    assert set(SqliteStore(tmp_path / "s.db", article_org()).load().directory.users) == {"a", "b"}


def test_t2_a_write_starts_from_the_last_state_and_what_changes_nothing_is_answered_from_a_current_one(
    tmp_path: Path,
) -> None:
    """A write starts from the app's last state, unread; another process's commit makes its compare-and-swap
    fail and it is made again on the new state. A refusal, a no-op or a search computed on the unread state
    is answered only once made again on a current state: never from a state another process moved."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    other = SqliteStore(tmp_path / "s.db", article_org())
    app = ScimApp(store, token=TOKEN)
    assert call(app, "POST", "/Users", b'{"userName": "ann@example.com"}')[0] == 201  # the app's last state
    send(other, "POST", "/Users", {"userName": "bob@example.com"}, new_id="b")  # another process, unseen
    assert call(app, "POST", "/Users", b'{"userName": "bob@example.com"}')[0] == 409  # not a 201 from the old state
    send(other, "POST", "/Users", {"userName": "cy@example.com"}, new_id="c")
    assert call(app, "PATCH", "/Users/c", json.dumps(ACTIVE_OFF).encode())[0] == 200  # not a 404 from the old state
    send(other, "POST", "/Users", {"userName": "di@example.com"}, new_id="d")
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "di@example.com"',
    }
    assert call(app, "POST", "/Users/.search", json.dumps(search).encode())[2]["totalResults"] == 1
    assert call(app, "POST", "/Users", b'{"userName": "ed@example.com"}')[0] == 201  # nothing else moved
    directory = other.load().directory
    names = sorted(directory.user_name(uid) for uid in directory.users)
    assert names == [f"{who}@example.com" for who in ("ann", "bob", "cy", "di", "ed")]
    assert other.load().directory.users["c"].deprovisioned


SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ACTIVE_OFF = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "active", "value": False}],
}


def exchange(
    app: ScimApp,
    method: str,
    path: str,
    headers: dict[str, str] | list[tuple[bytes, bytes]],
    messages: list[dict[str, Any]],
    **scope: Any,
) -> tuple[int, dict[str, str], Any]:
    """One request with the scope and the receive messages exactly as given (no defaults added); a receive
    past the last message fails the test. Headers as a list are sent as they are (a name twice, say)."""
    sent: list[MutableMapping[str, Any]] = []
    full = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers if isinstance(headers, list) else [(k.encode(), v.encode()) for k, v in headers.items()],
        **scope,
    }

    async def receive() -> MutableMapping[str, Any]:
        assert messages, "the app read past the body"
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(full, receive, send))
    start, payload = sent
    got = {k.decode(): v.decode() for k, v in start["headers"]}
    assert got["content-length"] == str(len(payload["body"]))
    return start["status"], got, json.loads(payload["body"]) if payload["body"] else None


def test_s11_the_edge_answers_each_refusal_exactly(tmp_path: Path) -> None:
    """Every refusal of the HTTP edge: its status, SCIM error body and headers; what is read and what is not."""
    store = SqliteStore(
        tmp_path / "s.db", attrs.evolve(article_org(), domains=["x.io"])
    )  # short emails: 24-byte bodies
    now = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    app = ScimApp(store, token=TOKEN, base_path="/scim/v2/", max_body=24, clock=lambda: now, mint_id=lambda: "a")
    auth = {"authorization": f"Bearer {TOKEN}", "host": "h.example.com"}
    post = {**auth, "content-type": "application/scim+json"}

    def error(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
        return body | ({"scimType": scim_type} if scim_type else {})

    def refused(got: tuple[int, dict[str, str], Any], status: int, detail: str, scim_type: str | None = None) -> None:
        assert (got[0], got[1]["content-type"], got[2]) == (
            status,
            "application/scim+json",
            error(status, detail, scim_type),
        )

    body = b'{"userName":"anni@x.io"}'  # exactly max_body bytes
    assert len(body) == 24
    refused(exchange(app, "GET", "/scim/v2/Users", {}, []), 401, "a valid bearer token is required")
    assert exchange(app, "GET", "/scim/v2/Users", {}, [])[1]["www-authenticate"] == 'Bearer realm="SCIM"'
    huge = {**post, "content-length": "25"}  # declared over the limit: refused unread (no message to receive)
    refused(exchange(app, "POST", "/scim/v2/Users", huge, []), 413, "the request body is over 24 bytes")
    chunks: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:] + b" "},
    ]
    refused(exchange(app, "POST", "/scim/v2/Users", post, chunks), 413, "the request body is over 24 bytes")
    refused(
        exchange(app, "POST", "/scim/v2/Users", auth, [{"type": "http.request", "body": body}]),
        415,
        "send the body as application/scim+json, not 'no content type'",
    )
    refused(
        exchange(
            app,
            "POST",
            "/scim/v2/Users",
            {**auth, "content-type": "Text/Plain; x=1"},
            [{"type": "http.request", "body": body}],
        ),
        415,
        "send the body as application/scim+json, not 'text/plain'",
    )
    app_deep = ScimApp(store, token=TOKEN, max_body=10**6)
    refused(
        exchange(app_deep, "POST", "/Users", post, [{"type": "http.request", "body": b"[" * 100_000}]),
        400,
        "the body is not valid JSON: nested too deeply",
        "invalidSyntax",
    )
    refused(
        exchange(app, "POST", "/scim/v2/Users", post, [{"type": "http.request"}]),  # no "body" key: an empty body
        400,
        "this request needs a JSON object body",
        "invalidSyntax",
    )
    refused(exchange(app, "GET", "/other", auth, []), 404, "no SCIM endpoint here")
    refused(
        exchange(app, "GET", "/scim/v2", auth, []),
        404,
        "no resource here: use /Users, /Groups or the discovery endpoints",
    )


def test_s11_the_edge_reads_the_limit_exactly_and_scopes_without_optional_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A body of exactly the limit, declared or streamed; a scope without its optional keys (query string, raw
    path, root path, scheme, server) and no Host header; a GET's body never read; a token with a space; the
    app's own refusal; one log line with its duration."""
    store = SqliteStore(
        tmp_path / "s.db", attrs.evolve(article_org(), domains=["x.io"])
    )  # short emails: 24-byte bodies
    now = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    app = ScimApp(store, token=TOKEN, base_path="/scim/v2/", max_body=24, clock=lambda: now, mint_id=lambda: "a")
    auth = {"authorization": f"Bearer {TOKEN}", "host": "h.example.com"}
    post = {**auth, "content-type": "application/scim+json"}
    body = b'{"userName":"anni@x.io"}'
    # Accepted: a body of exactly the limit, declared or streamed in chunks without "more_body" at the end,
    # no query_string, raw_path, root_path, scheme or server in the scope, no Host header.
    split: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:]},
    ]
    status, headers, data = exchange(
        app, "POST", "/scim/v2/Users", {k: v for k, v in post.items() if k != "host"}, split
    )
    assert (status, headers["location"], data["meta"]["created"]) == (
        201,
        "http://localhost/scim/v2/Users/a",
        "2026-05-01T12:00:00Z",
    )
    status, _, data = exchange(
        app, "GET", "/scim/v2/Users/a", auth, [], raw_path=b"/scim/v2/Users/a?x?y", scheme="https"
    )
    assert (status, data["meta"]["location"]) == (200, "https://localhost/scim/v2/Users/a")  # never the Host
    no_host = {"authorization": f"Bearer {TOKEN}"}
    status, _, data = exchange(app, "GET", "/scim/v2/Users/a", no_host, [], server=("10.0.0.1", 8080))
    assert (status, data["meta"]["location"]) == (200, "http://10.0.0.1:8080/scim/v2/Users/a")
    at_limit = {**post, "content-length": "24"}  # declared at the limit exactly: read
    other = [{"type": "http.request", "body": b'{"userName":"bobi@x.io"}'}]
    minting_b = ScimApp(store, token=TOKEN, base_path="/scim/v2", max_body=24, mint_id=lambda: "b")
    assert exchange(minting_b, "POST", "/scim/v2/Users", at_limit, other)[0] == 201
    get_with_body = [{"type": "http.request", "body": b"{not json"}]
    assert exchange(app, "GET", "/scim/v2/Users", auth, get_with_body)[0] == 200  # a GET's body is never read
    upper = ScimApp(store, token=TOKEN, base_path="/apiX/")  # the trailing "/" goes, the "X" stays
    assert exchange(upper, "GET", "/apiX/Users", auth, [])[0] == 200
    spaced = ScimApp(store, check_token=lambda t: t == "two words")
    assert exchange(spaced, "GET", "/Users", {"authorization": "Bearer two words"}, [])[0] == 200
    with pytest.raises(InvalidArgument) as err:
        ScimApp(store)
    assert err.value.problems == (Problem("ScimApp", "token", "give a non-empty token or a check_token function"),)
    # One log line each, with the duration in milliseconds; a refusal changes nothing.
    ticks = iter([1.0, 1.25])
    caplog.set_level(logging.INFO, logger="scim_roles.serve")
    caplog.clear()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr("scim_roles.asgi.time.perf_counter", lambda: next(ticks))
        exchange(app, "GET", "/scim/v2/Users", {}, [])
    assert [r.getMessage() for r in caplog.records] == [
        'method="GET" path="/scim/v2/Users" status=401 ms=250.0 changes=0'
    ]


def test_t2_a_write_the_store_cannot_make_durable_is_503_and_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """StoreUnavailable from a commit: 503 with a SCIM error body naming no cause, and one escaped log line."""
    from scim_roles.store import StoreUnavailable  # noqa: PLC0415

    store = SqliteStore(tmp_path / "s.db", article_org())

    def unavailable(*_: Any) -> bool:
        raise StoreUnavailable('the file "s.db"\nwas replaced')

    store.commit = unavailable  # type: ignore[method-assign,assignment]
    caplog.set_level(logging.INFO, logger="scim_roles.serve")
    status, headers, data = call(ScimApp(store, token=TOKEN), "POST", "/Users", b'{"userName": "ann@example.com"}')
    assert (status, headers["content-type"], data["detail"]) == (
        503,
        "application/scim+json",
        "the state cannot be written now: nothing was changed; retry later",
    )
    assert caplog.records[0].getMessage() == 'the state is unavailable: the file \\"s.db\\"\\nwas replaced'


def test_a_store_that_never_stops_changing_is_a_server_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fifty lost races in a row: an error the server reports (500), never a wrong answer or a loop; between
    two tries a random wait, longer each time (here: none)."""
    import time  # noqa: PLC0415

    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    store = SqliteStore(tmp_path / "s.db", article_org())
    lost: list[int] = []

    def always_lost(*_: Any) -> bool:
        lost.append(1)
        return False

    store.commit = always_lost  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError, match=r"^the store kept changing under the request$"):
        call(ScimApp(store, token=TOKEN), "POST", "/Users", b'{"userName": "ann@example.com"}')
    assert len(lost) == 50
    assert len(waits) == 49
    assert 0 <= waits[0] <= 0.002 and 0 <= waits[-1] <= 0.064  # noqa: PT018


def test_requests_wait_their_turn_in_the_event_loop_holding_no_thread_another_app_needs(tmp_path: Path) -> None:
    """One app's requests are handled one at a time, and those waiting for their turn wait in the event loop,
    not in a worker thread: more waiting requests than the loop has threads never hold up another app's (a
    tenant's burst, another tenant's request)."""
    store = SqliteStore(tmp_path / "busy.db", article_org())
    entered: list[Callable[[], object]] = []  # tells the event loop that a load has begun
    release = threading.Event()
    real_load = store.load

    def held_load(*args: Any, **kwargs: Any) -> Any:
        entered[0]()
        release.wait(30)  # a load that waits (for a lock held elsewhere, say) until the test lets it go
        return real_load(*args, **kwargs)

    store.load = held_load  # type: ignore[method-assign]
    busy = ScimApp(store, token=TOKEN)
    other = ScimApp(SqliteStore(tmp_path / "other.db", article_org()), token=TOKEN)

    async def scenario() -> tuple[int, list[int]]:
        loading, loop = asyncio.Event(), asyncio.get_running_loop()
        entered.append(lambda: loop.call_soon_threadsafe(loading.set))
        burst = [asyncio.create_task(answer(busy, "GET", "/Users")) for _ in range(40)]  # over any loop's 32 threads
        try:
            await asyncio.wait_for(loading.wait(), 10)
            status = (await asyncio.wait_for(answer(other, "GET", "/Users"), 10))[0]
        finally:
            release.set()
        return status, [(await request)[0] for request in burst]

    assert asyncio.run(scenario()) == (200, [200] * 40)


def test_an_app_handles_its_requests_in_the_order_they_came(tmp_path: Path) -> None:
    """Requests waiting for their turn are handled first come, first served: none waits through the turns of
    others that came after it (a tail latency of many turns)."""
    minted = iter(f"u{n:02}" for n in range(30))
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN, mint_id=lambda: next(minted))

    async def burst() -> list[int]:
        requests = [
            answer(app, "POST", "/Users", json.dumps({"userName": f"p{n:02}@example.com"}).encode()) for n in range(30)
        ]
        return [status for status, _, _ in await asyncio.gather(*requests)]

    assert asyncio.run(burst()) == [201] * 30
    directory = app._store.load().directory
    assert {uid: directory.user_name(uid) for uid in directory.users} == {
        f"u{n:02}": f"p{n:02}@example.com" for n in range(30)
    }


def _member(gid: str, uid: str) -> tuple[str, str, Any]:
    return (
        "PATCH",
        f"/Groups/{gid}",
        {**ACTIVE_OFF, "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]},
    )


BURST: list[tuple[str, str, Any]] = [
    ("POST", "/Users", {"userName": "ann@example.com"}),
    ("POST", "/Users", {"userName": "bob@example.com"}),
    ("POST", "/Users", {"userName": "ANN@example.com"}),  # 409: taken by a write earlier in the same turn
    _member("leads", "u00"),
    _member("it-admins", "u01"),
    ("PATCH", "/Users/u01", ACTIVE_OFF),  # deprovisioned: the org admin role just given goes
    ("PATCH", "/Users/u01", ACTIVE_OFF),  # a no-op
    ("DELETE", "/Users/u01", None),
    ("PATCH", "/Users/u01", ACTIVE_OFF),  # 404: deleted by a write earlier in the same turn
    ("POST", "/Users", {"userName": "bob@example.com"}),  # the name is free again
    _member("it-admins", "u09"),
]
"""Writes that depend on each other: each answered as if handled alone, in order."""


def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to worker threads (``asyncio.to_thread``) from now on, in order."""
    hops: list[str] = []
    to_thread = asyncio.to_thread

    async def counted(func: Any, /, *args: Any) -> Any:
        hops.append(func.__name__)
        return await to_thread(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    return hops


def watch_commits(store: Any, seen: Callable[[Any], object]) -> None:
    """Give ``seen`` the outcome of each commit of ``store``, before it is made: those a SqlStore makes on the
    event loop's thread (``commit_without_waiting``) too."""
    for name in ("commit", "commit_without_waiting"):
        real = getattr(store, name, None)
        if real is not None:

            def watched(snapshot: Any, outcome: Any, *, _real: Any = real, **kwargs: Any) -> Any:
                seen(outcome)
                return _real(snapshot, outcome, **kwargs)

            setattr(store, name, watched)


def burst_app(store: Store, commits: list[int]) -> ScimApp:
    """An app with fixed ids and time whose store records how many membership changes each commit wrote."""
    watch_commits(store, lambda outcome: commits.append(len(outcome.changes)))
    minted = iter(f"u{n:02}" for n in range(100))
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    return ScimApp(store, token=TOKEN, mint_id=lambda: next(minted), clock=lambda: at)


def together_and_alone(together: Store, alone: Store, burst: list[Any]) -> tuple[list[Any], ...]:
    """The burst sent all at once to an app on ``together`` and one request at a time to one on ``alone``: the
    answers (status and body) of each, and the membership changes of each one's commits."""
    commits: tuple[list[int], list[int]] = ([], [])
    app, serial = burst_app(together, commits[0]), burst_app(alone, commits[1])
    bodies = [(method, path, None if body is None else json.dumps(body).encode()) for method, path, body in burst]

    async def all_at_once() -> list[Any]:
        return list(await asyncio.gather(*(answer(app, *request) for request in bodies)))

    answers = [(status, data) for status, _, data in asyncio.run(all_at_once())]
    expected = [(status, data) for status, _, data in (call(serial, *request) for request in bodies)]
    return answers, expected, *commits


def stored(store: SqlStore) -> tuple[Any, ...]:
    """What a store holds, read afresh: the directory, the memberships and the feed (without times or numbers)."""
    feed = [(e.user_id, e.team, e.before, e.after, e.origin) for e in store.changes()]
    return store.load().directory, store.memberships(), feed


def test_t2_writes_waiting_together_are_committed_together_each_answered_as_if_alone(tmp_path: Path) -> None:
    """The writes waiting for a turn are handled one after another, each on the state the one before left, and
    committed in one transaction: the answers, the stored state and the feed are those of the same requests
    sent one at a time, in order."""
    together_store, alone_store = (
        SqliteStore(tmp_path / f"{name}.db", article_org()) for name in ("together", "alone")
    )
    answers, expected, together, alone = together_and_alone(together_store, alone_store, BURST)
    assert answers == expected
    assert [status for status, _ in answers] == [201, 201, 409, 200, 200, 200, 200, 204, 404, 201, 200]
    assert stored(SqliteStore(tmp_path / "together.db")) == stored(SqliteStore(tmp_path / "alone.db"))
    assert together == [sum(alone)]  # one commit, of every change (the feed above is the same)


@settings(max_examples=max(10, settings().max_examples // 4))
@given(st.lists(st.sampled_from(BURST), max_size=len(BURST) * 2))
def test_t2_any_writes_committed_together_are_answered_and_stored_as_sent_alone(burst: list[Any]) -> None:
    """Any writes, in any order, committed in one turn: the answers, the stored state and the feed are those of
    the same requests sent one at a time."""
    with tempfile.TemporaryDirectory() as folder:
        first, second = Path(folder) / "together.db", Path(folder) / "alone.db"
        stores = SqliteStore(first, article_org()), SqliteStore(second, article_org())
        answers, expected, together, _ = together_and_alone(*stores, burst)
        assert answers == expected
        assert stored(SqliteStore(first)) == stored(SqliteStore(second))
        assert len(together) <= 1


class MemoryStore:
    """A store of one's own, as the docs describe one: the state in memory, and a version to compare."""

    def __init__(self, directory: Directory) -> None:
        self.snapshot = Snapshot(directory, 0)

    def load(self) -> Snapshot:
        return self.snapshot

    def commit(self, snapshot: Snapshot, outcome: Any) -> bool:
        if snapshot.version != self.snapshot.version:
            return False
        self.snapshot = Snapshot(outcome.directory, snapshot.version + 1)
        return True


def test_a_store_of_your_own_is_given_the_writes_that_waited_together_as_one_outcome() -> None:
    """A store implementing the two methods (load, commit) gets writes that waited together as one outcome:
    keeping its directory keeps what the same writes sent one at a time leave."""
    stores = MemoryStore(Directory(article_org())), MemoryStore(Directory(article_org()))
    answers, expected, together, alone = together_and_alone(*stores, BURST)
    assert answers == expected
    assert stores[0].snapshot.directory == stores[1].snapshot.directory
    assert (len(together), len(alone)) == (1, 8)  # the writes that changed something, one at a time


def test_t2_a_turn_lost_to_another_process_is_made_again_whole_on_the_new_state(tmp_path: Path) -> None:
    """Another process commits between a turn's load and its commit: every write of the turn is handled again
    on the new state (here one becomes a 409 it would not have been), and only then answered."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    other = SqliteStore(tmp_path / "s.db", article_org())
    real_commit = store.commit
    tries: list[int] = []

    def commit(snapshot: Any, outcome: Any) -> bool:
        if not tries:  # another process takes bob@ first
            send(other, "POST", "/Users", {"userName": "bob@example.com"}, new_id="theirs")
        tries.append(len(outcome.touched))
        return real_commit(snapshot, outcome)

    store.commit = commit  # type: ignore[method-assign,assignment]
    app = ScimApp(store, token=TOKEN)

    async def burst() -> list[int]:
        names = ["ann@example.com", "bob@example.com", "cy@example.com"]
        requests = [answer(app, "POST", "/Users", json.dumps({"userName": name}).encode()) for name in names]
        return [status for status, _, _ in await asyncio.gather(*requests)]

    assert asyncio.run(burst()) == [201, 409, 201]
    assert tries == [3, 2]
    directory = SqliteStore(tmp_path / "s.db").load().directory
    assert sorted(directory.user_name(uid) for uid in directory.users) == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert directory.user_name("theirs") == "bob@example.com"


def test_t2_a_turn_takes_at_most_32_writes_and_a_read_alone(tmp_path: Path) -> None:
    """At most 32 writes are committed together; a read is answered in a turn of its own, from the state the
    writes before it committed."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    sizes: list[int] = []
    watch_commits(store, lambda outcome: sizes.append(len(outcome.touched)))
    app = ScimApp(store, token=TOKEN)

    async def burst() -> tuple[list[int], Any]:
        posts = [
            answer(app, "POST", "/Users", json.dumps({"userName": f"p{n}@example.com"}).encode()) for n in range(40)
        ]
        read = answer(app, "GET", "/Users?count=0")
        *written, (_, _, listed) = await asyncio.gather(*posts, read)
        return [status for status, _, _ in written], listed

    statuses, listed = asyncio.run(burst())
    assert statuses == [201] * 40
    assert sizes == [32, 8]
    assert listed["totalResults"] == 40


def test_t2_a_turn_on_the_event_loop_that_loses_a_race_is_made_again_in_a_worker_thread_with_its_ids(
    tmp_path: Path,
) -> None:
    """Another process commits between the load and the commit of a turn made on the event loop's thread: the
    turn is made again whole, in a worker thread, on the new state (here a write becomes a 409 it would not
    have been), with the ids minted for it the first time."""
    store, other = SqliteStore(tmp_path / "s.db", article_org()), SqliteStore(tmp_path / "s.db")
    minted: list[str] = []

    def mint() -> str:
        minted.append(f"u{len(minted)}")
        return minted[-1]

    app = ScimApp(store, token=TOKEN, mint_id=mint)
    assert call(app, "GET", "/Users")[0] == 200  # the state in memory: the next turn is made on the event loop
    real = store.commit_without_waiting
    tries: list[int] = []

    def racing(snapshot: Any, outcome: Any, **kwargs: Any) -> bool | None:
        if not tries:  # another process takes bob@ first
            send(other, "POST", "/Users", {"userName": "bob@example.com"}, new_id="theirs")
        tries.append(len(outcome.touched))
        return real(snapshot, outcome, **kwargs)

    store.commit_without_waiting = racing  # type: ignore[method-assign]

    async def burst() -> list[tuple[int, Any]]:
        names = ["ann@example.com", "bob@example.com"]
        requests = [answer(app, "POST", "/Users", json.dumps({"userName": name}).encode()) for name in names]
        return [(status, data) for status, _, data in await asyncio.gather(*requests)]

    (ann, ann_body), (bob, _) = asyncio.run(burst())
    assert (ann, bob, tries) == (201, 409, [2])  # made again in a worker thread: commit_without_waiting once
    assert (ann_body["id"], minted) == ("u1", ["u0", "u1", "u2"])
    assert sorted(SqliteStore(tmp_path / "s.db").load().directory.users) == ["theirs", "u1"]


def test_a_turn_while_another_event_loops_turn_holds_the_app_is_made_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app served in several event loops: while a turn of another loop holds it, a turn is not made on this
    loop's thread (it would wait there) but in a worker thread, once the other is done."""
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN)
    assert call(app, "GET", "/Users")[0] == 200  # the state in memory
    hops = hand_offs(monkeypatch)
    with held_elsewhere(app._lock) as release:  # another loop's turn, for 0.3 s
        threading.Timer(0.3, release.set).start()
        assert call(app, "POST", "/Users", b'{"userName": "ann@example.com"}')[0] == 201
    assert hops == ["_process"]
    assert call(app, "GET", "/Users")[0] == 200
    assert hops == ["_process"]  # the lock free again: on the event loop


def test_between_two_turns_made_on_the_event_loop_other_requests_are_served(tmp_path: Path) -> None:
    """Turns made on the event loop's own thread hold it one turn at a time: a burst of one app's requests does
    not keep another app's request (another tenant's) waiting until all of them are made."""
    apps = [ScimApp(SqliteStore(tmp_path / f"{name}.db", article_org()), token=TOKEN) for name in ("a", "b")]
    for app in apps:
        assert call(app, "GET", "/Users")[0] == 200  # the states in memory: their turns are made on the loop
    done: list[str] = []

    async def one(app: ScimApp, name: str) -> None:
        assert (await answer(app, "GET", "/Users"))[0] == 200
        done.append(name)

    async def burst() -> None:
        await asyncio.gather(*(one(apps[0], "a") for _ in range(40)), one(apps[1], "b"))

    asyncio.run(burst())
    assert done.index("b") <= 2  # after a turn or two of a's 40, not after all of them


def test_a_write_whose_handling_fails_fails_alone_in_its_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request whose handling raises (a host's 500) is that request's error; the writes beside it in its
    turn are answered and committed."""
    from scim_roles.scim import handle as real_handle  # noqa: PLC0415

    def handle(directory: Any, request: Any) -> Any:
        if request.body == {"userName": "boom@example.com"}:
            msg = "a bug"
            raise RuntimeError(msg)
        return real_handle(directory, request)

    monkeypatch.setattr("scim_roles.asgi.handle", handle)
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN)
    names = ["ann@example.com", "boom@example.com", "bob@example.com"]

    async def burst() -> list[Any]:
        requests = [answer(app, "POST", "/Users", json.dumps({"userName": name}).encode()) for name in names]
        return list(await asyncio.gather(*requests, return_exceptions=True))

    first, failed, last = asyncio.run(burst())
    assert (first[0], last[0]) == (201, 201)
    assert isinstance(failed, RuntimeError)
    assert str(failed) == "a bug"
    directory = SqliteStore(tmp_path / "s.db").load().directory
    assert sorted(directory.user_name(uid) for uid in directory.users) == ["ann@example.com", "bob@example.com"]


def test_a_write_whose_client_went_away_before_its_turn_is_still_made(tmp_path: Path) -> None:
    """A write that came in is made in its turn even if nobody waits for its answer any more (a client that
    gave up), as a write already being handled is: an IdP retrying it finds it made."""
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN)

    async def burst() -> int:
        first = asyncio.create_task(answer(app, "POST", "/Users", b'{"userName": "ann@example.com"}'))
        gone = asyncio.create_task(answer(app, "POST", "/Users", b'{"userName": "bob@example.com"}'))
        await asyncio.sleep(0)  # both wait for their turn
        gone.cancel()
        return (await first)[0]

    assert asyncio.run(burst()) == 201
    directory = SqliteStore(tmp_path / "s.db").load().directory
    assert sorted(directory.user_name(uid) for uid in directory.users) == ["ann@example.com", "bob@example.com"]


def test_an_app_serves_several_event_loops_at_once(tmp_path: Path) -> None:
    """A host may run the app in several event loops (one per thread): each loop's requests take turns, and
    the loops' requests are still handled one at a time, none lost."""
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN)
    statuses: dict[str, list[int]] = {}

    def loop_of(who: str) -> None:
        async def burst() -> list[int]:
            bodies = [json.dumps({"userName": f"{who}{n}@example.com"}).encode() for n in range(10)]
            answers = await asyncio.gather(*(answer(app, "POST", "/Users", body) for body in bodies))
            return [status for status, _, _ in answers]

        statuses[who] = asyncio.run(burst())

    threads = [threading.Thread(target=loop_of, args=(who,)) for who in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == {who: [201] * 10 for who in ("a", "b", "c")}
    assert len(app._store.load().directory.users) == 30


def test_s11_two_authorization_headers_are_400_before_either_is_checked(app: ScimApp) -> None:
    """Which of two tokens would count is a guess: the request is refused whichever comes first or is good."""
    auth = f"Bearer {TOKEN}".encode()
    for pair in ([auth, b"Bearer wrong"], [b"Bearer wrong", auth], [auth, auth]):
        status, _, data = exchange(app, "GET", "/scim/v2/Users", [(b"Authorization", value) for value in pair], [])
        assert (status, data["detail"]) == (400, "send one Authorization header, not several")
    assert exchange(app, "GET", "/scim/v2/Users", {"authorization": auth.decode()}, [])[0] == 200


def test_s11_a_path_can_forge_no_field_of_the_log_line(app: ScimApp, caplog: pytest.LogCaptureFixture) -> None:
    """Spaces, quotes and field-like text in an unauthenticated path stay inside the quoted path field."""
    caplog.set_level(logging.INFO, logger="scim_roles.serve")
    call(app, "GET", "/scim/v2/x%20200%201.0ms%20changes=1%20status=200%22%20x", token=None)
    (line,) = [r.getMessage() for r in caplog.records]
    fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)(?: |$)', line))
    assert list(fields) == ["method", "path", "status", "ms", "changes"]
    assert json.loads(fields["path"]) == '/scim/v2/x 200 1.0ms changes=1 status=200" x'
    assert (fields["status"], fields["changes"]) == ("401", "0")


def test_s1_locations_come_from_the_public_url_never_the_host_header(tmp_path: Path) -> None:
    """A Host header names no location; public_url does, a path prefix kept; an IPv6 server address is bracketed."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    body = b'{"userName": "ann@example.com"}'
    public = ScimApp(store, token=TOKEN, base_path="/scim/v2", public_url="https://idp-facing.example.com/acme/")
    status, headers, data = call(public, "POST", "/scim/v2/Users", body, headers={"host": "evil.example"})
    assert (status, headers["location"]) == (201, f"https://idp-facing.example.com/acme/scim/v2/Users/{data['id']}")
    assert data["meta"]["location"] == headers["location"]
    plain = ScimApp(store, token=TOKEN, mint_id=lambda: "v6")
    auth = {"authorization": f"Bearer {TOKEN}", "host": "evil.example", "content-type": "application/scim+json"}
    status, headers, _ = exchange(
        plain,
        "POST",
        "/Users",
        auth,
        [{"type": "http.request", "body": b'{"userName": "bob@example.com"}'}],
        server=("::1", 8443),
        scheme="https",
    )
    assert (status, headers["location"]) == (201, "https://[::1]:8443/Users/v6")
    for bad in (
        "ftp://x.example",
        "https://",
        "https://x.example/?a=1",
        "https://x.example/#",
        "https://x .example",
        "scim.example.com",
    ):
        with pytest.raises(InvalidArgument) as err:
            ScimApp(store, token=TOKEN, public_url=bad)
        assert err.value.problems == (
            Problem("ScimApp", "public_url", f"must be an http(s):// URL without query or fragment, got {bad!r}"),
        )


def test_s11_a_token_with_spaces_around_it_is_refused_at_start(tmp_path: Path) -> None:
    """It could never match what a request sends (the presented token is trimmed): refused, not silently dead."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    for token in (" s3cret", "s3cret\n", "\ts3cret "):
        with pytest.raises(InvalidArgument) as err:
            ScimApp(store, token=token)
        assert err.value.problems == (
            Problem("ScimApp", "token", "has spaces or line breaks around it: it would never match a request's"),
        )


def test_the_app_answers_under_each_of_several_bases_and_locates_by_the_one_used(tmp_path: Path) -> None:
    """A tenant's endpoint and the 0.1 path side by side: the longer tried first, whatever the order given."""
    store = SqliteStore(tmp_path / "s.db", article_org())
    app = ScimApp(store, token=TOKEN, base_path=("/scim/v2/", "/scim/v2/acme"), mint_id=lambda: "a")
    status, headers, _ = call(app, "POST", "/scim/v2/acme/Users", b'{"userName": "ann@example.com"}')
    assert (status, headers["location"]) == (201, "https://app.example.com/scim/v2/acme/Users/a")
    status, _, data = call(app, "GET", "/scim/v2/Users/a")
    assert (status, data["meta"]["location"]) == (200, "https://app.example.com/scim/v2/Users/a")
    assert call(app, "GET", "/scim/v2/acme")[0] == 404  # the base itself: no resource
    assert call(app, "GET", "/scim/v2/acmeUsers")[0] == 404
    assert call(app, "GET", "/scim/v2/other/Users")[0] == 404
