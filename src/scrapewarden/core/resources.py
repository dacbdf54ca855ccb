"""Matching request paths against the policy's protected resources.

A pattern such as ``/users/{id}`` or ``/@{handle}`` compiles to a literal prefix (checked with
``str.startswith``, which rejects almost every unprotected path cheaply) and a regular expression
that captures the record id. Resources named by a query parameter (``/search?q=...``) take the
parameter's value as the record id.
"""

from __future__ import annotations

import re
from hashlib import blake2b
from typing import NamedTuple
from urllib.parse import unquote_plus

from .policy import ProtectedResource

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RecordRef(NamedTuple):
    """A request for one person's record. (A named tuple: built on every protected request,
    and cheaper to make than a frozen dataclass.)"""

    kind: str
    record_id: str
    sensitivity: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.record_id}"

    @property
    def digest(self) -> int:
        """A 64-bit hash of the record, the same in every process (unlike ``hash()``), so that
        distinct counts and their HyperLogLog estimates are reproducible and shareable."""
        return int.from_bytes(
            blake2b(self.key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big"
        )


class _Compiled:
    __slots__ = ("methods", "prefix", "query_param", "regex", "resource")

    def __init__(self, resource: ProtectedResource) -> None:
        self.resource = resource
        pattern = resource.pattern
        first = pattern.find("{")
        self.prefix = pattern if first < 0 else pattern[:first]
        parts: list[str] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(pattern):
            parts.append(re.escape(pattern[pos : match.start()]))
            parts.append(f"(?P<{match.group(1)}>[^/]+)")
            pos = match.end()
        parts.append(re.escape(pattern[pos:]))
        # A trailing slash is the same page to a person; accept it.
        self.regex = re.compile("".join(parts) + "/?")
        self.query_param = resource.query_param
        self.methods = frozenset(m.upper() for m in resource.methods)


class ResourceMatcher:
    """Finds the protected record a request asks for, if any."""

    def __init__(self, resources: list[ProtectedResource]) -> None:
        self._compiled = [_Compiled(r) for r in resources]

    def match(self, method: str, path: str, query: str) -> RecordRef | None:
        for c in self._compiled:
            if not path.startswith(c.prefix):
                continue
            found = c.regex.fullmatch(path)
            if found is None or method not in c.methods:
                continue
            resource = c.resource
            if c.query_param:
                value = _query_value(query, c.query_param)
                if not value:
                    continue
                return RecordRef(resource.kind, value.strip().lower()[:200], resource.sensitivity)
            groups = found.groups()
            record_id = groups[-1] if groups else path
            if "%" in record_id or "+" in record_id:
                record_id = unquote_plus(record_id)
            return RecordRef(resource.kind, record_id[:200], resource.sensitivity)
        return None

    def __bool__(self) -> bool:
        return bool(self._compiled)


def _query_value(query: str, name: str) -> str | None:
    """First value of a query parameter, decoded; tolerant of malformed query strings."""
    if not query:
        return None
    prefix = name + "="
    for part in query.split("&"):
        if part.startswith(prefix):
            return unquote_plus(part[len(prefix) :], errors="replace")
    return None
