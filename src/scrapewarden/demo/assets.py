"""The demo site's static files: one stylesheet, one small script and a few images.

They are made here in code rather than shipped as files, so the package carries no binary
blobs; the PNG is drawn pixel by pixel and encoded with zlib. Every page links the stylesheet
and script and shows images, so a real browser loads them as it would on any site.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from functools import cache

from .people import AVATARS

CSS = """\
:root { --ink: #1d2330; --muted: #5b6474; --line: #e3e6ec; --accent: #3a6ff7; --bg: #f6f7fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem;
             background: #fff; border-bottom: 1px solid var(--line); }
header.top .brand { display: flex; align-items: center; gap: .5rem; font-weight: 700; color: var(--ink); }
header.top nav { display: flex; gap: 1rem; margin-left: auto; align-items: center; }
main { max-width: 46rem; margin: 1.5rem auto; padding: 0 1rem; }
.card { display: flex; gap: .9rem; background: #fff; border: 1px solid var(--line);
        border-radius: 10px; padding: .9rem 1rem; margin: .6rem 0; }
.card .who { font-weight: 600; }
.muted, .handle { color: var(--muted); }
img.avatar { width: 48px; height: 48px; border-radius: 50%; flex: none; }
img.avatar.big { width: 96px; height: 96px; }
img.avatar.small { width: 28px; height: 28px; }
.profile dl { display: grid; grid-template-columns: 8rem 1fr; gap: .2rem 1rem; }
.profile dt { color: var(--muted); }
form.stack { display: grid; gap: .6rem; max-width: 22rem; }
form.stack input { padding: .45rem .6rem; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
button { padding: .45rem .9rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff;
         font: inherit; cursor: pointer; }
.error { color: #b3261e; }
.pager { display: flex; justify-content: space-between; margin-top: 1rem; }
.friends { display: flex; flex-wrap: wrap; gap: .5rem 1rem; }
.friends a { display: inline-flex; gap: .35rem; align-items: center; }
footer { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: var(--muted); font-size: .85rem; }
.sw-hidden { display: none !important; }
"""

JS = """\
// Shows post and join dates in the reader's own words ("3 days ago") and marks the active tab.
(function () {
  var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  function ago(seconds) {
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(seconds / units[i][1]);
      if (n >= 1) return n + " " + units[i][0] + (n > 1 ? "s" : "") + " ago";
    }
    return "just now";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var now = Date.now() / 1000;
    document.querySelectorAll("time[data-epoch]").forEach(function (el) {
      var t = parseFloat(el.getAttribute("data-epoch"));
      if (!isNaN(t)) el.title = ago(Math.max(0, now - t));
    });
    document.querySelectorAll("header.top nav a").forEach(function (a) {
      if (a.getAttribute("href") === location.pathname) a.style.fontWeight = "700";
    });
  });
})();
"""

_AVATAR_COLOURS = ("#3a6ff7", "#e4572e", "#17bebb", "#ffc914", "#76b041", "#9b5de5", "#f15bb5", "#2e4057")


@cache
def avatar_svg(index: int) -> str:
    colour = _AVATAR_COLOURS[index % len(_AVATAR_COLOURS)]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
        f'<rect width="64" height="64" rx="32" fill="{colour}"/>'
        '<circle cx="32" cy="25" r="11" fill="#fff" fill-opacity=".9"/>'
        '<path d="M12 54c3-11 11-16 20-16s17 5 20 16" fill="#fff" fill-opacity=".9"/></svg>'
    )


LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="32" height="32">'
    '<rect width="32" height="32" rx="8" fill="#3a6ff7"/>'
    '<circle cx="12" cy="13" r="5" fill="#fff"/><circle cx="21" cy="19" r="6" fill="#fff" fill-opacity=".7"/>'
    "</svg>"
)


def _png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """Encode an RGB image given as ``pixel(x, y) -> (r, g, b)``."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@cache
def icon_png() -> bytes:
    """A 32x32 icon: a blue tile with a lighter disc."""

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        inside = (x - 15.5) ** 2 + (y - 15.5) ** 2 < 81
        return (255, 255, 255) if inside else (58, 111, 247)

    return _png(32, 32, pixel)


def static_files() -> dict[str, tuple[bytes, str]]:
    """Path under ``/static/`` -> (content, media type)."""
    files = {
        "site.css": (CSS.encode(), "text/css; charset=utf-8"),
        "app.js": (JS.encode(), "text/javascript; charset=utf-8"),
        "img/logo.svg": (LOGO_SVG.encode(), "image/svg+xml"),
        "img/icon.png": (icon_png(), "image/png"),
    }
    for index in range(AVATARS):
        files[f"img/avatar-{index}.svg"] = (avatar_svg(index).encode(), "image/svg+xml")
    return files
