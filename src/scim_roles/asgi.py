"""A SCIM 2.0 endpoint as an ASGI application: mount it in any ASGI framework, or serve it alone.

>>> from scim_roles import Org, Role, Team
>>> from scim_roles.asgi import ScimApp
>>> from scim_roles.store import SqliteStore
>>> org = Org(teams=[Team("eng")], default_teams=["eng"], default_role=Role.MEMBER)
>>> app = ScimApp(SqliteStore(":memory:", org), token="s3cret")  # app.mount("/scim/v2", app) in FastAPI

The app authenticates (a bearer token, compared in constant time, checked
before anything is read), reads and checks the HTTP request (size, content
type, JSON), mints ids, reads the clock, and routes everything else through
:func:`scim_roles.scim.handle`. Requests are serialized, first come, first
served; writes that waited together are committed together, and each write
is committed to the store before it is answered. A turn that waits for no
lock and no other process (SQLite, the state in memory) is made on the
event loop's own thread, which then waits only for the disk; any other in a
worker thread. A write the store cannot make durable is answered ``503``
(the state is as it was). Part of the ``serve`` layer: needs the ``scim``
extra, and no web framework.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from . import _documents as documents
from ._errors import InvalidArgument, Problem
from .scim import Directory, Outcome, ScimRequest, ScimResponse, handle
from .scim._errors import ERROR_SCHEMA
from .store import (
    LoggedRequest,
    SqliteStore,
    SqlStore,
    Store,
    StoreUnavailable,
    authenticates,
    is_tenant_id,
    open_database,
)
from .store import _stamp as stamp

__all__ = ["ScimApp", "SqliteStore", "Store", "TenantApp"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

LOG = logging.getLogger("scim_roles.serve")
MAX_BODY = 1024 * 1024  # 1 MiB: a SCIM request is far smaller
_JSON_TYPES = ("application/scim+json", "application/json")
_RETRIES = 50
_WRITES = ("POST", "PUT", "PATCH", "DELETE")
_BACKOFF = 0.001  # seconds: after the n-th lost race, a random wait up to 2**n of these (at most 64)
_TOGETHER = 32  # at most this many waiting writes are handled in one turn and committed together

_Call = tuple[str, str, Any, str, str, float]  # method, path, body, query, base URL, when it came in (monotonic)
_Answer = tuple[ScimResponse, int]  # the response, and how many membership changes the request made


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
        self._sql = store if isinstance(store, SqlStore) else None  # its writes may start from its last state
        self._check: Callable[[str], bool] = check_token  # type: ignore[assignment] # one of the two is given
        bases = (base_path,) if isinstance(base_path, str) else base_path
        self._bases = tuple(sorted({b.rstrip("/") for b in bases}, key=len, reverse=True))
        self._public = None if public_url is None else _public_url(public_url)
        self._max_body = max_body
        self._request_log = request_log
        self._clock = clock
        self._mint = mint_id
        self._lock = threading.Lock()
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: HTTP requests, and the lifespan protocol."""
        if scope["type"] != "http":
            await _lifespan(scope, receive, send)
            return
        started = time.perf_counter()
        status, headers, body, changes = await self._answer(scope, receive)
        await _respond(send, status, headers, body)
        ms = (time.perf_counter() - started) * 1000
        if self._request_log is not None:
            at = stamp(self._clock())
            self._request_log(LoggedRequest(at, scope["method"], scope["path"], status, _reason(status, body), ms))
        _log_line(scope, status, ms, changes)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[str, str]], bytes, int]:
        arrived = time.monotonic()  # before its token is checked
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
        except StoreUnavailable as err:  # the tokens cannot be read
            LOG.error("the state is unavailable: %s", json.dumps(str(err))[1:-1])  # noqa: TRY400 -- no traceback
            return _Refused(503, "the state cannot be read now; retry later").answer
        query = scope.get("query_string", b"").decode("latin-1")
        base_url = (self._public or _server_url(scope)) + quote(scope.get("root_path", "")) + base
        try:
            result, changes = await self._in_turn((method, path, body, query, base_url, arrived))
        except StoreUnavailable as err:  # T2: never acknowledged, never a traceback
            LOG.error("the state is unavailable: %s", json.dumps(str(err))[1:-1])  # noqa: TRY400 -- no traceback
            return _Refused(503, "the state cannot be written now: nothing was changed; retry later").answer
        return result.status, list(result.headers), result.body, changes

    async def _in_turn(self, call: _Call) -> _Answer:
        """The request handled in its turn: first come, first served, in this event loop.

        Requests wait for their turn in the event loop, not in a worker
        thread: a burst of one tenant's requests holds one of the loop's few
        threads, not all of them, so another tenant's request is not held
        up, and no request waits through the turns of others that came after
        it. A turn takes the writes waiting in a row (at most
        :data:`_TOGETHER`) and commits them together; it is made on the
        loop's own thread if it waits for nothing (:meth:`_without_waiting`),
        else in a worker thread (:meth:`_process`).
        """
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        answered: asyncio.Future[_Answer] = loop.create_future()
        queue.waiting.append((call, answered))
        if queue.taker is None:
            queue.taker = loop.create_task(self._take(queue))
        return await answered

    async def _take(self, queue: _Queue) -> None:
        """Give the waiting requests their turns, in order, until none waits.

        A turn that waits for nothing is made on the event loop's own thread
        (:meth:`_without_waiting`), any other in a worker thread
        (:meth:`_process`); between two turns the loop serves the rest.
        """
        try:
            while queue.waiting:
                turn = queue.next_turn()
                calls = [call for call, _ in turn]
                try:
                    answers, ids = self._without_waiting(calls)
                    if answers is None:
                        answers = await asyncio.to_thread(self._process, calls, ids)
                except Exception as err:  # noqa: BLE001 -- the turn's requests' error: each of them raises it
                    answers = [err] * len(turn)
                for (_, answered), answer in zip(turn, answers, strict=True):
                    if answered.cancelled():
                        continue
                    if isinstance(answer, BaseException):
                        answered.set_exception(answer)
                    else:
                        answered.set_result(answer)
                await asyncio.sleep(0)  # the answered respond, and others' requests come in, before the next turn
        finally:
            queue.taker = None

    def _authenticate(self, headers: dict[str, str], *, repeated: bool) -> None:
        if repeated:  # which of several tokens would count is a guess: refuse before any is checked
            raise _repeated()
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip() or not self._check(presented.strip()):
            raise _unauthorized()

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

    def _without_waiting(self, calls: list[_Call]) -> tuple[list[_Answer | Exception] | None, list[str] | None]:
        """The turn made on the event loop's own thread, if it waits for nothing; else ``None``, and the ids minted.

        Handing a turn to a worker thread and its answers back costs about
        as much as the rest of a small write (docs/performance.md). So a
        turn whose store answers without waiting for a lock or another
        process (:meth:`~scim_roles.store.SqlStore.load_without_waiting`,
        :meth:`~scim_roles.store.SqlStore.commit_without_waiting`: its state
        in memory and current; for writes, SQLite with its write lock free)
        is made here, and the loop waits only for the disk's ``fsync``. Any
        other (this app's lock held by another event loop's turn, the state
        not in memory or moved, the write lock held, a write on PostgreSQL,
        a store of one's own) is made by :meth:`_process` in a worker
        thread, with the ids minted here, if any: each request's id is
        minted once.
        """
        sql = self._sql
        writes = calls[0][0] in _WRITES
        if sql is None or (writes and not sql.commits_without_waiting) or not self._lock.acquire(blocking=False):
            return None, None
        try:
            snapshot = sql.load_without_waiting(since=min(call[5] for call in calls))
            if snapshot is None:
                return None, None
            ids = [self._mint() for _ in calls]
            answers, outcomes = _handled(snapshot.directory, self._requests(calls, ids))
            if outcomes and not sql.commit_without_waiting(snapshot, _together(outcomes)):
                return None, ids  # it would wait, or another process committed first: in a worker thread
            return answers, ids
        finally:
            self._lock.release()

    def _process(self, calls: list[_Call], ids: list[str] | None = None) -> list[_Answer | Exception]:
        """Load, handle, commit (retried if another process committed in between), one turn at a time.

        Several writes in a turn are handled one after another, each on the
        state the one before left, and committed together: one transaction,
        one ``fsync``, and each is answered only once it is durable. A
        request whose handling raises is that request's error alone; the
        others' go on without it.

        A write to a :class:`~scim_roles.store.SqlStore` starts from the state
        it last loaded or committed, unread: its commit's compare-and-swap
        refuses it if another process moved the state, and it is made again
        from a current one. What changes nothing (a read, a refusal, a no-op)
        is answered only from a current state. ``ids``: the requests' ids,
        minted already (:meth:`_without_waiting`).
        """
        current = calls[0][0] not in _WRITES or self._sql is None
        lost = 0  # races lost so far
        with self._lock:  # its time taken in turn: the stamps of one process's writes follow their order
            requests = self._requests(calls, ids or [self._mint() for _ in calls])
            for _ in range(_RETRIES):
                if lost:  # another process committed first: a random while, so that no one starves
                    time.sleep(random.uniform(0, _BACKOFF * 2 ** min(lost, 6)))  # noqa: S311 -- not a secret
                snapshot = self._store.load() if current or self._sql is None else self._sql.load(current=False)
                answers, outcomes = _handled(snapshot.directory, requests)
                if not outcomes:
                    if current:
                        return answers
                    current = True  # answered from a state not known to be current: again, from a current one
                elif self._store.commit(snapshot, _together(outcomes)):
                    return answers
                else:
                    current, lost = True, lost + 1
            msg = "the store kept changing under the request"  # 50 lost races in a row
            raise RuntimeError(msg)

    def _requests(self, calls: list[_Call], ids: list[str]) -> list[ScimRequest]:
        """The turn's requests, each with its id and the time now (read with this app's lock held)."""
        return [
            ScimRequest(method, path, body, query=query, new_id=new_id, now=self._clock(), base_url=base_url)
            for (method, path, body, query, base_url, _), new_id in zip(calls, ids, strict=True)
        ]


def _handled(directory: Directory, requests: list[ScimRequest]) -> tuple[list[_Answer | Exception], list[Outcome]]:
    """Each request handled on the state the one before left: the answers, and the outcomes that changed it.

    A request whose handling raises has the error for its answer (the
    host's ``500``, that request's alone); the rest go on without it.
    """
    answers: list[_Answer | Exception] = []
    outcomes: list[Outcome] = []
    for request in requests:
        try:
            outcome = handle(directory, request)
        except Exception as err:  # noqa: BLE001 -- a host's 500 for this request; the rest go on
            answers.append(err)
            continue
        answers.append((outcome.response, len(outcome.changes)))
        if outcome.directory is not directory:
            outcomes.append(outcome)
            directory = outcome.directory
    return answers, outcomes


class _Queue:
    """An app's requests waiting for their turn in one event loop, and the task giving them their turns."""

    def __init__(self) -> None:
        self.waiting: deque[tuple[_Call, asyncio.Future[_Answer]]] = deque()
        self.taker: asyncio.Task[None] | None = None

    def next_turn(self) -> list[tuple[_Call, asyncio.Future[_Answer]]]:
        """The next turn's requests: a read alone, or the writes waiting in a row (at most :data:`_TOGETHER`)."""
        turn = [self.waiting.popleft()]
        if turn[0][0][0] in _WRITES:
            while self.waiting and self.waiting[0][0][0] in _WRITES and len(turn) < _TOGETHER:
                turn.append(self.waiting.popleft())
        return turn


def _together(outcomes: list[Outcome]) -> Outcome:
    """Writes handled one after another, as one outcome: the last state, every change in order, all they touched."""
    if len(outcomes) == 1:
        return outcomes[0]
    touched = dict(outcomes[0].touched)
    for outcome in outcomes[1:]:
        touched.update(outcome.touched)
    return Outcome(
        outcomes[-1].directory,
        outcomes[-1].response,
        tuple(change for outcome in outcomes for change in outcome.changes),
        touched,
        frozenset().union(*(outcome.touched_groups for outcome in outcomes)),
    )


class TenantApp:
    """Every tenant of a database, each at ``{base_path}/{tenant}`` with its own state, tokens and request log.

    Args:
        db: The database (:func:`~scim_roles.store.open_database`): an engine,
            a SQLite file path or a URL. Its tenants are found when a request
            names them: one added while the server runs is served at once.
        base_path: Where the tenants' endpoints are (``/scim/v2``).
        cache_size: At most this many tenants' states are kept in memory;
            the least recently used goes first, and is loaded again when a
            request needs it. None is loaded at start.
        default_tenant: Also served at ``base_path`` itself, as a 0.1 server
            was (an IdP pointed there keeps working), with ``token`` too.
        token: A bearer token of ``default_tenant`` besides its stored ones
            (``SCIM_ROLES_TOKEN``).
        public_url, max_body, clock, mint_id: As :class:`ScimApp` takes them.
        request_log: Called with each request's
            :class:`~scim_roles.store.LoggedRequest` and ``tenant=`` its
            tenant (a :class:`~scim_roles.store.RequestLog` keeps them in
            each tenant's log).

    A request for a tenant the database does not hold is answered as a
    wrong token is (the same ``401``, after the same hashing): the answer
    tells no one which tenants exist. With a ``default_tenant``, every path
    under ``base_path`` that names no tenant is the default tenant's (as a
    0.1 server answered it: ``/scim/v2/{unknown}`` is a ``404`` to its
    token holder).
    """

    def __init__(  # noqa: PLR0913 -- every part a host may swap
        self,
        db: Any,  # noqa: ANN401 -- an engine, a path or a URL, as open_database takes it
        *,
        base_path: str = "/scim/v2",
        cache_size: int = 100,
        default_tenant: str | None = None,
        token: str | None = None,
        public_url: str | None = None,
        max_body: int = MAX_BODY,
        request_log: Callable[..., None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        mint_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        if type(cache_size) is not int or cache_size < 1:
            raise InvalidArgument(
                Problem("TenantApp", "cache_size", f"must be a whole number from 1, got {cache_size!r}")
            )
        if token is not None and (not token or token != token.strip()):
            raise InvalidArgument(
                Problem("TenantApp", "token", "must be non-empty, without spaces or line breaks around it")
            )
        self._given, self._engine = db, open_database(db)
        if self._engine is not db:  # its own engine: closed with it
            weakref.finalize(self, self._engine.dispose)
        self._base = base_path.rstrip("/")
        self._size = cache_size
        self._default = default_tenant
        self._token = None if token is None else token.encode()
        self._public_url = None if public_url is None else _public_url(public_url)
        self._max_body, self._clock, self._mint = max_body, clock, mint_id
        self._request_log = request_log
        self._apps: OrderedDict[str, ScimApp] = OrderedDict()
        self._lock = threading.RLock()  # _app holds it while it asks _cached

    def close(self) -> None:
        """Close the database connections of an engine it opened itself (one it was given is the giver's)."""
        self._apps.clear()
        if self._engine is not self._given:
            self._engine.dispose()

    @property
    def cached(self) -> tuple[str, ...]:
        """The tenants whose states are in memory now, least recently used first."""
        with self._lock:
            return tuple(self._apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: each request to its tenant's app."""
        if scope["type"] != "http":
            await _lifespan(scope, receive, send)
            return
        tenant, bearer = self._tenant_of(scope), _bearer(scope)
        try:
            app = None if tenant is None else self._cached(tenant) or await asyncio.to_thread(self._app, tenant, bearer)
            if app is None and self._default is not None and tenant != self._default:
                # Not a tenant's path: the default tenant's, as a 0.1 server answered it (a resource it lacks: 404).
                app = await asyncio.to_thread(self._app, self._default, bearer)
        except StoreUnavailable as err:  # the tokens or the state cannot be read: never a traceback
            LOG.error("the state is unavailable: %s", json.dumps(str(err))[1:-1])  # noqa: TRY400 -- no traceback
            await _refuse(scope, send, _Refused(503, "the state cannot be read now; retry later"))
            return
        await (self._nobody if app is None else app)(scope, receive, send)

    def _tenant_of(self, scope: Scope) -> str | None:
        """The tenant a path names (``{base}/{tenant}/...``), else the default tenant for ``{base}/...``."""
        path = _mounted(scope)
        if path != self._base and not path.startswith(self._base + "/"):
            return None
        segment = path[len(self._base) + 1 :].split("/", 1)[0]
        if is_tenant_id(segment):
            return segment
        return self._default

    def _app(self, tenant: str, bearer: str | None) -> ScimApp | None:
        """The tenant's app: from the cache, else loaded (the least recently used dropped).

        ``None``: the tenant is not in memory and the request's token is not
        one of its tokens, whether or not the tenant exists (the same work:
        one read, one hash). Only a holder of its token loads a tenant.
        """
        with self._lock:
            app = self._cached(tenant)
            if app is not None:
                return app
            if not self._admits(tenant, bearer):
                return None
            store = SqlStore(self._engine, tenant=tenant)  # there: a token of it was found
            app = ScimApp(
                store,
                check_token=self._checker(store),
                base_path=(f"{self._base}/{tenant}", self._base)
                if tenant == self._default
                else f"{self._base}/{tenant}",
                public_url=self._public_url,
                max_body=self._max_body,
                request_log=self._log_of(tenant),
                clock=self._clock,
                mint_id=self._mint,
            )
            self._apps[tenant] = app
            while len(self._apps) > self._size:
                self._apps.popitem(last=False)
            return app

    def _cached(self, tenant: str) -> ScimApp | None:
        """The tenant's app if it is in memory (now the most recently used): asked on the event loop, no thread.

        ``None`` too while another thread holds the cache (opening a tenant:
        a read of its tokens): the caller then asks :meth:`_app` from a
        thread, and the event loop never waits.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            app = self._apps.get(tenant)
            if app is not None:
                self._apps.move_to_end(tenant)
            return app
        finally:
            self._lock.release()

    def _log_of(self, tenant: str) -> Callable[[LoggedRequest], None] | None:
        log = self._request_log
        return None if log is None else lambda entry: log(entry, tenant=tenant)

    def _admits(self, tenant: str, bearer: str | None) -> bool:
        """Whether ``bearer`` is a token of ``tenant``: a stored one, or ``token`` for the default tenant."""
        if bearer is None:
            return False
        stored = authenticates(self._engine, tenant, bearer, now=self._clock())
        from_environment = (
            tenant == self._default and self._token is not None and hmac.compare_digest(bearer.encode(), self._token)
        )
        return stored or from_environment

    def _checker(self, store: Any) -> Callable[[str], bool]:  # noqa: ANN401 -- a SqlStore
        expected = self._token if store.tenant == self._default else None

        def check(presented: str) -> bool:
            stored = store.check_token(presented)
            from_environment = expected is not None and hmac.compare_digest(presented.encode(), expected)
            return bool(stored or from_environment)

        return check

    async def _nobody(self, scope: Scope, _receive: Receive, send: Send) -> None:
        """No tenant's app: 404 outside the base path; inside it, what a tenant's app answers a wrong token.

        The token check (:meth:`_admits`) was made already, or no tenant was
        named: 401 (400 for several ``Authorization`` headers, as
        :class:`ScimApp` answers them).
        """
        path = _mounted(scope)
        if path != self._base and not path.startswith(self._base + "/"):
            refused = _Refused(404, "no SCIM endpoint here")
        elif sum(k.lower() == b"authorization" for k, _ in scope["headers"]) > 1:
            refused = _repeated()
        else:
            refused = _unauthorized()
        await _refuse(scope, send, refused)


async def _refuse(scope: Scope, send: Send, refused: _Refused) -> None:
    """Answer a request no tenant's app answers, and log its line."""
    status, headers, body, _ = refused.answer
    await _respond(send, status, headers, body)
    _log_line(scope, status, 0.0, 0)


def _bearer(scope: Scope) -> str | None:
    """The bearer token of a request's one ``Authorization`` header; ``None`` for none, or for several."""
    values = [v for k, v in scope["headers"] if k.lower() == b"authorization"]
    if len(values) != 1:
        return None
    scheme, _, presented = values[0].decode("latin-1").partition(" ")
    return presented.strip() if scheme.lower() == "bearer" and presented.strip() else None


def _mounted(scope: Scope) -> str:
    """The request's path below where the app is mounted (its ``root_path``)."""
    return str(scope["path"][len(scope.get("root_path", "")) :])


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """The lifespan protocol (nothing to start or stop); any other non-HTTP scope is ignored."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})  # the only other lifespan message


async def _respond(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers]
            + [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _log_line(scope: Scope, status: int, ms: float, changes: int) -> None:
    LOG.info(  # every text field quoted and escaped: a method or path can never forge a field or a line
        "method=%s path=%s status=%d ms=%.1f changes=%d",
        json.dumps(scope["method"]),
        json.dumps(scope["path"]),
        status,
        ms,
        changes,
    )


class _Refused(Exception):
    """An HTTP-level refusal (401, 404, 413, 415, 400, 503), with its SCIM error body."""

    def __init__(self, status: int, detail: str, *headers: tuple[str, str], scim_type: str | None = None) -> None:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
        if scim_type is not None:
            body["scimType"] = scim_type
        self.answer = (status, [("Content-Type", "application/scim+json"), *headers], json.dumps(body).encode(), 0)


def _unauthorized() -> _Refused:
    """The answer to a wrong, unknown, expired or revoked token, or to none (a new one each time it is raised)."""
    return _Refused(401, "a valid bearer token is required", ("WWW-Authenticate", 'Bearer realm="SCIM"'))


def _repeated() -> _Refused:
    """Which of several tokens would count is a guess: refused before any is checked."""
    return _Refused(400, "send one Authorization header, not several")


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
