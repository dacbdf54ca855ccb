"""`scrapewarden ban ...` on a real Redis: the command works, and says so when Redis is away.

A server keeps deciding on local state while Redis is unreachable; a command must not: an
operator told "banned" must be able to trust that every instance will see the ban.
"""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner, Result
from redis_servers import RedisServer

from scrapewarden.cli.main import main


def run(url: str, *args: str) -> Result:
    runner = CliRunner(env={"COLUMNS": "200", "SCRAPEWARDEN_STATE": url})
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_ban_add_list_remove_through_redis(redis_server: RedisServer) -> None:
    url = f"{redis_server.url}?prefix=cli-{uuid.uuid4().hex[:8]}"
    added = run(url, "ban", "add", "203.0.113.7", "--ttl", "1h", "--reason", "scraping")
    assert added.exit_code == 0, added.output
    listed = run(url, "ban", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [b["value"] for b in json.loads(listed.stdout)] == ["203.0.113.7"]
    assert run(url, "ban", "remove", "203.0.113.7").exit_code == 0
    assert json.loads(run(url, "ban", "list", "--json").stdout) == []


def test_commands_fail_clearly_when_redis_is_unreachable(own_redis: RedisServer) -> None:
    url = f"{own_redis.url}?prefix=cli&timeout=0.05"
    own_redis.stop()
    for args in (["ban", "add", "203.0.113.8", "--ttl", "1h"], ["ban", "list"], ["events", "tail"]):
        result = run(url, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "unreachable" in result.output, (args, result.output)
    own_redis.start()
    assert json.loads(run(url, "ban", "list", "--json").stdout) == []  # nothing half-written
