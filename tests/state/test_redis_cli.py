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


def test_audit_verify_finds_an_entry_edited_in_redis(redis_server: RedisServer) -> None:
    import redis

    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    url = f"{redis_server.url}?prefix={prefix}"
    for target in ("203.0.113.7", "203.0.113.8", "203.0.113.9"):
        assert run(url, "ban", "add", target).exit_code == 0
    ok = run(url, "audit", "verify")
    assert ok.exit_code == 0 and "3 entries verified" in ok.stdout
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    key = "{" + prefix + ":audit}:log"
    entry = json.loads(client.lindex(key, 1))
    entry[4] = "ip:192.0.2.1"  # the target of entry 2
    client.lset(key, 1, json.dumps(entry))
    bad = run(url, "audit", "verify")
    assert bad.exit_code == 1 and "BROKEN at entry 2" in bad.output
    client.lrem(key, 1, client.lindex(key, 1))  # removing it instead is found too
    gone = run(url, "audit", "verify")
    assert gone.exit_code == 1 and "entry 2 is missing" in gone.output
    client.close()
