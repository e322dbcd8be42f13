"""A MongoDB connection dropped by the server while idle is replaced, not written on.

SecantusDB closes a connection idle for 300 s (cloud load balancers do the same after 4–6
minutes). PyMongo's async pool does not read from an idle connection, so it does not see the
close; the next write goes out on the dead socket and fails with ``AutoReconnect`` (with
``retryWrites=false``, as the embedded default needs). Found by the 100k bench: its 30-minute
prefill left every service's pool stale, and the first burst after it failed relay and timer
passes and waited for their next try (the burst ran at half speed). ``shared.mongo.make_client``
sets ``maxIdleTimeMS`` (``JIANDU_MONGO_MAX_IDLE_MS``) below such a cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest
from pymongo.errors import AutoReconnect

from devtools.embedded import EmbeddedServers, mongo_uri_of
from shared.mongo import make_client


class IdleDroppingProxy:
    """A TCP proxy in front of MongoDB that silently closes a connection that carried a write
    and then stayed idle for ``idle_s`` (the driver's monitor connections, which only say
    ``hello``, are left alone: dropping those would reset the pool and hide the failure)."""

    def __init__(self, upstream: tuple[str, int], idle_s: float) -> None:
        self.upstream = upstream
        self.idle_s = idle_s
        self.dropped = 0
        self._dropped_one = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> IdleDroppingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_dropped(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.dropped < count:
                self._dropped_one.clear()
                await self._dropped_one.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        last = time.monotonic()
        wrote = False

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, client: bool) -> None:
            nonlocal last, wrote
            while data := await src.read(65536):
                last = time.monotonic()
                wrote = wrote or (client and b"\x02insert\x00" in data)
                dst.write(data)
                await dst.drain()

        pipes = [
            asyncio.create_task(pipe(reader, up_writer, True)),
            asyncio.create_task(pipe(up_reader, writer, False)),
        ]
        try:
            while True:  # until a side closes, or the connection carried a write and went idle
                idle_for = time.monotonic() - last
                if wrote and idle_for >= self.idle_s:
                    self.dropped += 1
                    self._dropped_one.set()
                    break
                closed, _ = await asyncio.wait(
                    pipes, timeout=self.idle_s - idle_for, return_when=asyncio.FIRST_COMPLETED
                )
                if closed:
                    break
        finally:
            for p in pipes:
                p.cancel()
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()
            self._tasks.discard(task)


async def test_a_connection_the_server_dropped_while_idle_is_replaced_not_written_on(
    servers: EmbeddedServers,
) -> None:
    db_name = f"idle_{uuid.uuid4().hex[:8]}"
    async with IdleDroppingProxy(("127.0.0.1", servers.mongo_port), idle_s=0.5) as proxy:
        uri = mongo_uri_of(proxy.port)
        # Without a max idle time shorter than the server's cut (the hazard itself):
        stale = make_client(uri, "idle-stale", max_idle_ms=3_600_000)
        # As every service's client is made (JIANDU_MONGO_MAX_IDLE_MS below the cut):
        kept = make_client(uri, "idle-kept", max_idle_ms=200)
        try:
            for name, client in (("stale", stale), ("kept", kept)):
                await client[db_name]["things"].insert_one({"_id": f"before-{name}"})
            await proxy.wait_dropped(2)  # both pooled connections, idle, closed by "the server"

            with pytest.raises(AutoReconnect):
                await stale[db_name]["things"].insert_one({"_id": "after-stale"})
            await kept[db_name]["things"].insert_one({"_id": "after-kept"})

            ids = {d["_id"] async for d in kept[db_name]["things"].find({}, {"_id": 1})}
            assert ids == {"before-stale", "before-kept", "after-kept"}
        finally:
            await stale.close()
            await kept.close()
