"""The event-loop thread synchronous doors use to reach the shared counters."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from scrapewarden.loop_thread import LoopThread


async def where() -> tuple[str, int]:
    await asyncio.sleep(0)
    return threading.current_thread().name, id(asyncio.get_running_loop())


def test_callers_on_many_threads_share_one_loop_and_close_stops_it() -> None:
    loops = LoopThread(name="sw-test-loop")
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def call() -> None:
        result = loops.submit(where()).result(5)
        with lock:
            seen.append(result)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 8 and len(set(seen)) == 1
    assert seen[0][0] == "sw-test-loop"
    thread = next(t for t in threading.enumerate() if t.name == "sw-test-loop")
    assert thread.daemon

    hung = loops.submit(asyncio.sleep(3600))  # a call still waiting is cancelled by close
    loops.close()
    assert hung.cancelled() or isinstance(hung.exception(1), asyncio.CancelledError)
    assert not thread.is_alive()
    with pytest.raises(RuntimeError):
        loops.submit(where())


def test_a_forked_child_gets_a_loop_of_its_own() -> None:
    loops = LoopThread()
    _, parent_loop = loops.submit(where()).result(5)
    assert loops.ensure() is False  # already running here
    pid = os.fork()
    if pid == 0:  # the child: the parent's loop thread did not come along
        try:
            started = loops.ensure()
            _, child_loop = loops.submit(where()).result(5)
            os._exit(0 if started and child_loop != parent_loop else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    loops.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
