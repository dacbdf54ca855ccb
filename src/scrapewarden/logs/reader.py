"""Load access logs into one DuckDB table, ``requests``, counting what could not be read.

Combined and common logs go through DuckDB's CSV reader (space-delimited, ``"``-quoted,
``\\``-escaped), which parses in parallel and reads ``.gz`` directly; the bracketed time splits
into two columns (``[17/May/2015:10:05:03`` and ``+0000]``) and is rebuilt in SQL. Lines the CSV
reader rejects go through the regular-expression parser in :mod:`.fallback`; what neither can read
is counted in ``bad_lines``. JSON lines go through ``read_json_objects`` with the field table of
:mod:`.formats`.

Memory stays bounded: DuckDB gets a memory limit and a spill directory, so a multi-gigabyte
log costs disk, not RAM.

Two known losses, both counted: a line with an unterminated quote swallows the next line (the
CSV reader allows quoted newlines); the swallowed line is counted bad. Escapes other than ``\\"``
and ``\\\\`` lose their backslash (nginx's ``\\x22`` reads ``x22``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from .fallback import Row, parse_line
from .formats import Format, JsonMapping, detect, json_mapping, sample

COLUMNS = {"combined": 10, "common": 8}
_IP_PORT = r"^(\d+\.\d+\.\d+\.\d+):\d+$"
"""An IPv4 address with its port, as load balancers log the client (``client:port``)."""
_OK = """(substr(c3, 1, 1) = '[' AND substr(c4, -1) = ']' AND c0 <> ''
    AND (c6 = '-' OR try_cast(c6 AS INTEGER) IS NOT NULL)
    AND try_cast(substr(c3, 9, 4) AS BIGINT) IS NOT NULL)"""
"""A usable row: the time is where it belongs and the status is a number (else the columns shifted)."""
_MONTHS = "['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec']"


@dataclass
class ReadStats:
    lines: int = 0
    """Physical lines seen (bad ones included)."""
    bad_lines: int = 0
    recovered: int = 0
    """Lines the fast path rejected and the fallback parser read."""
    formats: dict[str, str] = field(default_factory=dict)
    """File -> format used."""
    bad_examples: list[str] = field(default_factory=list)
    """A few unreadable lines (cut short), to show the operator what went wrong."""


def connect(memory_limit: str = "1GB", threads: int | None = None, spill_dir: str | None = None) -> Any:
    """A DuckDB connection with bounded memory and a spill directory."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{_safe_setting(memory_limit)}'")
    con.execute(f"SET temp_directory='{_sql_str(spill_dir or tempfile.gettempdir())}'")
    # Order of rows never matters to the analysis; not keeping it saves memory and time.
    con.execute("SET preserve_insertion_order=false")
    # Progress is tracked (for ``query_progress()``, which the CLI's bar polls), never printed.
    con.execute("SET enable_progress_bar=true")
    con.execute("SET enable_progress_bar_print=false")
    if threads:
        con.execute(f"SET threads={int(threads)}")
    return con


def _safe_setting(value: str) -> str:
    if not value.replace(".", "").replace(" ", "").isalnum():
        raise ValueError(f"bad memory limit {value!r}")
    return value


def _sql_str(value: str) -> str:
    return value.replace("'", "''")


def _file_list(paths: Sequence[str | Path]) -> str:
    return "[" + ", ".join(f"'{_sql_str(str(p))}'" for p in paths) + "]"


def _text_select(paths: Sequence[str | Path], fmt: str, compression: str = "auto") -> str:
    n = COLUMNS[fmt]
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n)) + "}"
    referer = "c8" if fmt == "combined" else "NULL"
    ua = "c9" if fmt == "combined" else "NULL"
    # The time is rebuilt with integer arithmetic: several times faster than strptime.
    return f"""
    SELECT c0 AS ip,
        epoch(try(make_timestamp(
            try_cast(substr(c3, 9, 4) AS BIGINT), list_position({_MONTHS}, substr(c3, 5, 3)),
            try_cast(substr(c3, 2, 2) AS BIGINT), try_cast(substr(c3, 14, 2) AS BIGINT),
            try_cast(substr(c3, 17, 2) AS BIGINT), try_cast(substr(c3, 20, 2) AS DOUBLE))))
          - coalesce((try_cast(substr(c4, 2, 2) AS INTEGER) * 3600
                      + try_cast(substr(c4, 4, 2) AS INTEGER) * 60)
                     * CASE WHEN substr(c4, 1, 1) = '-' THEN -1 ELSE 1 END, 0) AS ts,
        split_part(c5, ' ', 1) AS method,
        split_part(split_part(c5, ' ', 2), '?', 1) AS path,
        CASE WHEN strpos(split_part(c5, ' ', 2), '?') > 0
             THEN substr(split_part(c5, ' ', 2), strpos(split_part(c5, ' ', 2), '?') + 1)
             ELSE '' END AS query,
        try_cast(c6 AS INTEGER) AS status,
        try_cast(c7 AS BIGINT) AS bytes,
        CASE WHEN {referer} = '-' THEN '' ELSE split_part(coalesce({referer}, ''), chr(10), 1) END AS referer,
        CASE WHEN {ua} = '-' THEN '' ELSE split_part(coalesce({ua}, ''), chr(10), 1) END AS ua,
        CASE WHEN c2 = '-' THEN NULL ELSE c2 END AS account,
        NULL::VARCHAR AS fp,
        {_OK} AS _ok,
        -- bad physical lines this row stands for: itself when unusable, plus any lines an
        -- unterminated quote swallowed (each shows as a newline inside a field)
        (NOT {_OK})::INTEGER
          + (length(c5) - length(replace(c5, chr(10), '')))
          + (length(coalesce({referer}, '')) - length(replace(coalesce({referer}, ''), chr(10), '')))
          + (length(coalesce({ua}, '')) - length(replace(coalesce({ua}, ''), chr(10), ''))) AS _bad
    FROM read_csv({_file_list(paths)}, delim=' ', quote='"', escape='\\', header=false, columns={cols},
                  store_rejects=true, strict_mode=false, auto_detect=false, max_line_size=1048576,
                  compression='{compression}')
    """


def _json_select(paths: Sequence[str | Path], mapping: JsonMapping, compression: str = "auto") -> str:
    p = dict(mapping.paths)

    def get(name: str) -> str:
        if name not in p:
            return "NULL"
        return f"json_extract_string(json, '$.{_sql_str(p[name])}')"

    # Fingerprint fields beyond the user agent, when the log has them (NULL otherwise).
    extra = [get(name) for name in ("accept_language", "client_hints") if name in p]
    fingerprint = f"nullif(concat_ws(' | ', {', '.join(extra)}), '')" if extra else "NULL::VARCHAR"
    if mapping.time_kind == "epoch":
        ts = f"try_cast({get('time')} AS DOUBLE)"
    elif mapping.time_kind == "clf":
        ts = f"epoch(try_strptime({get('time')}, '%d/%b/%Y:%H:%M:%S %z'))"
    else:
        ts = f"epoch(try_cast({get('time')} AS TIMESTAMPTZ))"
    if "uri" in p:
        # Load balancers log the whole URL; keep the path and query only.
        target = f"regexp_replace({get('uri')}, '^[A-Za-z][A-Za-z0-9+.-]*://[^/]*', '')"
        method = get("method") if "method" in p else "'GET'"
    else:
        target = f"split_part({get('request')}, ' ', 2)"
        method = f"split_part({get('request')}, ' ', 1)"
    return f"""
    SELECT regexp_replace(ip, '{_IP_PORT}', '\\1') AS ip, ts,
        coalesce(method, '') AS method,
        split_part(target, '?', 1) AS path,
        CASE WHEN strpos(target, '?') > 0 THEN substr(target, strpos(target, '?') + 1) ELSE '' END AS query,
        status, bytes,
        CASE WHEN referer = '-' THEN '' ELSE coalesce(referer, '') END AS referer,
        CASE WHEN ua = '-' THEN '' ELSE coalesce(ua, '') END AS ua,
        CASE WHEN account IN ('-', '') THEN NULL ELSE account END AS account,
        fp,
        ip IS NOT NULL AND ip <> '' AND ts IS NOT NULL AS _ok,
        CASE WHEN ip IS NOT NULL AND ip <> '' AND ts IS NOT NULL THEN 0 ELSE 1 END AS _bad
    FROM (
        SELECT {get("ip")} AS ip, {ts} AS ts, {method} AS method, coalesce({target}, '') AS target,
            try_cast({get("status")} AS INTEGER) AS status, try_cast({get("bytes")} AS BIGINT) AS bytes,
            {get("referer")} AS referer, {get("ua")} AS ua, {get("account")} AS account,
            {fingerprint} AS fp
        FROM read_json_objects({_file_list(paths)}, format='newline_delimited', ignore_errors=true,
                               compression='{compression}')
    )
    """


def is_gzip(path: str | Path) -> bool:
    with Path(path).open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def resolve_format(paths: Sequence[str | Path], fmt: str = "auto") -> dict[str, Format | Literal["empty"]]:
    """The format of each file: given, or sniffed from its first lines; ``empty`` for a file
    with no lines (a freshly rotated log), which is skipped."""
    out: dict[str, Format | Literal["empty"]] = {}
    for path in paths:
        lines = sample(path)
        if not lines:
            out[str(path)] = "empty"
        elif fmt != "auto":
            out[str(path)] = fmt  # type: ignore[assignment]
        else:
            try:
                out[str(path)] = detect(lines)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from exc
    return out


_EMPTY = (
    "SELECT NULL::VARCHAR AS ip, NULL::DOUBLE AS ts, NULL::VARCHAR AS method, NULL::VARCHAR AS path, "
    "NULL::VARCHAR AS query, NULL::INTEGER AS status, NULL::BIGINT AS bytes, NULL::VARCHAR AS referer, "
    "NULL::VARCHAR AS ua, NULL::VARCHAR AS account, NULL::VARCHAR AS fp, true AS _ok, 0 AS _bad WHERE false"
)


BASE_COLUMNS = "ip, ts, method, path, query, status, bytes, referer, ua, account, fp"


def load(
    con: Any,
    paths: Sequence[str | Path],
    fmt: str = "auto",
    *,
    derive: str = BASE_COLUMNS,
    progress: Any = None,
) -> ReadStats:
    """Fill the ``requests`` table from ``paths``. ``progress(step_name)`` is told each step.

    ``derive``: the table's columns, as SQL select items over the base columns (``ip, ts,
    method, path, query, status, bytes, referer, ua, account, fp``: fingerprint fields beyond the
    user agent, JSON logs only); computed in the same pass
    that parses the lines, so a caller that needs only some columns, or values derived from
    them, never materialises the rest.

    Raises ValueError for an unknown or undetectable format and FileNotFoundError for a missing
    file; bad lines are counted, not raised.
    """
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such log file: {path}")
    formats = resolve_format(paths, fmt)
    stats = ReadStats(formats={k: str(v) for k, v in formats.items()})
    # One DuckDB scan per (format, compression, JSON field table): a scan takes one of each.
    groups: dict[tuple[str, bool, JsonMapping | None], list[str]] = {}
    for path, f in formats.items():
        if f == "empty":
            continue
        mapping = json_mapping(sample(path)) if f == "json" else None
        groups.setdefault((f, is_gzip(path), mapping), []).append(path)
    con.execute("DROP TABLE IF EXISTS requests")
    _insert(con, f"SELECT {derive}, _ok, _bad FROM ({_EMPTY})")
    for (kind, gz, mapping), files in groups.items():
        if progress is not None:
            progress(f"reading {len(files)} {kind} file(s)")
        compression = "gzip" if gz else "none"
        if mapping is not None:
            select = _json_select(files, mapping, compression)
        else:
            select = _text_select(files, kind, compression)
        _insert(con, f"SELECT {derive}, _ok, _bad FROM ({select})")
        if kind != "json":
            _recover(con, derive, stats)
    total, good, bad = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE _ok), coalesce(sum(_bad), 0) FROM requests"
    ).fetchone()
    if len(stats.bad_examples) < 5 and good < total:
        for (ip,) in con.execute("SELECT ip FROM requests WHERE NOT _ok LIMIT 3").fetchall():
            stats.bad_examples.append(f"unreadable line from {ip!r}")
    if good < total:
        con.execute("DELETE FROM requests WHERE NOT _ok")
    # Lines: usable rows, plus every bad line (recovered ones are already among the rows).
    stats.lines += int(good) + int(bad)
    stats.bad_lines += int(bad)
    return stats


def _insert(con: Any, select: str) -> None:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'requests' AND temporary"
    ).fetchone()[0]
    if exists:
        con.execute(f"INSERT INTO requests BY NAME {select}")
    else:
        con.execute(f"CREATE TEMP TABLE requests AS {select}")


def _recover(con: Any, derive: str, stats: ReadStats) -> None:
    """Lines the CSV reader rejected: read them with the fallback parser, count the rest."""
    rejected = [
        r[0]
        for r in con.execute(
            "SELECT any_value(csv_line) FROM reject_errors GROUP BY scan_id, file_id, line"
        ).fetchall()
    ]
    con.execute("DROP TABLE IF EXISTS reject_errors")
    con.execute("DROP TABLE IF EXISTS reject_scans")
    if not rejected:
        return
    recovered: list[Row] = []
    for line in rejected:
        row = parse_line(line or "")
        if row is None:
            if len(stats.bad_examples) < 5:
                stats.bad_examples.append((line or "")[:200])
        else:
            recovered.append(row)
    stats.lines += len(rejected) - len(recovered)
    stats.bad_lines += len(rejected) - len(recovered)
    stats.recovered += len(recovered)
    if not recovered:
        return
    columns = list(Row._fields)
    types = [
        "VARCHAR",
        "DOUBLE",
        "VARCHAR",
        "VARCHAR",
        "VARCHAR",
        "INTEGER",
        "BIGINT",
        "VARCHAR",
        "VARCHAR",
        "VARCHAR",
        "VARCHAR",
    ]
    select = ", ".join(f"unnest(?::{t}[]) AS {c}" for c, t in zip(columns, types, strict=True))
    values = [[getattr(r, c) for r in recovered] for c in columns]
    con.execute(f"CREATE OR REPLACE TEMP TABLE fallback_rows AS SELECT {select}", values)
    con.execute(f"INSERT INTO requests BY NAME SELECT {derive}, true AS _ok, 0 AS _bad FROM fallback_rows")
    con.execute("DROP TABLE fallback_rows")
