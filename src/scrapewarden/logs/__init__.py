"""Access logs: reading them fast (DuckDB) and judging the clients in them.

- :mod:`.formats`: which format a log is in (combined, common, JSON lines) and the JSON field table;
- :mod:`.fallback`: the line-by-line regular-expression parser, for lines the fast path rejects;
- :mod:`.reader`: loads many plain or ``.gz`` files into one DuckDB table, counting bad lines;
- :mod:`.features`: per-actor features computed in SQL;
- :mod:`.campaigns`: groups of addresses that act as one client (rotating-proxy scrapers);
- :mod:`.analyzer`: the whole analysis, from files to a report;
- :mod:`.report`, :mod:`.html`, :mod:`.bans_out`: what the analysis is written out as;
- :mod:`.tail` and :mod:`.watch`: following a live log with the live engine.
"""
