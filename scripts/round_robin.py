"""A round-robin TCP proxy: each new connection goes to the next of several servers, as a load balancer does.

Usage (.ci/run puts it in front of two ``scim-roles serve`` processes on one
PostgreSQL, so that the outside SCIM clients' connections alternate between
them)::

    python scripts/round_robin.py LISTEN_PORT PORT [PORT ...]

Listens on 127.0.0.1 and copies bytes both ways; nothing is parsed.
"""

from __future__ import annotations

import asyncio
import itertools
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(listen: int, ports: list[int]) -> None:
    """Serve until killed."""
    turns = itertools.cycle(ports)

    async def forward(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", next(turns))
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))

    server = await asyncio.start_server(forward, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), [int(p) for p in sys.argv[2:]]))
