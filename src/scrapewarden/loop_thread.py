"""An asyncio event loop on a daemon thread of its own, for synchronous callers.

The shared counters (:mod:`scrapewarden.state.redis.counters`) are asyncio code: their client,
their lean connection and their per-tick batching all live on one event loop. Synchronous
doors (WSGI worker threads, the ``watch`` loop) have no loop, so each :class:`~.warden.Warden`
that needs one starts a single loop thread (lazily, on first use) and hands it coroutines with
:func:`asyncio.run_coroutine_threadsafe`. One loop for all threads keeps the counters'
connections on one loop and lets requests from many threads share one pipelined round trip.

A process forked after the thread started (a pre-forking WSGI server loading the app first)
does not inherit the thread: :meth:`LoopThread.submit` notices the new process id and starts a
fresh loop there, and says so, so the caller can make fresh connections for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "scrapewarden-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.closed = False

    def running(self) -> bool:
        """True when this process's loop thread is up."""
        return self._loop is not None and self._pid == os.getpid()

    def ensure(self) -> bool:
        """Start the loop thread if this process has none; True when one was started now."""
        if self.running():
            return False
        with self._lock:
            if self.running():
                return False
            if self.closed:
                raise RuntimeError("the loop thread is closed")
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name=self.name, daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return True

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on the loop thread (started if need be); its future.
        Raises RuntimeError after :meth:`close`."""
        try:
            self.ensure()
        except RuntimeError:
            coroutine.close()  # never to run: say so quietly, not as a "never awaited" warning
            raise
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def close(self, cleanup: Coroutine[Any, Any, Any] | None = None, timeout: float = 2.0) -> None:
        """Run ``cleanup`` (closing connections, say) on the loop, then stop and join the thread.
        A ``cleanup`` that cannot run (no loop here) is closed unrun."""
        with self._lock:
            self.closed = True
            loop, thread = self._loop, self._thread
            mine = loop is not None and self._pid == os.getpid()
            self._loop = self._thread = None
        if not mine or loop is None or thread is None:
            if cleanup is not None:
                cleanup.close()
            return
        if cleanup is not None:
            # A dead Redis must not hold up shutting down.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cleanup, loop).result(timeout)
        # Calls still waiting on a server that stopped answering are cancelled and unwound
        # here, not left to be torn down with the closed loop.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_others(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()


async def _cancel_others() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
