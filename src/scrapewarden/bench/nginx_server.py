"""One nginx from the Debian package, run unprivileged-style in a folder of its own.

``nginx -p DIR -c DIR/nginx.conf -e DIR/error.log -g 'daemon off; pid DIR/nginx.pid;'``: the
configuration, pid file, error log and temporary files all live in ``DIR``; nothing under /etc
or /var is read or written and no system service is touched. The master and its worker share
one process group, which :func:`~.servers.serve_command` stops on the way out.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .nginx_conf import render
from .servers import HOST, free_port, serve_command

_CANDIDATES = ("/usr/sbin/nginx",)


def nginx_path() -> str | None:
    """The nginx binary, or None when it is not installed (it lives in /usr/sbin, often not on
    an unprivileged user's PATH)."""
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("nginx")


def nginx_command(binary: str, directory: Path) -> list[str]:
    return [
        binary,
        "-p",
        f"{directory}/",
        "-c",
        str(directory / "nginx.conf"),
        "-e",
        str(directory / "error.log"),
        "-g",
        f"daemon off; pid {directory / 'nginx.pid'};",
    ]


@contextmanager
def serve_nginx(
    site: str,
    directory: Path,
    values: Mapping[str, object] | None = None,
    files: Mapping[str, str] | None = None,
) -> Iterator[int]:
    """Run nginx with the site template ``site`` on a free loopback port; yield the port.

    ``directory`` is created for this nginx alone; ``files`` (name to text) are written into it
    first, for the configuration to include (``@DIR@/name``).
    """
    binary = nginx_path()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
    directory.mkdir(parents=True, exist_ok=False)
    (directory / "tmp").mkdir()
    for name, text in (files or {}).items():
        (directory / name).write_text(text, encoding="utf-8")
    port = free_port()
    config = render(site, {**(values or {}), "PORT": port, "DIR": directory})
    (directory / "nginx.conf").write_text(config, encoding="utf-8")
    command = nginx_command(binary, directory)
    with serve_command(
        command, port, name=f"nginx ({site})", host=HOST, log_files=(directory / "error.log",)
    ):
        yield port
