"""The lean RESP reader and writer used for the shared counters' batches."""

import asyncio

import pytest
from redis_servers import RedisServer

from scrapewarden.state.redis.config import parse_redis_url
from scrapewarden.state.redis.resp import INCOMPLETE, NoScript, RespConnection, RespError, _Parser, pack


def test_pack_is_an_array_of_bulk_strings() -> None:
    assert pack("EVALSHA", "ab", "1", "k") == b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n"
    assert pack("é") == b"*1\r\n$2\r\n\xc3\xa9\r\n"  # lengths in bytes, not characters


@pytest.mark.parametrize("cut", range(1, 40))
def test_replies_split_anywhere_are_read_once_whole(cut: int) -> None:
    wire = b"*2\r\n$3\r\n1.5\r\n$-1\r\n:42\r\n+OK\r\n-NOSCRIPT No matching script\r\n-ERR wrong\r\n$-1\r\n"
    parser = _Parser()
    replies = []
    for chunk in (wire[:cut], wire[cut:]):
        parser.feed(chunk)
        while (reply := parser.reply()) is not INCOMPLETE:
            replies.append(reply)
    assert replies[:3] == [[b"1.5", None], 42, b"OK"]
    assert isinstance(replies[3], NoScript) and isinstance(replies[4], RespError)
    assert not isinstance(replies[4], NoScript) and "wrong" in str(replies[4])
    assert len(replies) == 6 and replies[5] is None  # a nil reply is a reply, not "wait"


def test_pipelined_batches_get_their_own_replies_and_a_caller_giving_up_breaks_nothing(
    redis_server: RedisServer,
) -> None:
    """Batches written back to back on one connection are answered in order; a caller whose
    deadline passes leaves the connection usable (its replies are read and dropped), so the
    next batch still gets its own replies, not the abandoned one's."""
    config = parse_redis_url(redis_server.url, redis_server.url)

    async def run() -> None:
        connection = RespConnection(config)
        slow = asyncio.ensure_future(connection.batch([pack("DEBUG", "SLEEP", "0.2"), pack("ECHO", "late")]))
        await asyncio.sleep(0.05)
        slow.cancel()  # gives up while the server is still asleep
        many = await asyncio.gather(
            *(connection.batch([pack("ECHO", f"a{i}"), pack("ECHO", f"b{i}")]) for i in range(20))
        )
        assert many == [[f"a{i}".encode(), f"b{i}".encode()] for i in range(20)]
        assert connection._writer is not None  # the same connection throughout
        connection.close()

    asyncio.run(run())


def test_a_server_that_stopped_answering_is_left_for_a_fresh_connection(own_redis: RedisServer) -> None:
    config = parse_redis_url(own_redis.url, own_redis.url)

    async def run() -> None:
        connection = RespConnection(config, stale_after=0.2)
        assert await connection.batch([pack("ECHO", "x")]) == [b"x"]
        first = connection._writer
        own_redis.pause()
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await connection.batch([pack("ECHO", "lost")])
            assert connection._writer is first  # one missed deadline is not a broken connection
            await asyncio.sleep(0.25)  # the unanswered batch is now older than stale_after
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await connection.batch([pack("ECHO", "also lost")])
            assert connection._writer is not first  # given up on: a fresh connection
        finally:
            own_redis.resume()
        assert await connection.batch([pack("ECHO", "fresh")]) == [b"fresh"]
        connection.close()

    asyncio.run(run())


def test_scripts_a_flushed_server_forgot_are_loaded_and_only_the_refused_calls_sent_again(
    redis_server: RedisServer,
) -> None:
    import hashlib

    config = parse_redis_url(redis_server.url, redis_server.url)
    incr = "return redis.call('INCR', KEYS[1])"
    echo = "return ARGV[1]"
    sha = {text: hashlib.sha1(text.encode()).hexdigest() for text in (incr, echo)}
    key = f"resp-test-{id(config)}"

    async def run() -> list[object]:
        connection = RespConnection(config)
        await connection.batch([pack("SCRIPT", "FLUSH")])  # as after a restart
        commands = [pack("EVALSHA", sha[incr], "1", key), pack("EVALSHA", sha[echo], "0", "hi")] * 2
        replies = await connection.scripts(commands, [incr, echo] * 2)
        connection.close()
        return replies

    assert asyncio.run(run()) == [1, b"hi", 2, b"hi"]  # each INCR ran once: none twice, none lost
