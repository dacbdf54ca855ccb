"""Block lists: exact aggregation and loadable syntax."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scrapewarden.logs.bans_out import aggregate, render


def test_aggregate_covers_exactly_the_addresses() -> None:
    full = [f"203.0.113.{i}" for i in range(256)]
    v4, v6 = aggregate([*full, "198.51.100.7", "198.51.100.6", "2001:db8::1", "not an ip"])
    assert v4 == ["198.51.100.6/31", "203.0.113.0/24"]
    assert v6 == ["2001:db8::1/128"]
    # one missing address: no /24, nothing unjudged is covered
    v4, _ = aggregate(full[:-1])
    assert "203.0.113.0/24" not in v4
    assert sum(2 ** (32 - int(n.split("/")[1])) for n in v4) == 255


def test_every_format_lists_the_networks() -> None:
    for fmt in ("nftables", "ipset", "nginx", "nginx-geo", "plain"):
        text = render(["192.0.2.1", "2001:db8::2"], fmt, comment="test")
        assert "192.0.2.1/32" in text and "2001:db8::2/128" in text, fmt
    assert render(["192.0.2.1"], "nginx") == "deny 192.0.2.1/32;\n"
    with pytest.raises(ValueError):
        render([], "iptables")


def test_empty_nftables_set_has_no_elements_line() -> None:
    text = render(["192.0.2.1"], "nftables")
    assert text.count("elements") == 1


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_geo_map_loads_in_real_nginx(tmp_path: Path) -> None:
    geo = tmp_path / "geo.conf"
    geo.write_text(render(["192.0.2.1", "192.0.2.2", "2001:db8::2"], "nginx-geo"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ include {geo}; server {{ listen 127.0.0.1:1; access_log off;\n"
        "  location / { if ($scrapewarden_banned) { return 403; } return 200; } } }\n"
    )
    done = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
