"""Build a redis-py client for a :class:`RedisConfig`: one server, a Cluster, or via Sentinel.

Every client is made to give up fast: short socket timeouts, no retries of its own (the store
decides what a failure means), and a pool that waits at most ``connect_timeout`` for a free
connection instead of raising when many threads call at once.
"""

from __future__ import annotations

from typing import Any

from redis import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from .config import RedisConfig


def _common(config: RedisConfig, timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": config.connect_timeout,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
        # Lone surrogates (undecodable request bytes) become '?' instead of raising, both ways.
        "encoding_errors": "replace",
        "username": config.username,
        "password": config.password,
        "client_name": "scrapewarden",
    }
    if config.tls:
        options.update(
            ssl=True,
            ssl_ca_certs=config.ssl_ca_certs,
            ssl_cert_reqs=config.ssl_cert_reqs,
            ssl_certfile=config.ssl_certfile,
            ssl_keyfile=config.ssl_keyfile,
        )
    return options


def _sentinel_options(config: RedisConfig, options: dict[str, Any]) -> dict[str, Any]:
    """How to talk to the Sentinels themselves: their own password, the same TLS settings."""
    sentinel_options: dict[str, Any] = {
        "socket_timeout": config.timeout,  # asking a Sentinel is never a bulk call
        "socket_connect_timeout": config.connect_timeout,
        "password": config.sentinel_password,
        "decode_responses": True,
    }
    if config.tls:
        sentinel_options.update({k: v for k, v in options.items() if k.startswith("ssl")})
    return sentinel_options


def connect(config: RedisConfig, *, bulk: bool = False) -> Redis | RedisCluster:
    """A client for ``config``; ``bulk``: one that waits ``bulk_timeout`` for replies.
    Cluster clients contact a seed node here (and may raise)."""
    timeout = config.bulk_timeout if bulk else config.timeout
    options = _common(config, timeout)
    if config.mode == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in config.nodes],
            # No per-node limit here: its pools raise "Too many connections" instead of waiting.
            # The store bounds concurrent calls itself (RedisStore._slot).
            **options,
        )
    if config.mode == "sentinel":
        sentinel = Sentinel(list(config.nodes), sentinel_kwargs=_sentinel_options(config, options), **options)
        assert config.service is not None
        return sentinel.master_for(config.service, db=config.db)
    if config.tls:
        from redis.connection import SSLConnection

        connection_class: Any = SSLConnection
        options.pop("ssl")
    else:
        from redis.connection import Connection

        connection_class = Connection
    pool = BlockingConnectionPool(
        max_connections=config.max_connections,
        timeout=config.connect_timeout,
        connection_class=connection_class,
        host=config.nodes[0][0],
        port=config.nodes[0][1],
        db=config.db,
        **options,
    )
    return Redis(connection_pool=pool)


def connect_async(config: RedisConfig) -> Any:
    """An asyncio client for ``config`` (the shared counters' calls, one per actor), with the
    same fast-failing options. Connections are made on first use, inside the caller's loop."""
    options = _common(config, config.timeout)
    if config.mode == "cluster":
        from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

        return AsyncRedisCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in config.nodes], **options
        )
    if config.mode == "sentinel":
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel

        sentinel = AsyncSentinel(
            list(config.nodes), sentinel_kwargs=_sentinel_options(config, options), **options
        )
        assert config.service is not None
        return sentinel.master_for(config.service, db=config.db)
    from redis.asyncio import BlockingConnectionPool as AsyncBlockingPool
    from redis.asyncio import Redis as AsyncRedis

    if config.tls:
        from redis.asyncio.connection import SSLConnection as AsyncSSLConnection

        connection_class: Any = AsyncSSLConnection
        options.pop("ssl")
    else:
        from redis.asyncio.connection import Connection as AsyncConnection

        connection_class = AsyncConnection
    pool = AsyncBlockingPool(
        max_connections=config.max_connections,
        timeout=config.connect_timeout,
        connection_class=connection_class,
        host=config.nodes[0][0],
        port=config.nodes[0][1],
        db=config.db,
        **options,
    )
    return AsyncRedis(connection_pool=pool)
