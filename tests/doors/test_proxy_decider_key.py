"""The proxy's decider sends its workers the challenge key again when it changes: a key made
while the state store could not answer is replaced by the shared one once it can
(``ChallengeService.converge_key``), and the workers, which sign the challenge pages, must then
sign with that one. A real decider service on a Unix socket; the worker's side is the socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scrapewarden.core.policy import Policy
from scrapewarden.doors.proxy_decider import DeciderService, _encode, _frames
from scrapewarden.warden import Warden


async def _read_frames(reader: asyncio.StreamReader, buffer: bytearray, count: int) -> list[object]:
    frames: list[object] = []
    while len(frames) < count:
        data = await asyncio.wait_for(reader.read(1 << 16), 5)
        assert data, "the decider closed the connection"
        buffer += data
        frames += _frames(buffer)
    return frames


def test_the_workers_get_the_new_key_with_the_next_answer(tmp_path: Path) -> None:
    async def run() -> None:
        warden = Warden(Policy(), state="memory://")
        service = DeciderService(warden)
        path = tmp_path / "decider.sock"
        server = await service.serve(path)
        reader, writer = await asyncio.open_unix_connection(str(path))
        buffer = bytearray()
        try:
            writer.write(_encode(("key", 4242)))
            (first,) = await _read_frames(reader, buffer, 1)
            assert first == ("key", warden.challenges.key)
            request = (1, "192.0.2.1", "GET", "/", "", "http", [(b"user-agent", b"curl/8")])
            writer.write(_encode(request))
            (answer,) = await _read_frames(reader, buffer, 1)
            assert isinstance(answer, tuple) and answer[0] == 1  # no key frame: it did not change

            shared = bytes(range(32))
            warden.challenges.key = shared  # what converge_key() does once the store answers
            writer.write(_encode((2, *request[1:])))
            key_frame, answer = await _read_frames(reader, buffer, 2)
            assert key_frame == ("key", shared)
            assert isinstance(answer, tuple) and answer[0] == 2
        finally:
            writer.close()
            server.close()
            warden.close()

    asyncio.run(run())
