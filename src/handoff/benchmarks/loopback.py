"""A Starlette app served by uvicorn on 127.0.0.1, from a thread: the fakes' common ground.

`LoopbackServer` binds a free port on 127.0.0.1 at construction (so `port` and `origin` are
known before it serves), runs uvicorn in a daemon thread, and stops it on `stop()` or when
the `with` block ends. `await self.stall(seconds)` in a handler holds an answer back (to play
a slow helpdesk, or a response lost past the client's timeout) but gives up as soon as the
server stops, so stopping never waits for it::

    class FakeThing(LoopbackServer):
        def __init__(self) -> None:
            super().__init__(Starlette(routes=[...]), name="Thing")

The benchmarks' fake helpdesk is one; the test suite's fakes are built on it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.applications import Starlette


class LoopbackServer:
    """Serves `app` on 127.0.0.1 from a background thread; use it as a context manager."""

    def __init__(self, app: Starlette, *, name: str) -> None:
        self._name = name
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"fake-{name}",
            daemon=True,
        )
        # Created by the first stall, on the server's own loop; set by stop().
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def origin(self) -> str:
        """The server's scheme, host and port: `http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Where a client of the fake API points; the origin unless a fake says otherwise."""
        return self.origin

    @property
    def stopping(self) -> bool:
        """True once `stop()` is called: a stalled answer has been cut short."""
        return self._server.should_exit

    def start(self) -> Self:
        """Start serving; return when the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the fake {self._name} server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving; stalled answers are cut short."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def stall(self, seconds: float) -> None:
        """Sleep `seconds` in a handler, or less if the server stops meanwhile."""
        if self._stopping is None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        if self._server.should_exit:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
