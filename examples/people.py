"""The fake people directory the sample apps serve. Invented names; no real person's data."""

from __future__ import annotations

import html

_FIRST = ("Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas")
_LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Ferreira", "Novak")

PEOPLE: dict[str, dict[str, str]] = {
    str(n): {
        "id": str(n),
        "name": f"{_FIRST[n % len(_FIRST)]} {_LAST[n % len(_LAST)]}",
        "city": ("Lisbon", "Oslo", "Nairobi", "Osaka", "Quito")[n % 5],
    }
    for n in range(1, 5001)
}


def profile(user_id: str) -> dict[str, str] | None:
    return PEOPLE.get(user_id)


def search(query: str) -> list[dict[str, str]]:
    needle = query.strip().lower()
    if not needle:
        return []
    return [person for person in PEOPLE.values() if needle in person["name"].lower()][:10]


def home_html() -> str:
    links = "".join(
        f'<li><a href="/users/{p["id"]}">{html.escape(p["name"])}</a></li>' for p in list(PEOPLE.values())[:5]
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>People directory</title></head>'
        f"<body><main><h1>People directory</h1><ul>{links}</ul>"
        '<form action="/search"><label>Search <input name="q"></label> <button>Go</button></form>'
        "</main></body></html>"
    )


def profile_html(person: dict[str, str]) -> str:
    name = html.escape(person["name"])
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{name}</title></head>'
        f"<body><main><h1>{name}</h1><p>Lives in {html.escape(person['city'])}.</p></main></body></html>"
    )
