"""Find the line on which a key is written in a TOML document.

``tomllib`` gives values but no positions, and a policy error that says *where* is worth a lot
more than one that does not. This module scans the text once, following TOML's structure
(tables, arrays of tables, dotted keys, inline tables, arrays, all four string forms and
comments) but not decoding scalar values, and records the line where each key path first
appears. It is meant for text that ``tomllib`` has already accepted; on anything else it gives
up quietly and returns what it found so far, because a missing line number must never hide
the real error.

A key path is a tuple of table keys (``str``) and array indices (``int``), the same shape as a
pydantic error location: ``("protected", 2, "pattern")``.
"""

from __future__ import annotations

import bisect
import tomllib
from collections.abc import Sequence

KeyPath = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# Characters that end an unquoted scalar value (numbers, booleans, dates) inside any container.
_SCALAR_END = frozenset(",]}#\n\r")


class _Unreadable(Exception):
    """The text is not TOML this scanner can follow; stop and keep what was found."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self.lines: dict[KeyPath, int] = {}
        # Paths recorded only because a longer key mentioned them; an explicit [header] for
        # the same table later is a better place to point at, so it may overwrite these.
        self._implicit: set[KeyPath] = set()
        # Arrays of tables seen so far (resolved path -> number of elements).
        self._array_tables: dict[KeyPath, int] = {}

    # -- positions -------------------------------------------------------------------------

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self._line_starts, self.pos if pos is None else pos)

    def _record(self, path: KeyPath, line: int, *, implicit: bool = False) -> None:
        if path not in self.lines or (path in self._implicit and not implicit):
            self.lines[path] = line
            if implicit:
                self._implicit.add(path)
            else:
                self._implicit.discard(path)

    def _peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def _startswith(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    # -- whitespace and comments -------------------------------------------------------------

    def _skip_blank(self, *, newlines: bool) -> None:
        """Skip spaces, tabs and comments, and line breaks too when ``newlines``."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.pos += 1
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    # -- keys --------------------------------------------------------------------------------

    def _key_part(self) -> str:
        ch = self._peek()
        if ch in "\"'":
            start = self.pos
            self._single_line_string(ch)
            # Let tomllib decode the escapes: one small, exact parser beats a second one here.
            return str(tomllib.loads("k = " + self.text[start : self.pos])["k"])
        start = self.pos
        while self._peek() in _BARE_KEY_CHARS and self._peek():
            self.pos += 1
        if self.pos == start:
            raise _Unreadable
        return self.text[start : self.pos]

    def _dotted_key(self) -> list[str]:
        parts = [self._key_part()]
        while True:
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return parts
            self.pos += 1
            self._skip_blank(newlines=False)
            parts.append(self._key_part())

    # -- strings -----------------------------------------------------------------------------

    def _single_line_string(self, quote: str) -> None:
        self.pos += 1
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and quote == '"':
                self.pos += 2
                continue
            self.pos += 1
            if ch == quote:
                return
            if ch == "\n":
                break
        raise _Unreadable

    def _multi_line_string(self, quote: str) -> None:
        delimiter = quote * 3
        self.pos += 3
        while self.pos < len(self.text):
            if quote == '"' and self.text[self.pos] == "\\":
                self.pos += 2
                continue
            if self._startswith(delimiter):
                self.pos += 3
                # Up to two quotes right before the closing delimiter belong to the content.
                for _ in range(2):
                    if self._peek() == quote:
                        self.pos += 1
                return
            self.pos += 1
        raise _Unreadable

    # -- values ------------------------------------------------------------------------------

    def _value(self, path: KeyPath) -> None:
        ch = self._peek()
        if ch in "\"'":
            if self._startswith(ch * 3):
                self._multi_line_string(ch)
            else:
                self._single_line_string(ch)
        elif ch == "[":
            self._array(path)
        elif ch == "{":
            self._inline_table(path)
        else:
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1
            if self.pos == start:
                raise _Unreadable

    def _array(self, path: KeyPath) -> None:
        self.pos += 1
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self._peek() == "]":
                self.pos += 1
                return
            if not self._peek():
                raise _Unreadable
            self._record((*path, index), self.line())
            self._value((*path, index))
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self.pos += 1
                index += 1
            elif self._peek() != "]":
                raise _Unreadable

    def _inline_table(self, path: KeyPath) -> None:
        self.pos += 1
        while True:
            self._skip_blank(newlines=True)
            if self._peek() == "}":
                self.pos += 1
                return
            if not self._peek():
                raise _Unreadable
            self._key_value(path)
            self._skip_blank(newlines=True)
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != "}":
                raise _Unreadable

    def _key_value(self, table: KeyPath) -> None:
        line = self.line()
        keys = self._dotted_key()
        for depth in range(1, len(keys)):
            self._record((*table, *keys[:depth]), line, implicit=True)
        path = (*table, *keys)
        self._record(path, line)
        self._skip_blank(newlines=False)
        if self._peek() != "=":
            raise _Unreadable
        self.pos += 1
        self._skip_blank(newlines=False)
        self._value(path)

    # -- tables ------------------------------------------------------------------------------

    def _header(self) -> KeyPath:
        """Read ``[a.b]`` or ``[[a.b]]``; return the resolved path of the table it opens."""
        line = self.line()
        is_array = self._startswith("[[")
        self.pos += 2 if is_array else 1
        self._skip_blank(newlines=False)
        keys = self._dotted_key()
        self._skip_blank(newlines=False)
        closing = "]]" if is_array else "]"
        if not self._startswith(closing):
            raise _Unreadable
        self.pos += len(closing)

        # Walk the keys from the root. A key that names an array of tables stands for its
        # latest element, which is how TOML attaches [a.b] / [[a.b]] under the last [[a]].
        resolved: KeyPath = ()
        for depth, key in enumerate(keys):
            resolved = (*resolved, key)
            last = depth == len(keys) - 1
            if last and is_array:
                count = self._array_tables.get(resolved, 0)
                self._array_tables[resolved] = count + 1
                self._record(resolved, line, implicit=True)
                resolved = (*resolved, count)
                self._record(resolved, line)
            elif last:
                self._record(resolved, line)
            else:
                self._record(resolved, line, implicit=True)
                if resolved in self._array_tables:
                    resolved = (*resolved, self._array_tables[resolved] - 1)
        return resolved

    def scan(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        try:
            while True:
                self._skip_blank(newlines=True)
                if self.pos >= len(self.text):
                    break
                if self._peek() == "[":
                    table = self._header()
                else:
                    self._key_value(table)
        except (_Unreadable, tomllib.TOMLDecodeError):
            pass
        return self.lines


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every key path written in ``text`` (tables, keys, array elements) -> its 1-based line."""
    return _Scanner(text).scan()


def locate(text: str, path: Sequence[str | int]) -> int | None:
    """Line of ``path`` in ``text``, or of its nearest enclosing table/key that is written there.

    Returns None when not even the first key of the path appears (e.g. a required top-level key
    that is missing altogether).
    """
    lines = key_lines(text)
    key = tuple(path)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return None
