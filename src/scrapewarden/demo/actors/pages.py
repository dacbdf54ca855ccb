"""What a client can see on an HTML page: links (visible or not) and the assets it loads.

Plain regular expressions over the markup, as a hurried scraper would write them, but enough
for the demo site's ordinary HTML. Hidden links (``display:none``, ``hidden``) are marked so
people never "click" what they cannot see, and ``rel=nofollow`` so polite crawlers skip them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from .browsers import AssetKind

_TAG_RE = re.compile(r"<(a|link|script|img)\b([^>]*)>", re.IGNORECASE)
# Every attribute, so that one attribute's value is never read as another attribute.
_ATTR_RE = re.compile(r"""([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_PROFILE_RE = re.compile(r"^/(?:users/\d+|@[\w.-]+)$")
_FOLLOWERS_RE = re.compile(r"^/users/\d+/followers$")
_LOC_RE = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)


@dataclass(frozen=True)
class Link:
    href: str
    hidden: bool = False
    nofollow: bool = False


def _attrs(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _ATTR_RE.finditer(text):
        name = match.group(1).lower()
        value = next((g for g in match.group(2, 3, 4) if g is not None), "")
        found.setdefault(name, html.unescape(value))
    return found


def _is_hidden(attrs: dict[str, str]) -> bool:
    style = attrs.get("style", "").replace(" ", "").lower()
    return (
        "hidden" in attrs
        or attrs.get("aria-hidden", "").lower() == "true"
        or "display:none" in style
        or "visibility:hidden" in style
    )


def links_in(body: str) -> list[Link]:
    """Every ``<a href>`` on the page, fragments cut, in page order."""
    links = []
    for match in _TAG_RE.finditer(body):
        if match.group(1).lower() != "a":
            continue
        attrs = _attrs(match.group(2))
        href = attrs.get("href", "").split("#", 1)[0].strip()
        if not href or href.lower().startswith(("javascript:", "mailto:", "tel:")):
            continue
        rel = attrs.get("rel", "").lower().split()
        links.append(Link(href, _is_hidden(attrs), "nofollow" in rel))
    return links


def assets_in(body: str) -> list[tuple[AssetKind, str]]:
    """Stylesheets, scripts and images a browser loads for this page, each once."""
    found: list[tuple[AssetKind, str]] = []
    seen: set[str] = set()
    for match in _TAG_RE.finditer(body):
        tag = match.group(1).lower()
        attrs = _attrs(match.group(2))
        kind: AssetKind
        if tag == "link":
            rel = attrs.get("rel", "").lower().split()
            if "stylesheet" in rel:
                kind, url = "style", attrs.get("href", "")
            elif "icon" in rel:
                kind, url = "image", attrs.get("href", "")
            else:
                continue
        elif tag == "script":
            kind, url = "script", attrs.get("src", "")
        elif tag == "img":
            kind, url = "image", attrs.get("src", "")
        else:
            continue
        url = url.strip()
        if url and not url.startswith("data:") and url not in seen:
            seen.add(url)
            found.append((kind, url))
    return found


def is_profile(path: str) -> bool:
    """``/users/{id}`` or ``/@handle``."""
    return bool(_PROFILE_RE.match(path))


def is_followers(path: str) -> bool:
    return bool(_FOLLOWERS_RE.match(path))


def sitemap_locations(body: str) -> list[str]:
    """``<loc>`` entries of a sitemap or sitemap index."""
    return [html.unescape(m.group(1)) for m in _LOC_RE.finditer(body)]
