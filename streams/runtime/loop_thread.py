"""An event loop on a thread of its own, for running coroutines from synchronous code.

The test driver is synchronous, but the calls of async steps (``map_async``) need an event
loop. It cannot use one of the caller's thread: there may already be one running there (a
notebook, an async test), and ``run_until_complete`` refuses to nest. So the driver runs them
here, blocking until they end; one loop for the driver's life, so clients a function keeps
(an ``aiohttp`` session) stay usable from one call to the next.

>>> import asyncio
>>> lt = LoopThread()
>>> async def two():
...     await asyncio.sleep(0)
...     return 2
>>> lt.run(two())
2
>>> lt.close()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """A daemon thread running an event loop, started at the first :meth:`run`."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the thread's loop; block until it ends and return its result (or
        raise its exception)."""
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name="streams-driver-async", daemon=True
            )
            self._thread.start()
            self._loop = loop
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Cancel what is still running, stop the loop and the thread."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()

        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join()
        loop.close()


__all__ = ["LoopThread"]
