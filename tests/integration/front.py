"""A fixed appservice address for the whole test session, forwarding to the bridge under test.

Synapse's registration names one URL for the session, but each test runs its own bridge
on its own port. Had Synapse's requests failed while no bridge listens (between tests,
during a restart), it would back off for growing periods and later tests would wait. The
front forwards each request to the current bridge and answers 200 when none is attached,
so Synapse never backs off. Tests that check the bridge's own HTTP behaviour (tokens,
replays) talk to the bridge's port directly.
"""

from __future__ import annotations

import asyncio
import threading

import aiohttp
from aiohttp import web


class ThreadedProxy:
    """An aiohttp server on its own event loop in a thread, passing every request to
    ``_forward``: the tests' own plumbing between Synapse and the bridge (or Synapse's
    processes), running beside the test's loop."""

    name = "proxy"

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"the {self.name} did not start")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def session(self) -> aiohttp.ClientSession:
        """The client session requests are passed on with (made on the proxy's loop)."""
        return aiohttp.ClientSession()

    def _prepare(self) -> None:
        """Set-up on the proxy's loop before it serves."""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._prepare()
        # Synapse's transactions can be several MiB: the proxy passes on whatever it gets.
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)  # test plumbing: its lines are not the bridge's
        self._loop.run_until_complete(self._serve())
        self._started.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = self.session()

    async def _close(self) -> None:
        await self._session.close()
        await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


class AppserviceFront(ThreadedProxy):
    name = "appservice-front"

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.target: str | None = None
        # While True and no bridge is attached, answer 503 as a stopped bridge would (Synapse
        # keeps the events and sends them again later) instead of 200.
        self.down = False
        # While cleared, requests wait before they are forwarded: the bridge looks paused to
        # Synapse, which queues the events that arrive meanwhile into its next transaction.
        self._open: asyncio.Event | None = None
        # Forward this many requests and then answer 503, as if the acknowledgement were lost
        # on the way back: Synapse sends the same transaction again.
        self.lose_acks = 0
        # While True, transactions are refused with 503 even with a bridge attached, until a ping
        # from the homeserver goes through once ``refused`` reached ``_hold_until``: only the
        # bridge asking for that ping brings held-back events, not the homeserver's own retries.
        self.refuse_until_pinged = False
        self._hold_until = 0
        self.pings = 0
        self.refused = 0

    def hold_until_pinged(self, refusals: int = 0) -> None:
        """Refuse transactions until a ping gets through after ``refusals`` more refusals."""
        self._hold_until = self.refused + refusals
        self.refuse_until_pinged = True

    def pause(self) -> None:
        self._loop.call_soon_threadsafe(self._open.clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._open.set)

    def _prepare(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    async def _forward(self, request: web.Request) -> web.Response:
        await self._open.wait()
        target = self.target
        if target is None or (self.refuse_until_pinged and "/transactions/" in request.path):
            self.refused += "/transactions/" in request.path
            return web.Response(status=503) if self.down or self.refuse_until_pinged else web.json_response({})
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        try:
            async with self._session.request(
                request.method, target + request.path_qs, data=body, headers=headers
            ) as resp:
                answer = web.Response(status=resp.status, body=await resp.read(), content_type=resp.content_type)
        except aiohttp.ClientError:
            # Attached but not listening yet (a bridge starting) or no more: while down, a refusal
            # that Synapse retries; otherwise dropped, so a shared Synapse never backs off.
            return web.Response(status=503) if self.down else web.json_response({})
        if request.path.endswith("/ping") and answer.status == 200:
            self.pings += 1
            if self.refused >= self._hold_until:
                self.refuse_until_pinged = False
        if self.lose_acks and answer.status == 200 and "/transactions/" in request.path:
            self.lose_acks -= 1
            return web.Response(status=503)
        return answer
