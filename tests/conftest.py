"""Fixtures for every test directory (each directory's own conftest.py adds its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scrapewarden.bench.redis_servers import RedisMissing, RedisServer


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own on loopback, stopped after it (skipped where none is
    installed: `.ci/run` installs one)."""
    try:
        server = RedisServer(tmp_path).start()
    except RedisMissing as missing:
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()
