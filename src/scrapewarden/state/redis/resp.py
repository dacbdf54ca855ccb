"""A lean asyncio connection for the shared counters' hot path: batches of EVALSHA, nothing else.

Why not redis-py here: measured on this project's machine, redis-py's asyncio client spends about
36 µs packing and 20 µs parsing each EVALSHA (cProfile, `bench state`), more than the whole
engine's decision; with two or three actors per request that caps one instance at a few thousand
decisions per second. This class writes the RESP commands with one ``bytes.join`` and parses the
replies (arrays of bulk strings, or errors) from its buffer without a coroutine per line.
Everything else — the store, Cluster, Sentinel, script loading — stays on redis-py.

One connection. The counters put every request in flight into one batch per event-loop tick, so
a busy instance sends few, large batches; batches are pipelined (see :class:`RespConnection`).
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections import deque
from collections.abc import Sequence

from .config import RedisConfig


class RespError(Exception):
    """An error reply (``-ERR …``, ``-NOSCRIPT …``)."""


class NoScript(RespError):
    """The server does not know the script (restarted, flushed): load it and try again."""


def pack(*parts: str | bytes) -> bytes:
    """One RESP command (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


INCOMPLETE = object()
"""What :meth:`_Parser.reply` returns until a whole reply is in the buffer (a reply may be nil)."""


class _Parser:
    """Replies from a byte buffer, one at a time."""

    __slots__ = ("buf", "pos")

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0

    def feed(self, data: bytes) -> None:
        self.buf = self.buf[self.pos :] + data
        self.pos = 0

    def reply(self) -> object:
        start = self.pos
        try:
            value = self._value()
        except IndexError:  # incomplete: wait for more bytes
            self.pos = start
            return INCOMPLETE
        return value

    def _line(self) -> bytes:
        end = self.buf.find(b"\r\n", self.pos)
        if end < 0:
            raise IndexError
        line = self.buf[self.pos : end]
        self.pos = end + 2
        return line

    def _value(self) -> object:
        line = self._line()
        if not line:
            raise IndexError
        kind, rest = line[:1], line[1:]
        if kind == b"*":
            n = int(rest)
            return [self._value() for _ in range(n)] if n >= 0 else None
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            end = self.pos + n
            if end + 2 > len(self.buf):
                raise IndexError
            data = self.buf[self.pos : end]
            self.pos = end + 2
            return data
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        if kind == b"-":
            text = rest.decode("utf-8", "replace")
            return NoScript(text) if text.startswith("NOSCRIPT") else RespError(text)
        raise RespError(f"unexpected reply type {kind!r}")


class RespConnection:
    """Sends batches of commands on one connection and returns their replies, in order.

    Batches are pipelined: a batch is written at once, even while earlier ones await their
    replies, and one reader task hands the replies out in order. So this process prepares the
    next batch while Redis works through the last (on two cores, each gets one).
    """

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = _Parser()
        self._lock = asyncio.Lock()
        self._waiting: deque[tuple[int, list[object], asyncio.Future[list[object]]]] = deque()
        self._reading: asyncio.Task[None] | None = None

    async def _connect(self) -> None:
        config = self.config
        host, port = config.nodes[0]
        context = None
        if config.tls:
            context = ssl_module.create_default_context(cafile=config.ssl_ca_certs)
            if config.ssl_cert_reqs == "none":
                context.check_hostname = False
                context.verify_mode = ssl_module.CERT_NONE
            if config.ssl_certfile:
                context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), config.connect_timeout
        )
        self._parser = _Parser()
        hello: list[bytes] = []
        if config.password is not None:
            if config.username:
                hello.append(pack("AUTH", config.username, config.password))
            else:
                hello.append(pack("AUTH", config.password))
        if config.db:
            hello.append(pack("SELECT", str(config.db)))
        try:
            if hello:
                for reply in await self._exchange(reader, writer, hello):
                    if isinstance(reply, RespError):
                        raise reply
        except BaseException:
            writer.close()
            raise
        self._reader, self._writer = reader, writer
        self._reading = asyncio.ensure_future(self._read(reader))

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, commands: Sequence[bytes]
    ) -> list[object]:
        """Send and wait for the replies, before the reader task runs (the connection's hello)."""
        writer.write(b"".join(commands))
        replies: list[object] = []
        parser = self._parser
        while len(replies) < len(commands):
            reply = parser.reply()
            if reply is INCOMPLETE:
                data = await reader.read(1 << 16)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                parser.feed(data)
                continue
            replies.append(reply)
        return replies

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Hand out replies to the batches in the order they were sent."""
        parser, waiting = self._parser, self._waiting
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                parser.feed(data)
                while waiting:
                    wanted, got, done = waiting[0]
                    while len(got) < wanted:
                        reply = parser.reply()
                        if reply is INCOMPLETE:
                            break
                        got.append(reply)
                    if len(got) < wanted:
                        break
                    waiting.popleft()
                    if not done.done():
                        done.set_result(got)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._drop(exc)

    async def batch(self, commands: Sequence[bytes]) -> list[object]:
        """Send ``commands`` and return their replies (errors as :class:`RespError` values).
        A broken connection is dropped, so the next batch opens a fresh one. A caller that gives
        up (a deadline) drops the connection too: a server that slow is not to be queued on."""
        if self._writer is None:
            async with self._lock:
                if self._writer is None:
                    await self._connect()
        assert self._writer is not None
        done: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
        self._waiting.append((len(commands), [], done))
        self._writer.write(b"".join(commands))
        try:
            return await done
        except asyncio.CancelledError:
            self.close()
            raise

    def _drop(self, exc: BaseException) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        reading, self._reading = self._reading, None
        waiting, self._waiting = self._waiting, deque()
        for _, _, done in waiting:
            if not done.done():
                done.set_exception(exc)
        if reading is not None and reading is not asyncio.current_task():
            reading.cancel()
        if writer is not None:
            writer.close()

    def close(self) -> None:
        self._drop(ConnectionError("connection closed"))
