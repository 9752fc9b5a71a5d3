"""A SCIM 2.0 endpoint as an ASGI application: mount it in any ASGI framework, or serve it alone.

>>> from scim_roles import Org, Role, Team
>>> from scim_roles.asgi import ScimApp
>>> from scim_roles.store import SqliteStore
>>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER)
>>> app = ScimApp(SqliteStore(":memory:", org), token="s3cret")  # app.mount("/scim/v2", app) in FastAPI

The app authenticates (a bearer token, compared in constant time, checked
before anything is read), reads and checks the HTTP request (size, content
type, JSON), mints ids, reads the clock, and routes everything else through
:func:`scim_roles.scim.handle`. Requests are serialized; each write is
committed to the store before it is answered, and a write the store cannot
make durable is answered ``503`` (the state is as it was). Part of the ``serve`` layer:
needs the ``scim`` extra, and no web framework.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from . import _documents as documents
from ._errors import InvalidArgument, Problem
from .scim import ScimRequest, ScimResponse, handle
from .scim._errors import ERROR_SCHEMA
from .store import LoggedRequest, SqliteStore, Store, StoreUnavailable
from .store import _stamp as stamp

__all__ = ["ScimApp", "SqliteStore", "Store"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

LOG = logging.getLogger("scim_roles.serve")
MAX_BODY = 1024 * 1024  # 1 MiB: a SCIM request is far smaller
_JSON_TYPES = ("application/scim+json", "application/json")
_RETRIES = 20


class ScimApp:
    """The SCIM endpoint.

    Args:
        store: Where the state lives (:class:`~scim_roles.store.SqliteStore`, or
            your own :class:`~scim_roles.store.Store`).
        token: The bearer token the IdP sends; or give ``check_token``.
        check_token: A function deciding whether a presented token is good
            (yours must compare in constant time).
        base_path: The path the app answers under when served alone
            (``/scim/v2``); when mounted, the framework's ``root_path``. A
            tuple of paths: it answers under each, the longest tried first
            (``("/scim/v2/acme", "/scim/v2")``), and locations name the one
            the request came in on.
        public_url: Where clients reach the server (``https://scim.example.com``,
            a path prefix allowed), for the ``Location`` header and
            ``meta.location``. By default the address the connection came in
            on (the ASGI ``server``). The ``Host`` header is never used: a
            client cannot point locations at another host.
        max_body: The largest request body accepted, in bytes (``413`` past it).
        request_log: Given each request's :class:`~scim_roles.store.LoggedRequest`
            once it is answered (time, method, path, status, the refusal's
            reason, duration; never a token or a body): a
            :class:`~scim_roles.store.RequestLog` keeps them in the state.
        clock: The time of a request (UTC now by default).
        mint_id: A new resource id (a random UUID by default).

    Raises:
        InvalidArgument: neither or both of ``token`` and ``check_token``, an
            empty token or one with spaces around it (it could never match),
            or a ``public_url`` that is not an ``http(s)://`` URL without query
            or fragment.
    """

    def __init__(  # noqa: PLR0913 -- every part a host may swap
        self,
        store: Store,
        *,
        token: str | None = None,
        check_token: Callable[[str], bool] | None = None,
        base_path: str | tuple[str, ...] = "",
        public_url: str | None = None,
        max_body: int = MAX_BODY,
        request_log: Callable[[LoggedRequest], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        mint_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        if (token is None) == (check_token is None) or token == "":
            raise InvalidArgument(Problem("ScimApp", "token", "give a non-empty token or a check_token function"))
        if token is not None and token != token.strip():
            raise InvalidArgument(
                Problem("ScimApp", "token", "has spaces or line breaks around it: it would never match a request's")
            )
        if token is not None:
            expected = token.encode()
            check_token = lambda presented: hmac.compare_digest(presented.encode(), expected)  # noqa: E731
        self._store = store
        self._check: Callable[[str], bool] = check_token  # type: ignore[assignment] # one of the two is given
        bases = (base_path,) if isinstance(base_path, str) else base_path
        self._bases = tuple(sorted({b.rstrip("/") for b in bases}, key=len, reverse=True))
        self._public = None if public_url is None else _public_url(public_url)
        self._max_body = max_body
        self._request_log = request_log
        self._clock = clock
        self._mint = mint_id
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: HTTP requests, and the lifespan protocol."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})  # the only other lifespan message
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        status, headers, body, changes = await self._answer(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers]
                + [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        ms = (time.perf_counter() - started) * 1000
        if self._request_log is not None:
            at = stamp(self._clock())
            self._request_log(LoggedRequest(at, scope["method"], scope["path"], status, _reason(status, body), ms))
        LOG.info(  # every text field quoted and escaped: a method or path can never forge a field or a line
            "method=%s path=%s status=%d ms=%.1f changes=%d",
            json.dumps(scope["method"]),
            json.dumps(scope["path"]),
            status,
            ms,
            changes,
        )

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[str, str]], bytes, int]:
        headers: dict[str, str] = {}
        repeated = False
        for k, v in scope["headers"]:
            name = k.decode("latin-1").lower()
            repeated = repeated or (name == "authorization" and name in headers)
            headers[name] = v.decode("latin-1")
        try:
            self._authenticate(headers, repeated=repeated)
            base, path = _below(scope, self._bases)
            method = scope["method"].upper()
            body = await self._body(headers, receive) if method in ("POST", "PUT", "PATCH") else None
        except _Refused as refused:
            return refused.answer
        query = scope.get("query_string", b"").decode("latin-1")
        base_url = (self._public or _server_url(scope)) + quote(scope.get("root_path", "")) + base
        try:
            result, changes = await asyncio.to_thread(self._process, method, path, body, query, base_url)
        except StoreUnavailable as err:  # T2: never acknowledged, never a traceback
            LOG.error("the state is unavailable: %s", json.dumps(str(err))[1:-1])  # noqa: TRY400 -- no traceback
            return _Refused(503, "the state cannot be written now: nothing was changed; retry later").answer
        return result.status, list(result.headers), result.body, changes

    def _authenticate(self, headers: dict[str, str], *, repeated: bool) -> None:
        if repeated:  # which of several tokens would count is a guess: refuse before any is checked
            raise _Refused(400, "send one Authorization header, not several")
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip() or not self._check(presented.strip()):
            raise _Refused(401, "a valid bearer token is required", ("WWW-Authenticate", 'Bearer realm="SCIM"'))

    async def _body(self, headers: dict[str, str], receive: Receive) -> Any:  # noqa: ANN401 -- decoded JSON
        too_large = _Refused(413, f"the request body is over {self._max_body} bytes")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise too_large
        raw = await _read_body(receive, self._max_body)
        if raw is None:
            raise too_large
        if not raw:
            return None
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _JSON_TYPES:
            raise _Refused(415, f"send the body as application/scim+json, not {media or 'no content type'!r}")
        try:
            return documents.loads(raw)
        except (ValueError, RecursionError) as err:
            reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
            raise _Refused(400, f"the body is not valid JSON: {reason}", scim_type="invalidSyntax") from None

    def _process(self, method: str, path: str, body: Any, query: str, base_url: str) -> tuple[ScimResponse, int]:  # noqa: ANN401
        """Load, handle, commit (retried if another process committed in between), serialized."""
        with self._lock:
            for _ in range(_RETRIES):
                snapshot = self._store.load()
                request = ScimRequest(
                    method, path, body, query=query, new_id=self._mint(), now=self._clock(), base_url=base_url
                )
                outcome = handle(snapshot.directory, request)
                if outcome.directory is snapshot.directory or self._store.commit(snapshot, outcome):
                    return outcome.response, len(outcome.changes)
            msg = "the store kept changing under the request"  # 20 lost races in a row
            raise RuntimeError(msg)


class _Refused(Exception):
    """An HTTP-level refusal (401, 404, 413, 415, 400, 503), with its SCIM error body."""

    def __init__(self, status: int, detail: str, *headers: tuple[str, str], scim_type: str | None = None) -> None:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
        if scim_type is not None:
            body["scimType"] = scim_type
        self.answer = (status, [("Content-Type", "application/scim+json"), *headers], json.dumps(body).encode(), 0)


def _below(scope: Scope, bases: tuple[str, ...]) -> tuple[str, str]:
    """The base the path is under, and the path below it, still percent-encoded (``%2F`` stays inside an id)."""
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    path = raw.decode("latin-1")  # no query string (ASGI); were one there, the service would leave it out
    for base in bases:
        prefix = quote(scope.get("root_path", "")) + base
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            return base, path[len(prefix) :] or "/"
    raise _Refused(404, "no SCIM endpoint here")


def _reason(status: int, body: bytes) -> str:
    """Why a request was refused, in a word or two, for the request log (``""`` for a success)."""
    if status < 400:
        return ""
    if status == 400 and b"(S13)" in body:  # S13: an email outside the claimed domains
        return "out of domain"
    return _REASONS.get(status, "invalid" if status < 500 else "error")


_REASONS = {
    401: "wrong token",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    412: "conflict",
    413: "too large",
    415: "unsupported media type",
    503: "unavailable",
}


def _server_url(scope: Scope) -> str:
    """The address the connection came in on, as a URL: the server's own, never the client's ``Host`` header."""
    scheme = scope.get("scheme", "http")
    host, port = scope.get("server") or ("localhost", None)
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    odd = any(c in "?#" or c.isspace() or not c.isprintable() for c in url)
    if odd or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(
            Problem("ScimApp", "public_url", f"must be an http(s):// URL without query or fragment, got {url!r}")
        )
    return url.rstrip("/")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()  # "http.disconnect" has no body and no more_body: the reading ends
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)
