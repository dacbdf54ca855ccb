"""Follow a growing log file the way ``tail -F`` does: across rotation and truncation.

Poll-based (a stat and a read per poll), so it works on every file system, including network
mounts where inotify says nothing. Only complete lines are returned; a partial last line waits
for its newline.

- Rotation (the path now names a new file, e.g. after ``logrotate``): the old file is read to
  its end, then the new one is followed from its start.
- Truncation (``copytruncate``, or ``> access.log``): reading restarts at the beginning.
- The file missing for a while (between rotation steps): polled again until it reappears.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 1 << 20
"""A "line" longer than this without a newline is cut and returned, so memory stays bounded."""


class Tail:
    def __init__(self, path: str | Path, *, from_start: bool = False) -> None:
        self.path = Path(path)
        self._file: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None
        self._buf = b""
        self._open(seek_end=not from_start)

    def _open(self, *, seek_end: bool) -> None:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            self._file, self._inode = None, None
            return
        st = os.fstat(handle.fileno())
        if seek_end:
            handle.seek(0, os.SEEK_END)
        self._file, self._inode = handle, (st.st_dev, st.st_ino)
        self._buf = b""

    def _read_all(self) -> list[str]:
        assert self._file is not None
        out: list[str] = []
        while True:
            chunk = self._file.read(1 << 16)
            if not chunk:
                break
            self._buf += chunk
            *lines, self._buf = self._buf.split(b"\n")
            out.extend(line.decode("utf-8", "replace") for line in lines)
            if len(self._buf) > MAX_LINE:
                out.append(self._buf[:MAX_LINE].decode("utf-8", "replace"))
                self._buf = b""
        return out

    def poll(self) -> list[str]:
        """New complete lines since the last poll."""
        if self._file is None:
            self._open(seek_end=False)
            if self._file is None:
                return []
        lines = self._read_all()
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return lines  # rotated away, new file not there yet: keep the old one for now
        if (st.st_dev, st.st_ino) != self._inode:
            # Rotated: finish the old file (already read to its end above), follow the new one.
            self.close()
            self._open(seek_end=False)
            if self._file is not None:
                lines.extend(self._read_all())
        elif self._file is not None and st.st_size < self._file.tell():
            # Truncated in place: start over.
            self._file.seek(0)
            self._buf = b""
            lines.extend(self._read_all())
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
