"""Answers to the challenge at the proxy are checked where the engine is: once for all workers,
recorded in the event trail, and answered with a clear 503 when the decider cannot check them.

Real proxy processes over loopback (``scrapewarden proxy``), a SQLite state file, the
proof-of-work done in Python (see ``challenge_helpers``)."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from challenge_helpers import answer, read_page
from proxy_fixtures import DEADLINE, OutputReader, run_proxy, serve_upstream

from scrapewarden.core.policy import Policy
from scrapewarden.doors.own_pages import Client
from scrapewarden.doors.proxy_decider import RemoteDecider, _encode, _frames
from scrapewarden.state.summary import CHALLENGE_FAILED, CHALLENGE_PASSED
from scrapewarden.state.url import open_state
from scrapewarden.warden import Warden

BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-User": "?1",
    "Connection": "close",  # every exchange on its own connection: the kernel spreads them
}

REPLAYS = 24
"""Replays of one answer, each on its own connection: all landing on the same one of two
workers has a chance of 2**-24."""


@pytest.fixture
def upstream():
    with serve_upstream() as served:
        yield served


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str]:
    policy = tmp_path / "policy.toml"
    policy.write_text("[challenge]\nmin_bits = 10\nmax_bits = 12\n")
    return policy, f"sqlite:///{tmp_path / 'state.db'}"


def _post(url: str, form: dict[str, str], timeout: float = 10) -> requests.Response:
    return requests.post(
        f"{url}/.sw/verify", data=form, headers=BROWSER, allow_redirects=False, timeout=timeout
    )


def _challenged(url: str, path: str) -> dict[str, str]:
    """A solved answer to the challenge page served in place of ``path``."""
    first = requests.get(url + path, headers=BROWSER, timeout=10)
    assert first.status_code == 403, first.text[:200]
    return answer(read_page(first.text))


def _stopped_output(log: OutputReader) -> str:
    log.thread.join(DEADLINE)
    return "".join(log.lines)


def _worker_pids(output: str) -> list[int]:
    found = re.findall(r"worker pids \[([\d, ]+)\]", output)
    assert found, output
    return [int(pid) for pid in found[0].split(",")]


def _workers_listening(log: OutputReader, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while sum("proxy: worker listening" in line for line in log.lines) < count:
        assert time.monotonic() < deadline, f"not {count} workers listening: {log.lines}"
        time.sleep(0.05)


def _decider_with_both_workers(log: OutputReader, known: int = 0) -> int:
    """The pid of the (newest) decider, once both workers have connected to it."""
    deadline = time.monotonic() + DEADLINE
    while True:
        pids = [int(pid) for line in log.lines for pid in re.findall(r"decider pid (\d+)", line)]
        if pids and pids[-1] != known:
            joined = [line for line in log.lines if f"decider[{pids[-1]}] WARNING decider: worker" in line]
            if len(joined) == 2:
                return pids[-1]
        assert time.monotonic() < deadline, f"no decider with both workers: {log.lines}"
        time.sleep(0.05)


def _events_summary(state: str) -> dict[str, Any]:
    command = [sys.executable, "-c", "from scrapewarden.cli.main import main; main()"]
    out = subprocess.run(
        [*command, "events", "summary", "--json", "--since", "0", "--state", state],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("workers", ["2", "1"])
def test_an_answer_is_spent_once_whichever_worker_gets_it_and_every_answer_is_recorded(
    upstream, setup, workers
):
    port, seen = upstream
    policy, state = setup
    args = ("--policy", str(policy), "--state", state, "--workers", workers, "--under-attack")
    with run_proxy(port, *args) as (proc, url):
        log = OutputReader(proc)
        # The port answers once one worker listens; the replays must be able to reach both.
        if workers == "2":
            _workers_listening(log, 2)
        form = _challenged(url, "/people/1")
        wrong = dict(form, nonce="not a nonce")
        assert _post(url, wrong).status_code == 403
        statuses = Counter()
        for _ in range(REPLAYS + 1):
            reply = _post(url, form)
            statuses[reply.status_code] += 1
            if reply.status_code == 303:
                cookie = {"sw_clearance": reply.cookies["sw_clearance"]}
            else:
                assert "already used" in reply.text, reply.text[:300]
        assert statuses == {303: 1, 403: REPLAYS}
        landed = requests.get(f"{url}/people/1", headers=BROWSER, cookies=cookie, timeout=10)
        assert landed.status_code == 200
    assert seen.paths == ["/people/1"]
    output = _stopped_output(log)

    if workers == "2":
        # Both workers passed answers on: the decider counts what each sent it.
        stopping = re.search(
            r"decider: stopping after (\d+) decisions, answers checked per worker pid (\{.*?\})", output
        )
        assert stopping, output
        checked = ast.literal_eval(stopping.group(2))
        assert sorted(checked) == sorted(_worker_pids(output))
        assert all(count > 0 for count in checked.values()) and sum(checked.values()) == REPLAYS + 2
        counts = ast.literal_eval(re.search(r"challenges (\{.*?\})", output).group(1))  # type: ignore[union-attr]
        # One page issued (by a worker, reported to the decider), one answer passed.
        assert counts["issued"] == 1 and counts["passed"] == 1
        assert (
            counts["refused.replayed"] == REPLAYS
            and counts["refused.malformed"] + counts.get("refused.too_few_bits", 0) == 1
        )

    store = open_state(state)
    try:
        events = store.events(limit=1000)
    finally:
        store.close()
    answers = [event for event in events if event.action in (CHALLENGE_PASSED, CHALLENGE_FAILED)]
    assert Counter(event.action for event in answers) == {CHALLENGE_PASSED: 1, CHALLENGE_FAILED: REPLAYS + 1}
    # The address is stored as the store's keyed pseudonym, never as it is.
    pseudonym = Warden(str(policy), state=state).pseudonymizer.ip("127.0.0.1")
    assert pseudonym != "127.0.0.1"
    assert {event.ip for event in answers} == {pseudonym}
    assert all(event.path == "/.sw/verify" for event in answers)
    summary = _events_summary(state)
    assert summary["challenges"] == 1 and summary["passed"] == 1 and summary["solve_rate"] == 1.0
    assert summary["refused_by_reason"]["replayed"] == REPLAYS


def _dead(pid: int) -> bool:
    """Gone or a zombie: its sockets are closed either way."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_without_the_decider_answers_get_a_503_the_proxy_keeps_serving_and_recovers(upstream, setup):
    port, seen = upstream
    policy, state = setup
    args = ("--policy", str(policy), "--state", state, "--workers", "2", "--under-attack")
    unavailable = 0
    with run_proxy(port, *args) as (proc, url):
        log = OutputReader(proc)
        decider = _decider_with_both_workers(log)
        form = _challenged(url, "/people/1")
        # The supervisor is held still, so the decider stays dead until we let it go on.
        proc.send_signal(signal.SIGSTOP)
        try:
            os.kill(decider, signal.SIGKILL)
            deadline = time.monotonic() + DEADLINE
            while not _dead(decider):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            for _ in range(8):
                # Inside the workers' wait for a slow decider (15 s): a dead one is known at once.
                refused = _post(url, form, timeout=10)
                assert refused.status_code == 503, refused.text[:300]
                assert refused.headers["Retry-After"] == "5" and "Set-Cookie" not in refused.headers
                assert (
                    "try again" in refused.text.lower()
                    and "sw-" in refused.headers["X-ScrapeWarden-Reference"]
                )
                unavailable += 1
            # Everything else is still served (let through, as decisions fail open; logged).
            assert requests.get(f"{url}/people/2", headers=BROWSER, timeout=5).status_code == 200
            assert requests.get(f"{url}/.sw/challenge", headers=BROWSER, timeout=5).status_code == 200
        finally:
            proc.send_signal(signal.SIGCONT)
        log.wait_for("starting a new one")
        # The answer was never spent: once the new decider is up and a worker has reached it,
        # it passes, exactly once.
        deadline = time.monotonic() + DEADLINE
        while (reply := _post(url, form)).status_code == 503:
            unavailable += 1
            assert time.monotonic() < deadline, "the workers never reached the new decider"
            time.sleep(0.1)
        assert reply.status_code == 303, reply.text[:300]
        _decider_with_both_workers(log, known=decider)
        assert sum("reached the decider again" in line for line in log.lines) == 2, "".join(log.lines)
        for _ in range(8):  # both workers are back: a replay is refused whichever gets it
            again = _post(url, form)
            assert again.status_code == 403 and "already used" in again.text
    assert seen.paths == ["/people/2"]
    output = _stopped_output(log)
    # Every 503 was counted by the worker that sent it.
    counted = [int(n) for n in re.findall(r"worker: (\d+) answers got a 503", output)]
    assert sum(counted) == unavailable, output
    assert "lost the decider" in output


def test_a_stuck_decider_costs_a_bounded_wait_and_a_503(tmp_path):
    """A decider that takes the answer and never replies: the worker gives up after its wait."""
    path = tmp_path / "decider.sock"
    received: list[Any] = []

    async def scenario() -> tuple[Any, int]:
        async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            buffer = bytearray()
            while data := await reader.read(65536):
                buffer += data
                for frame in _frames(buffer):
                    received.append(frame)
                    if frame[0] == "key":
                        writer.write(_encode(("key", b"k" * 32)))

        server = await asyncio.start_unix_server(stuck, str(path))
        decider = RemoteDecider(path, Policy(), asyncio.get_running_loop(), verify_wait=0.5)
        await decider.connect()
        reply = await decider.verify({"challenge": "x", "nonce": "1"}, Client("192.0.2.1", "UA", True, "en"))
        decider.close()
        server.close()
        return reply, decider.unchecked

    reply, unchecked = asyncio.run(scenario())
    assert reply.status == 503 and b"try again" in reply.body.lower()
    assert unchecked == 1
    kinds = [frame[0] for frame in received]
    assert kinds[0] == "key" and kinds[1] == "verify"
    assert received[1][2:] == ({"challenge": "x", "nonce": "1"}, "192.0.2.1", "UA", True)
