"""``GET /metrics`` on a port of its own, over real HTTP on loopback."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from scrapewarden.metrics_http import MetricsServer, start_metrics_server


def get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        reply = connection.getresponse()
        return reply.status, reply.getheader("Content-Type") or "", reply.read().decode()
    finally:
        connection.close()


@pytest.fixture
def metrics_port() -> Iterator[int]:
    server = start_metrics_server("127.0.0.1", 0)
    try:
        yield server.bound[1]
    finally:
        server.stop()


def test_the_server_answers_get_metrics_and_nothing_else(metrics_port: int) -> None:
    status, content_type, text = get(metrics_port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert "# TYPE scrapewarden_decisions_total counter" in text
    assert get(metrics_port, "/")[0] == 404
    assert get(metrics_port, "/metrics/../admin")[0] == 404
    assert get(metrics_port, "/metrics", method="POST")[0] == 405


def test_the_server_listens_on_ipv6_loopback() -> None:
    server = MetricsServer()
    try:
        host, port = server.start("::1", 0)
    except OSError as exc:  # a machine without IPv6 on loopback
        pytest.skip(f"no ::1 here: {exc}")
    try:
        connection = http.client.HTTPConnection("::1", port, timeout=10)
        connection.request("GET", "/metrics")
        assert connection.getresponse().status == 200
        connection.close()
        assert host == "::1"
    finally:
        server.stop()
