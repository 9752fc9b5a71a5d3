"""scim_roles.asgi: the HTTP edge — authentication, bad requests, mounting, logging."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from scim_roles import InvalidArgument
from scim_roles.asgi import ScimApp
from scim_roles.store import SqliteStore

from helpers import article_org

TOKEN = "s3cret-token"


def call(
    app: ScimApp,
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
    """One request through the ASGI callable; the status, headers and decoded body."""
    raw_path, _, query = path.partition("?")
    sent: list[MutableMapping[str, Any]] = []
    pieces = [body[i::chunks] for i in range(chunks)] if body and chunks > 1 else [body or b""]
    given = {"host": "app.example.com", **(headers or {})}
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
    }

    async def receive() -> MutableMapping[str, Any]:
        if disconnect:
            return {"type": "http.disconnect"}
        piece = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, payload = sent
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
    """A create, a read and a filter over the app; ids minted, Location from the Host header."""
    status, headers, data = call(app, "POST", "/scim/v2/Users", json.dumps({"userName": "ann"}).encode())
    assert status == 201
    assert headers["location"] == f"https://app.example.com/scim/v2/Users/{data['id']}"
    assert headers["content-type"] == "application/scim+json"
    assert len(data["id"]) == 32
    status, _, listed = call(app, "GET", '/scim/v2/Users?filter=userName eq "ANN"')
    assert (status, listed["totalResults"]) == (200, 1)
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
    status, _, data = call(app, "POST", "/scim/v2/Users", b'{"userName": "a"}', content_type="text/plain")
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
        app, "POST", "/scim/v2/Users", b'{"userName": "b"}', content_type="application/json; charset=utf-8"
    )
    assert status == 201


def test_s1_ids_with_slashes_stay_whole(tmp_path: Path) -> None:
    """The raw path is used, so a percent-encoded '/' in an id is not a path separator."""
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN, mint_id=lambda: "a/b")
    status, headers, _ = call(app, "POST", "/Users", b'{"userName": "ann"}')
    assert (status, headers["location"]) == (201, "https://app.example.com/Users/a%2Fb")
    assert call(app, "GET", "/Users/a%2Fb")[0] == 200
    assert call(app, "GET", "/Users/a/b")[0] == 404


def test_the_app_mounts_under_a_root_path(tmp_path: Path) -> None:
    """Mounted at /scim/v2 by a framework (root_path), it answers below it and says so in locations."""
    app = ScimApp(SqliteStore(tmp_path / "s.db", article_org()), token=TOKEN)
    status, headers, _ = call(app, "POST", "/Users", b'{"userName": "ann"}', root_path="/scim/v2")
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
    call(app, "POST", "/scim/v2/Users", json.dumps({"userName": "secret-name"}).encode())
    call(app, "GET", "/scim/v2/Users/x%0Aforged")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("POST /scim/v2/Users 201 ")
    assert lines[0].endswith("changes=1")
    assert "\n" not in lines[1]
    assert lines[1].startswith("GET /scim/v2/Users/x\\nforged 404")
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
                theirs, handle(theirs.directory, ScimRequest("POST", "/Users", {"userName": "bob"}, new_id="b"))
            )
        return real_commit(snapshot, outcome)

    store.commit = commit  # type: ignore[method-assign,assignment]
    app = ScimApp(store, token=TOKEN, mint_id=lambda: "a")
    status, _, data = call(app, "POST", "/Users", b'{"userName": "ann"}', headers={"host": ""})
    assert (status, data["meta"]["location"]) == (201, "https://localhost:80/Users/a")
    assert set(SqliteStore(tmp_path / "s.db", article_org()).load().directory.users) == {"a", "b"}
