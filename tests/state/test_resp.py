"""The lean RESP reader and writer used for the shared counters' batches."""

import pytest

from scrapewarden.state.redis.resp import INCOMPLETE, NoScript, RespError, _Parser, pack


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
