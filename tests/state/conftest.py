"""Real Redis servers for the state tests (see redis_servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_servers import RedisCluster, RedisSentinel, RedisServer, start


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server shared by the session; tests keep apart through a key prefix each."""
    server = start(RedisServer, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A server that speaks TLS only (rediss://), with a self-signed certificate."""
    server = start(RedisServer, tmp_path_factory.mktemp("redis-tls"), tls=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A three-master Cluster shared by the session (starting one takes a few seconds)."""
    cluster = start(RedisCluster, tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[RedisSentinel]:
    """A Sentinel naming the session's server as master ``scrapewarden``."""
    sentinel = start(RedisSentinel, tmp_path_factory.mktemp("redis-sentinel"), redis_server).start()
    yield sentinel
    sentinel.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A Cluster of this test's own, whose nodes the test may freeze."""
    cluster = start(RedisCluster, tmp_path).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, which the test may stop, pause and restart."""
    server = start(RedisServer, tmp_path).start()
    yield server
    server.stop()
