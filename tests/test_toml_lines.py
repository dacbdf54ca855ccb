"""The TOML key locator: fixed cases for every construct, and a property over generated files."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from scrapewarden.toml_lines import key_lines, locate


def _lines(text: str) -> dict[tuple[str | int, ...], int]:
    tomllib.loads(text)  # every fixture must be real TOML, or the test proves nothing
    return key_lines(text)


def test_plain_keys_tables_and_comments() -> None:
    text = """# a comment with = and [brackets]
mode = "observe"   # trailing comment

[limits]
# inside
[limits.per_account]
profiles_per_day = 0
"""
    lines = _lines(text)
    assert lines[("mode",)] == 2
    assert lines[("limits",)] == 4
    assert lines[("limits", "per_account")] == 6
    assert lines[("limits", "per_account", "profiles_per_day")] == 7


def test_arrays_of_tables_are_counted_per_element() -> None:
    text = """[[protected]]
pattern = "/users/{id}"

[[protected]]
pattern = "/search"
query_param = "q"

[[protected]]
kind = "profile"
"""
    lines = _lines(text)
    assert lines[("protected", 0)] == 1
    assert lines[("protected", 0, "pattern")] == 2
    assert lines[("protected", 1, "pattern")] == 5
    assert lines[("protected", 1, "query_param")] == 6
    assert lines[("protected", 2)] == 8
    # A missing key (a "required" error) falls back to its own [[protected]] header.
    assert locate(text, ("protected", 2, "pattern")) == 8


def test_nested_arrays_of_tables_attach_to_the_latest_parent() -> None:
    text = """[[shop]]
name = "a"
[[shop.item]]
sku = 1
[[shop]]
name = "b"
[[shop.item]]
sku = 2
[[shop.item]]
sku = 3
[shop.item.extra]
note = "x"
"""
    lines = _lines(text)
    assert lines[("shop", 0, "item", 0, "sku")] == 4
    assert lines[("shop", 1, "name")] == 6
    assert lines[("shop", 1, "item", 0, "sku")] == 8
    assert lines[("shop", 1, "item", 1, "sku")] == 10
    assert lines[("shop", 1, "item", 1, "extra", "note")] == 12


def test_array_of_tables_under_a_table() -> None:
    text = """[identity]
api_key_header = "x-api-key"

[[identity.partners]]
name = "lab"

[[identity.partners]]
name = "other"
"""
    lines = _lines(text)
    assert lines[("identity", "partners", 0, "name")] == 5
    assert lines[("identity", "partners", 1, "name")] == 8
    assert locate(text, ("identity", "partners", 1, "key_sha256")) == 7


def test_dotted_keys_define_their_tables_on_that_line() -> None:
    text = """title = "x"
limits.per_ip.requests_per_minute = 0
limits . per_ip . profiles_per_day = 5
"""
    lines = _lines(text)
    assert lines[("limits",)] == 2
    assert lines[("limits", "per_ip")] == 2
    assert lines[("limits", "per_ip", "requests_per_minute")] == 2
    assert lines[("limits", "per_ip", "profiles_per_day")] == 3


def test_explicit_header_wins_over_an_implicit_mention() -> None:
    text = """[limits.per_ip]
requests_per_minute = 1

[limits]
new_account = {}
"""
    # "limits" is first mentioned by [limits.per_ip]; its own header is the better answer.
    assert _lines(text)[("limits",)] == 4


def test_inline_tables_give_the_line_of_the_table() -> None:
    text = """[limits]
per_ip = { requests_per_minute = 0, profiles_per_hour = 1, "profiles_per_day" = 2 }
per_session = {}
"""
    lines = _lines(text)
    assert lines[("limits", "per_ip", "requests_per_minute")] == 2
    assert lines[("limits", "per_ip", "profiles_per_day")] == 2
    assert locate(text, ("limits", "per_session", "profiles_per_day")) == 3


def test_quoted_keys_with_dots_spaces_and_escapes() -> None:
    text = """[reputation.extra_lists]
"old scrapers" = ["198.51.100.0/24"]
'a.b' = []
"tab\\tkey" = []

["odd table".'x']
k = 1
"""
    lines = _lines(text)
    assert lines[("reputation", "extra_lists", "old scrapers")] == 2
    assert lines[("reputation", "extra_lists", "a.b")] == 3
    assert lines[("reputation", "extra_lists", "tab\tkey")] == 4
    assert lines[("odd table", "x", "k")] == 7


def test_multi_line_arrays_and_strings_do_not_confuse_it() -> None:
    text = '''[client]
asset_prefixes = [
  "/static/",   # ] not the end
  "[not a table]",
  ['x', "]"],
  { a = "}" },
]
notes = """
[fake.table]
fake = 1
"""
literal = \'\'\'
[[also.fake]]\'\'\'
after = 1
'''
    lines = _lines(text)
    assert lines[("client", "asset_prefixes")] == 2
    assert lines[("client", "asset_prefixes", 0)] == 3
    assert lines[("client", "asset_prefixes", 1)] == 4
    assert lines[("client", "asset_prefixes", 2)] == 5
    assert lines[("client", "asset_prefixes", 3, "a")] == 6
    assert lines[("client", "notes")] == 8
    assert lines[("client", "literal")] == 12
    assert lines[("client", "after")] == 14
    assert ("fake",) not in lines
    assert ("also",) not in lines


def test_strings_ending_in_extra_quotes_and_escaped_quotes() -> None:
    text = 'a = """x""""\nb = "say \\"hi\\" [x]"\nc = \'\'\'y\'\'\'\'\'\nd = 1\n'
    lines = _lines(text)
    assert lines[("d",)] == 4
    assert lines[("b",)] == 2


def test_windows_line_endings() -> None:
    text = "[traps]\r\npaths = [\r\n  '/a',\r\n]\r\nweight = 1\r\n"
    assert _lines(text)[("traps", "weight")] == 5


def test_missing_paths_fall_back_to_the_nearest_enclosing_table() -> None:
    text = "mode = 'enforce'\n\n[thresholds]\nblock = 80\n"
    assert locate(text, ("thresholds", "challenge")) == 3
    assert locate(text, ("privacy", "key")) is None
    assert locate(text, ()) is None


def test_unreadable_text_gives_what_was_found_before_the_problem() -> None:
    # Not valid TOML: the locator must not raise, just stop.
    lines = key_lines('a = 1\nb = "unterminated\nc = 3\n')
    assert lines[("a",)] == 1
    assert ("c",) not in lines


# -- property: generated documents, keys in random order, every key found on its line ---------

_KEY_CHARS = st.sampled_from([*"abcxyz019_-", " ", ".", "#", "[", "]", "=", '"', "'", "é"])
_KEY = st.text(_KEY_CHARS, min_size=1, max_size=6)
# Characters that a naive scanner would mistake for structure when they sit inside strings.
_TRICKY_TEXT = st.text(
    st.sampled_from(["a", "b", " ", "[", "]", "{", "}", "#", "=", ",", "'", '"', "\\", "\n"]), max_size=12
)


def _render_key(name: str, draw: st.DrawFn) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]+", name) and draw(st.booleans()):
        return name
    if "'" not in name and draw(st.booleans()):
        return f"'{name}'"
    return json.dumps(name)


@dataclass
class _Doc:
    lines: list[str] = field(default_factory=list)
    expected: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def add(self, text: str, here: dict[tuple[str | int, ...], int]) -> None:
        """Append ``text``; ``here`` maps paths to line offsets within it."""
        first = len(self.lines) + 1
        for path, offset in here.items():
            self.expected[path] = first + offset
        self.lines.extend(text.split("\n"))


def _value(draw: st.DrawFn, path: tuple[str | int, ...]) -> tuple[str, dict[tuple[str | int, ...], int]]:
    """A rendered value and the line offsets of its array elements."""
    kind = draw(st.sampled_from(["int", "bool", "basic", "literal", "multi", "multi_literal", "array"]))
    if kind == "int":
        return str(draw(st.integers(-(10**6), 10**6))), {}
    if kind == "bool":
        return draw(st.sampled_from(["true", "false"])), {}
    text = draw(_TRICKY_TEXT)
    if kind == "basic":
        return json.dumps(text.replace("\n", " ")), {}
    if kind == "literal":
        return "'" + re.sub(r"['\n]", "", text) + "'", {}
    if kind == "multi":
        body = text.replace("\\", "\\\\").replace('"', "'")
        return f'"""\n{body}\n[not.a.table]\nkey = 1"""', {}
    if kind == "multi_literal":
        return "'''" + text.replace("'", "") + "\n[[nope]]'''", {}
    # A multi-line array, one element per line, with comments full of brackets.
    out = ["["]
    offsets: dict[tuple[str | int, ...], int] = {}
    for index in range(draw(st.integers(0, 3))):
        element, inner = _value(draw, (*path, index))
        start = sum(chunk.count("\n") + 1 for chunk in out)  # elements may span lines
        offsets[(*path, index)] = start
        offsets.update({sub: start + offset for sub, offset in inner.items()})
        out.append(f"  {element},  # ] [x] }}")
    out.append("]")
    return "\n".join(out), offsets


def _key_values(draw: st.DrawFn, table: tuple[str | int, ...], names: list[str]) -> list[tuple[str, dict]]:
    chunks = []
    for name in names:
        value, offsets = _value(draw, (*table, name))
        chunks.append((f"{_render_key(name, draw)} = {value}", {(*table, name): 0, **offsets}))
    return chunks


@st.composite
def _documents(draw: st.DrawFn) -> _Doc:
    names = draw(st.lists(_KEY, min_size=1, max_size=12, unique=True))
    split = draw(st.integers(0, len(names)))
    root_keys, table_names = names[:split], names[split:]
    doc = _Doc()
    root_chunks = _key_values(draw, (), root_keys)
    header_blocks: list[tuple[str, list[tuple[str, dict]]]] = []
    for table in table_names:
        style = draw(st.sampled_from(["header", "dotted", "inline", "array"]))
        keys = draw(st.lists(_KEY, max_size=4, unique=True))
        rendered_table = _render_key(table, draw)
        if style == "dotted":
            for text, here in _key_values(draw, (table,), keys):
                root_chunks.append((f"{rendered_table}.{text}", here))
        elif style == "inline":
            parts = []
            for name in keys:
                scalar = draw(st.integers(0, 9))
                parts.append(f"{_render_key(name, draw)} = {scalar}")
            here = {(table,): 0, **{(table, name): 0 for name in keys}}
            root_chunks.append((f"{rendered_table} = {{ {', '.join(parts)} }}", here))
        elif style == "header":
            block = [(f"[{rendered_table}]  # table", {(table,): 0})]
            block += draw(st.permutations(_key_values(draw, (table,), keys)))
            header_blocks.append((table, block))
        else:
            for index in range(draw(st.integers(1, 3))):
                element = (table, index)
                block = [(f"[[ {rendered_table} ]]", {element: 0})]
                block += draw(st.permutations(_key_values(draw, element, keys)))
                header_blocks.append((table, block))
    # Root key/values must come before the first header; within that, any order.
    for text, here in draw(st.permutations(root_chunks)):
        doc.add(text, here)
        if draw(st.booleans()):
            doc.add("# comment = [x]", {})
    # Shuffle the tables, interleaving the elements of different arrays of tables, but keep
    # each array's own elements in order: their indices depend on it.
    shuffled = draw(st.permutations(header_blocks))
    queues = {table: [block for name, block in header_blocks if name == table] for table, _ in header_blocks}
    for table, _ in shuffled:
        doc.add("", {})
        for text, here in queues[table].pop(0):
            doc.add(text, here)
    return doc


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_every_generated_key_is_located_on_the_line_it_was_written(doc: _Doc) -> None:
    text = "\n".join(doc.lines) + "\n"
    tomllib.loads(text)  # the generator must only produce valid TOML
    found = key_lines(text)
    for path, line in doc.expected.items():
        assert found.get(path) == line, (path, text)
        assert locate(text, path) == line
        assert locate(text, (*path, "not-written")) == line
