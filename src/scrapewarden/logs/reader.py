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
from typing import Any

import duckdb

from .fallback import Row, parse_line
from .formats import Format, JsonMapping, detect, json_mapping, sample

TABLE_SQL = """
CREATE OR REPLACE TABLE requests (
    ip VARCHAR, ts DOUBLE, method VARCHAR, path VARCHAR, query VARCHAR,
    status INTEGER, bytes BIGINT, referer VARCHAR, ua VARCHAR, account VARCHAR
)
"""
COLUMNS = {"combined": 10, "common": 8}
_IP_PORT = r"^(\d+\.\d+\.\d+\.\d+):\d+$"
"""An IPv4 address with its port, as load balancers log the client (``client:port``)."""
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


def _text_select(paths: Sequence[str | Path], fmt: str) -> str:
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
        CASE WHEN {referer} = '-' THEN '' ELSE coalesce({referer}, '') END AS referer,
        CASE WHEN {ua} = '-' THEN '' ELSE coalesce({ua}, '') END AS ua,
        CASE WHEN c2 = '-' THEN NULL ELSE c2 END AS account,
        (length(c0) - length(replace(c0, chr(10), '')))
          + (length(c5) - length(replace(c5, chr(10), '')))
          + (length(coalesce({referer}, '')) - length(replace(coalesce({referer}, ''), chr(10), '')))
          + (length(coalesce({ua}, '')) - length(replace(coalesce({ua}, ''), chr(10), ''))) AS swallowed,
        substr(c3, 1, 1) = '[' AND substr(c4, -1) = ']'
          AND (c6 = '-' OR try_cast(c6 AS INTEGER) IS NOT NULL) AS framed
    FROM read_csv({_file_list(paths)}, delim=' ', quote='"', escape='\\', header=false, columns={cols},
                  store_rejects=true, strict_mode=false, auto_detect=false, max_line_size=1048576)
    """


def _json_select(paths: Sequence[str | Path], mapping: JsonMapping) -> str:
    p = mapping.paths

    def get(name: str) -> str:
        if name not in p:
            return "NULL"
        return f"json_extract_string(json, '$.{_sql_str(p[name])}')"

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
        CASE WHEN account IN ('-', '') THEN NULL ELSE account END AS account
    FROM (
        SELECT {get("ip")} AS ip, {ts} AS ts, {method} AS method, coalesce({target}, '') AS target,
            try_cast({get("status")} AS INTEGER) AS status, try_cast({get("bytes")} AS BIGINT) AS bytes,
            {get("referer")} AS referer, {get("ua")} AS ua, {get("account")} AS account
        FROM read_json_objects({_file_list(paths)}, format='newline_delimited', ignore_errors=true)
    )
    """


def resolve_format(paths: Sequence[str | Path], fmt: str = "auto") -> dict[str, Format]:
    """The format of each file: given, or sniffed from its first lines."""
    out: dict[str, Format] = {}
    for path in paths:
        if fmt != "auto":
            out[str(path)] = fmt  # type: ignore[assignment]
            continue
        try:
            out[str(path)] = detect(sample(path))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return out


def load(
    con: Any,
    paths: Sequence[str | Path],
    fmt: str = "auto",
    *,
    progress: Any = None,
) -> ReadStats:
    """Fill the ``requests`` table from ``paths``. ``progress(step_name)`` is told each step.

    Raises ValueError for an unknown or undetectable format and FileNotFoundError for a missing
    file; bad lines are counted, not raised.
    """
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such log file: {path}")
    formats = resolve_format(paths, fmt)
    stats = ReadStats(formats={k: str(v) for k, v in formats.items()})
    con.execute(TABLE_SQL)
    groups: dict[str, list[str]] = {}
    for path, f in formats.items():
        groups.setdefault(f, []).append(path)
    for f, files in groups.items():
        if progress is not None:
            progress(f"reading {len(files)} {f} file(s)")
        if f == "json":
            _load_json(con, files, stats)
        else:
            _load_text(con, files, f, stats)
    return stats


def _load_text(con: Any, files: list[str], fmt: str, stats: ReadStats) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_rows AS {_text_select(files, fmt)}")
    # Rows that swallowed following lines (unterminated quote) keep their first line, cut.
    good, swallowed, unframed = con.execute(
        """SELECT count(*) FILTER (WHERE framed AND ts IS NOT NULL AND ip <> ''),
                  coalesce(sum(swallowed), 0),
                  count(*) FILTER (WHERE NOT (framed AND ts IS NOT NULL AND ip <> ''))
           FROM raw_rows"""
    ).fetchone()
    con.execute(
        """INSERT INTO requests
           SELECT ip, ts, method, path, query, status, bytes,
                  split_part(referer, chr(10), 1), split_part(ua, chr(10), 1), account
           FROM raw_rows WHERE framed AND ts IS NOT NULL AND ip <> ''"""
    )
    examples = [
        r[0]
        for r in con.execute(
            "SELECT concat_ws(' ', ip, method, path) FROM raw_rows "
            "WHERE NOT (framed AND ts IS NOT NULL AND ip <> '') LIMIT 3"
        ).fetchall()
    ]
    con.execute("DROP TABLE raw_rows")
    rejected = [
        r[0]
        for r in con.execute(
            "SELECT any_value(csv_line) FROM reject_errors GROUP BY scan_id, file_id, line"
        ).fetchall()
    ]
    con.execute("DROP TABLE IF EXISTS reject_errors")
    con.execute("DROP TABLE IF EXISTS reject_scans")
    recovered: list[Row] = []
    for line in rejected:
        row = parse_line(line or "")
        if row is None:
            if len(stats.bad_examples) < 5:
                stats.bad_examples.append((line or "")[:200])
        else:
            recovered.append(row)
    if recovered:
        con.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", recovered)
    stats.bad_examples.extend(examples[: max(0, 5 - len(stats.bad_examples))])
    bad = int(unframed) + int(swallowed) + len(rejected) - len(recovered)
    stats.lines += int(good) + int(unframed) + int(swallowed) + len(rejected)
    stats.bad_lines += bad
    stats.recovered += len(recovered)


def _load_json(con: Any, files: list[str], stats: ReadStats) -> None:
    mapping = json_mapping(sample(files[0]))
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_rows AS {_json_select(files, mapping)}")
    valid = "ip IS NOT NULL AND ip <> '' AND ts IS NOT NULL"
    total, good = con.execute(f"SELECT count(*), count(*) FILTER (WHERE {valid}) FROM raw_rows").fetchone()
    con.execute(f"INSERT INTO requests SELECT * FROM raw_rows WHERE {valid}")
    con.execute("DROP TABLE raw_rows")
    stats.lines += int(total)
    stats.bad_lines += int(total) - int(good)
