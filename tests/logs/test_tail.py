"""Following a live log: appends, partial lines, rotation, truncation, a missing file."""

from __future__ import annotations

import os
from pathlib import Path

from scrapewarden.logs.tail import Tail


def test_follows_appends_and_waits_for_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("old line\n")
    tail = Tail(log)
    assert tail.poll() == []  # starts at the end
    with log.open("a") as f:
        f.write("one\ntw")
    assert tail.poll() == ["one"]
    with log.open("a") as f:
        f.write("o\n")
    assert tail.poll() == ["two"]
    assert Tail(log, from_start=True).poll() == ["old line", "one", "two"]


def test_rotation_finishes_the_old_file_then_follows_the_new(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    tail = Tail(log)
    with log.open("a") as f:
        f.write("before\n")
    os.rename(log, tmp_path / "access.log.1")
    with (tmp_path / "access.log.1").open("a") as f:
        f.write("late write to the old file\n")
    assert tail.poll() == ["before", "late write to the old file"]  # new file not there yet
    log.write_text("new file\n")
    assert tail.poll() == ["new file"]
    with log.open("a") as f:
        f.write("more\n")
    assert tail.poll() == ["more"]


def test_truncation_restarts_at_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("a long first line\nand another\n")
    tail = Tail(log, from_start=True)
    assert len(tail.poll()) == 2
    log.write_text("x\n")  # same inode, shorter: truncated and rewritten
    assert tail.poll() == ["x"]


def test_missing_file_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    tail = Tail(log)
    assert tail.poll() == []
    log.write_text("hello\n")
    assert tail.poll() == ["hello"]
