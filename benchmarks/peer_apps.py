"""The ASGI apps ``serve_bench.py --peer`` measures beside ``scim-roles serve``, each under the same uvicorn.

``scim2_server()``: scim2-server's own ASGI app over its in-memory storage,
with the RFC 7643 schemas, User and Group, and one static bearer token
(``PEER_TOKEN``), as its ``scim2-server`` command builds it (not durable:
nothing is written anywhere). Needs ``pip install scim2-server`` in the
benchmark's environment. ``bare()``: the least an ASGI app can answer, a
``200`` with ``{}``: the ceiling of the server and client alone.

Started by ``python -m uvicorn peer_apps:scim2_server --factory ...`` from this folder.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def scim2_server() -> Any:
    """scim2-server's ASGI app, in memory, accepting the bearer token ``PEER_TOKEN``."""
    from scim2_models import ScimProvider, UnauthorizedException  # noqa: PLC0415
    from scim2_server.applications.asgi import ASGIApplication  # noqa: PLC0415
    from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage  # noqa: PLC0415
    from scim2_server.service import ScimService  # noqa: PLC0415
    from scim2_server.testserver.application import BEARER_TOKEN_SCHEME  # noqa: PLC0415
    from scim2_server.utils import (  # noqa: PLC0415
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    token = os.environ["PEER_TOKEN"]
    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )

    class Application(ASGIApplication):  # type: ignore[misc]  # scim2-server: an optional dependency, untyped here
        def check_auth(self, request: Any) -> None:
            scheme, _, presented = (request.header("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or presented != token:
                raise UnauthorizedException

    return Application(
        AsyncInMemoryStorage(InMemoryStorage()), provider, ScimService(provider, secret=os.urandom(16).hex())
    )


def bare() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app that answers every request ``200 {}`` after reading its body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})

    return app
