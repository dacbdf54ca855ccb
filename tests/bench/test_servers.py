"""Benchmark servers start on a free loopback port and are always stopped, even on errors."""

from __future__ import annotations

import http.client
import socket

import pytest

from scrapewarden.bench.servers import HOST, serve


def answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def test_server_answers_inside_and_is_gone_after() -> None:
    with serve("scrapewarden.bench.apps:bare_app") as port:
        connection = http.client.HTTPConnection(HOST, port, timeout=5)
        connection.request("GET", "/users/3")
        assert connection.getresponse().status == 200
        connection.close()
    assert not answers(port)


def test_server_is_stopped_when_the_body_raises() -> None:
    with pytest.raises(KeyError), serve("scrapewarden.bench.apps:bare_app") as port:
        assert answers(port)
        raise KeyError("boom")
    assert not answers(port)


def test_a_server_that_cannot_start_is_reported_with_its_output() -> None:
    with pytest.raises(RuntimeError, match="exited"), serve("scrapewarden.bench.apps:no_such_app"):
        pass
