"""Whose records were exposed: look exposed record ids up in the site's own data.

Three sources, chosen by ``[incidents.people] source`` in the policy:

- ``csv``: a file with a header row. Columns: ``record_id`` and ``person_id`` (required),
  ``kind``, ``name``, ``email``, ``language``, ``country``, ``categories`` (optional; categories
  separated by ``;``, ``,`` or ``|``). Without a ``kind`` column a row matches its id in any kind.
- ``sql``: a parameterised query through a DB-API driver (sqlite3 by default). ``{ids}`` in the
  query becomes one placeholder per record id of a batch (in the driver's own paramstyle), so ids
  are never pasted into SQL text. The query returns columns named as for the CSV.
- ``callable``: ``"package.module:function"``, called with a list of ``(kind, id)`` pairs per
  batch and returning a mapping from ``(kind, id)`` (or ``"kind:id"``) to a row-like mapping
  with the same keys (or to an :class:`~scrapewarden.core.exposure.Owner`).

Lookups are batched (``batch_size`` ids per query or call; the CSV is read once), because an
incident can expose a hundred thousand records. Ids that nothing matches come back as unknown
and rows without a person are counted and skipped: neither stops the lookup.
"""

from __future__ import annotations

import csv
import importlib
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..core.exposure import Exposure, Owner, Person, Record, categories_by_kind, map_exposure
from ..core.policy import PeopleLookupPolicy, Policy

_CATEGORY_SPLIT = re.compile(r"[;,|]")


class PeopleLookupError(Exception):
    """The lookup cannot run at all (missing file, bad query, unimportable function)."""


@dataclass(slots=True)
class LookupResult:
    owners: dict[Record, Owner] = field(default_factory=dict)
    bad_rows: int = 0
    """Rows returned that could not be used (no record id or no person id)."""
    problems: list[str] = field(default_factory=list)
    """The first few of those, described, for the operator."""

    def bad(self, what: str) -> None:
        self.bad_rows += 1
        if len(self.problems) < 10:
            self.problems.append(what)


class PeopleLookup(Protocol):
    def lookup(self, records: Sequence[Record]) -> LookupResult: ...


# -- rows -> owners ------------------------------------------------------------------------------


def owner_from_row(row: Mapping[str, Any]) -> Owner | None:
    """An :class:`Owner` from a row with the documented column names; None without a person id."""
    person_id = _text(row.get("person_id"))
    if not person_id:
        return None
    raw = row.get("categories")
    if isinstance(raw, str):
        labels = [c.strip().lower() for c in _CATEGORY_SPLIT.split(raw)]
    elif isinstance(raw, Iterable):
        labels = [str(c).strip().lower() for c in raw]
    else:
        labels = []
    person = Person(
        id=person_id,
        name=_text(row.get("name")),
        email=_text(row.get("email")),
        language=_text(row.get("language")),
        country=_text(row.get("country")).upper(),
    )
    return Owner(person, tuple(dict.fromkeys(c for c in labels if c)))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _batches(items: Sequence[Record], size: int) -> Iterator[Sequence[Record]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- CSV -------------------------------------------------------------------------------------------


class CsvLookup:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def lookup(self, records: Sequence[Record]) -> LookupResult:
        result = LookupResult()
        by_id: dict[str, list[Record]] = {}
        for record in records:
            by_id.setdefault(record.id, []).append(record)
        try:
            handle = self.path.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise PeopleLookupError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            if "record_id" not in header or "person_id" not in header:
                raise PeopleLookupError(f"{self.path}: the header needs record_id and person_id columns")
            reader.fieldnames = header
            has_kind = "kind" in header
            try:
                for row in reader:
                    record_id = _text(row.get("record_id"))
                    wanted = by_id.get(record_id)
                    if not wanted:
                        continue
                    owner = owner_from_row(row)
                    if owner is None:
                        result.bad(f"{self.path} line {reader.line_num}: no person_id")
                        continue
                    kind = _text(row.get("kind")) if has_kind else None
                    for record in wanted:
                        if (kind is None or kind == record.kind) and record not in result.owners:
                            result.owners[record] = owner
            except (csv.Error, UnicodeDecodeError) as exc:
                raise PeopleLookupError(f"{self.path} line {reader.line_num}: {exc}") from None
        return result


# -- SQL -------------------------------------------------------------------------------------------


class SqlLookup:
    """Records looked up with a parameterised query, ``batch_size`` ids at a time.

    ``connect`` opens a DB-API connection; ``paramstyle`` is the driver's (``qmark``, ``numeric``,
    ``named``, ``format`` or ``pyformat``, as its module's ``paramstyle`` says).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        paramstyle: str,
        query: str = "",
        queries: Mapping[str, str] | None = None,
        batch_size: int = 500,
    ) -> None:
        self._connect = connect
        self.paramstyle = paramstyle
        self.query = query
        self.queries = dict(queries or {})
        self.batch_size = batch_size
        self.statements = 0
        """Queries run so far (batches, not records)."""

    def lookup(self, records: Sequence[Record]) -> LookupResult:
        result = LookupResult()
        by_kind: dict[str, list[Record]] = {}
        for record in records:
            by_kind.setdefault(record.kind, []).append(record)
        try:
            connection = self._connect()
        except PeopleLookupError:
            raise
        except Exception as exc:
            # The message of a driver's error may repeat the DSN; keep only its type.
            raise PeopleLookupError(f"cannot open the people database ({type(exc).__name__})") from None
        try:
            for kind, wanted in by_kind.items():
                query = self.queries.get(kind, self.query)
                if not query:
                    continue  # no query for this kind: its records stay unknown
                for batch in _batches(wanted, self.batch_size):
                    self._run(connection, query, kind, batch, result)
        finally:
            connection.close()
        return result

    def _run(
        self, connection: Any, query: str, kind: str, batch: Sequence[Record], out: LookupResult
    ) -> None:
        ids = [r.id for r in batch]
        sql, params = expand_ids(query, ids, self.paramstyle)
        cursor = connection.cursor()
        try:
            try:
                cursor.execute(sql, params)
            except Exception as exc:
                raise PeopleLookupError(f"the people query failed: {exc}") from None
            self.statements += 1
            names = [str(d[0]).lower() for d in cursor.description or ()]
            if "record_id" not in names or "person_id" not in names:
                raise PeopleLookupError("the people query must return record_id and person_id columns")
            wanted = {r.id: r for r in batch}
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=False))
                record_id = _text(row.get("record_id"))
                row_kind = _text(row.get("kind")) if "kind" in row else kind
                record = wanted.get(record_id)
                if record is None or row_kind != kind:
                    continue
                owner = owner_from_row(row)
                if owner is None:
                    out.bad(f"record {kind}:{record_id}: no person_id")
                elif record not in out.owners:
                    out.owners[record] = owner
        finally:
            cursor.close()


def expand_ids(query: str, ids: Sequence[str], paramstyle: str) -> tuple[str, Any]:
    """Replace ``{ids}`` with one placeholder per id in ``paramstyle``; return (sql, params)."""
    if paramstyle == "qmark":
        marks, params = ", ".join("?" for _ in ids), list(ids)
    elif paramstyle == "format":
        marks, params = ", ".join("%s" for _ in ids), list(ids)
    elif paramstyle == "numeric":
        marks, params = ", ".join(f":{i + 1}" for i in range(len(ids))), list(ids)
    elif paramstyle == "named":
        marks = ", ".join(f":id{i}" for i in range(len(ids)))
        params = {f"id{i}": value for i, value in enumerate(ids)}  # type: ignore[assignment]
    elif paramstyle == "pyformat":
        marks = ", ".join(f"%(id{i})s" for i in range(len(ids)))
        params = {f"id{i}": value for i, value in enumerate(ids)}  # type: ignore[assignment]
    else:
        raise PeopleLookupError(f"unsupported DB-API paramstyle {paramstyle!r}")
    # Only the {ids} marker is replaced: any other braces in the SQL stay as written.
    return query.replace("{ids}", marks), params


def sqlite_connector(path: str | Path) -> Callable[[], sqlite3.Connection]:
    """Open the SQLite file read-only: an incident lookup must never change the site's data."""
    target = Path(path).resolve()

    def connect() -> sqlite3.Connection:
        if not target.is_file():
            raise PeopleLookupError(f"no such SQLite file: {target}")
        return sqlite3.connect(f"{target.as_uri()}?mode=ro", uri=True)

    return connect


# -- callable --------------------------------------------------------------------------------------


class CallableLookup:
    def __init__(self, function: Callable[[list[tuple[str, str]]], Any], *, batch_size: int = 500) -> None:
        self.function = function
        self.batch_size = batch_size
        self.calls = 0

    def lookup(self, records: Sequence[Record]) -> LookupResult:
        result = LookupResult()
        for batch in _batches(records, self.batch_size):
            wanted = {(r.kind, r.id): r for r in batch}
            answer = self.function([(r.kind, r.id) for r in batch])
            self.calls += 1
            if not isinstance(answer, Mapping):
                raise PeopleLookupError("the lookup function must return a mapping of (kind, id) to a person")
            for key, value in answer.items():
                if isinstance(key, str):
                    parsed = Record.parse(key)
                    key = (parsed.kind, parsed.id)
                record = wanted.get(tuple(key)) if isinstance(key, tuple) else None
                if record is None:
                    continue
                owner = value if isinstance(value, Owner) else None
                if owner is None and isinstance(value, Mapping):
                    owner = owner_from_row(value)
                if owner is None:
                    result.bad(f"record {record.key}: no person")
                elif record not in result.owners:
                    result.owners[record] = owner
        return result


def import_function(name: str) -> Callable[..., Any]:
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PeopleLookupError(f"cannot import {module_name!r}: {exc}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise PeopleLookupError(f"{name!r} is not a function")
    return function  # type: ignore[no-any-return]


# -- from the policy -------------------------------------------------------------------------------


def lookup_from_policy(config: PeopleLookupPolicy, *, base_dir: str | Path = ".") -> PeopleLookup | None:
    """The lookup ``[incidents.people]`` describes (None when ``source`` is empty). Relative paths
    are taken from ``base_dir`` (the policy file's directory)."""
    base = Path(base_dir)
    if config.source == "csv":
        return CsvLookup(base / config.path)
    if config.source == "sql":
        if config.driver == "sqlite3":
            connect = sqlite_connector(base / config.database)
            paramstyle = sqlite3.paramstyle
        else:
            try:
                driver = importlib.import_module(config.driver)
            except ImportError as exc:
                raise PeopleLookupError(f"cannot import DB-API driver {config.driver!r}: {exc}") from None
            dsn = config.database

            def connect() -> Any:
                return driver.connect(dsn)

            paramstyle = str(getattr(driver, "paramstyle", "qmark"))
        return SqlLookup(
            connect,
            paramstyle=paramstyle,
            query=config.query,
            queries=config.queries,
            batch_size=config.batch_size,
        )
    if config.source == "callable":
        return CallableLookup(import_function(config.function), batch_size=config.batch_size)
    return None


@dataclass(slots=True)
class PeopleFound:
    exposure: Exposure
    bad_rows: int = 0
    problems: list[str] = field(default_factory=list)


def find_people(records: Iterable[Record], policy: Policy, lookup: PeopleLookup | None) -> PeopleFound:
    """The people behind ``records``: looked up, joined and counted per category."""
    ordered = list(dict.fromkeys(records))
    result = lookup.lookup(ordered) if lookup is not None and ordered else LookupResult()
    exposure = map_exposure(ordered, result.owners, categories_by_kind(policy))
    return PeopleFound(exposure, result.bad_rows, result.problems)
