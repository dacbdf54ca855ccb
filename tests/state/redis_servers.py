"""The test side of :mod:`scrapewarden.bench.redis_servers`: a missing redis-server is a skip."""

from __future__ import annotations

from typing import Any

import pytest

from scrapewarden.bench import redis_servers as _servers
from scrapewarden.bench.redis_servers import RedisMissing


def _skipping(cls: type) -> Any:
    def make(*args: Any, **kwargs: Any) -> Any:
        try:
            return cls(*args, **kwargs)
        except RedisMissing as missing:
            pytest.skip(str(missing))

    return make


RedisServer = _servers.RedisServer
RedisCluster = _servers.RedisCluster
RedisSentinel = _servers.RedisSentinel
"""The classes themselves, for type annotations; the fixtures build them through :func:`start`."""


def start(cls: type, *args: Any, **kwargs: Any) -> Any:
    """``cls(*args, **kwargs)``, or a skip when redis-server (or openssl) is missing."""
    return _skipping(cls)(*args, **kwargs)
