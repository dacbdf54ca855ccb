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
import contextlib
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


CONNECT_TIMEOUT = 0.5
"""At least this long to connect: nobody waits on it beyond their own deadline (see batch)."""


def _retrieve(task: asyncio.Future[None]) -> None:
    """Mark a connection attempt's failure as seen: the callers who awaited it may have gone."""
    if not task.cancelled():
        task.exception()


class RespConnection:
    """Sends batches of commands on one connection and returns their replies, in order.

    Batches are pipelined: a batch is written at once, even while earlier ones await their
    replies, and one reader task hands the replies out in order. So this process prepares the
    next batch while Redis works through the last (on two cores, each gets one).
    """

    def __init__(self, config: RedisConfig, *, stale_after: float = 1.0) -> None:
        self.config = config
        self.stale_after = stale_after
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = _Parser()
        self._connecting: asyncio.Future[None] | None = None
        self._waiting: deque[tuple[int, list[object], asyncio.Future[list[object]], float]] = deque()
        """Batches sent and not yet answered: replies wanted, replies so far, the caller, when sent."""
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
            asyncio.open_connection(host, port, ssl=context), max(config.connect_timeout, CONNECT_TIMEOUT)
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
                    wanted, got, done, _ = waiting[0]
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
        up (its deadline) leaves the connection as it is: its replies are read and dropped when
        they come. (Dropping the connection instead made one slow moment a storm: every batch
        in flight failed, and the reconnections ran into the deadline in turn.) A server that
        has not answered the oldest batch in ``stale_after`` seconds has stopped, though: the
        connection is dropped and the next batch opens a fresh one.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._waiting and now - self._waiting[0][3] > self.stale_after:
            self.close()
        if self._writer is None:
            # Connecting goes on in the background: a caller's deadline ends its wait, not the
            # connection, which the next batch then finds open.
            if self._connecting is None or self._connecting.done():
                self._connecting = asyncio.ensure_future(self._connect())
                self._connecting.add_done_callback(_retrieve)
            await asyncio.shield(self._connecting)
        assert self._writer is not None
        done: asyncio.Future[list[object]] = loop.create_future()
        self._waiting.append((len(commands), [], done, now))
        self._writer.write(b"".join(commands))
        return await done

    async def scripts(self, commands: Sequence[bytes], texts: Sequence[str]) -> list[object]:
        """:meth:`batch` for EVALSHA commands, ``texts[i]`` the script ``commands[i]`` runs. A
        restarted or flushed server does not know them: the scripts it refused are loaded once,
        and only the calls it refused are sent again (the others counted already)."""
        replies = await self.batch(commands)
        refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScript)]
        if refused:
            unknown = dict.fromkeys(texts[i] for i in refused)
            await self.batch([pack("SCRIPT", "LOAD", text) for text in unknown])
            for i, reply in zip(refused, await self.batch([commands[i] for i in refused]), strict=True):
                replies[i] = reply
        return replies

    def _drop(self, exc: BaseException) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        reading, self._reading = self._reading, None
        waiting, self._waiting = self._waiting, deque()
        for _, _, done, _ in waiting:
            if not done.done():
                done.set_exception(exc)
        try:
            current = asyncio.current_task()
        except RuntimeError:  # closed from outside any loop (at shutdown)
            current = None
        # At shutdown the loop that made them may be closed already: nothing left to stop then.
        with contextlib.suppress(RuntimeError):
            if reading is not None and reading is not current:
                reading.cancel()
        with contextlib.suppress(RuntimeError):
            if writer is not None:
                writer.close()

    def close(self) -> None:
        connecting, self._connecting = self._connecting, None
        if connecting is not None and not connecting.done():
            connecting.cancel()
        self._drop(ConnectionError("connection closed"))
