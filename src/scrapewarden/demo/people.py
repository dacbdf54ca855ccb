"""The demo's made-up people: names, contact details, a follower graph and posts.

Everything comes from one seed, so the same ``(seed, n)`` gives the same people in every process
(no ``hash()``, no set ordering of strings, only seeded ``random.Random`` and seeded Faker).
Faker is slow per call, so it fills small per-locale pools of names, cities and phone numbers and
a seeded generator composes 20,000 people from them: a fraction of the time, and still Faker's
realistic, locale-weighted names. Populations are cached per ``(seed, n)`` in the process.

Generated accounts are 1-1500 days old at a fixed reference date, so they are all long past any
"new account" window whatever day the demo runs; accounts that sign up during a run are the only
young ones. Every generated person's password is :data:`DEMO_PASSWORD`, so an actor can log in as
an aged account.
"""

from __future__ import annotations

import random
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faker import Faker

DEMO_PASSWORD = "demo-password"

REFERENCE_TIME = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
"""Generated accounts are created 1-1500 days before this (a fixed date keeps them deterministic)."""

# Locales whose names fold to ASCII handles, weighted roughly like a mixed international site.
_LOCALES: tuple[tuple[str, int], ...] = (
    ("en_US", 18),
    ("en_GB", 8),
    ("en_IN", 10),
    ("pt_BR", 8),
    ("es_ES", 5),
    ("es_MX", 6),
    ("fr_FR", 6),
    ("de_DE", 6),
    ("it_IT", 5),
    ("nl_NL", 3),
    ("pl_PL", 4),
    ("sv_SE", 2),
    ("tr_TR", 4),
    ("id_ID", 6),
    ("yo_NG", 5),
    ("sw", 4),
)
_POOL_NAMES = 300
_POOL_CITIES = 40
_POOL_PHONES = 200
_POOL_JOBS = 300
_POOL_SENTENCES = 600

_INTERESTS = (
    "Runs before work.",
    "Collects vinyl records.",
    "Bakes bread on Sundays.",
    "Learning to play the cello.",
    "Always reading two books at once.",
    "Coffee first, questions later.",
    "Hikes whenever the weather allows.",
    "Volunteers at the local library.",
    "Amateur astronomer.",
    "Plays five-a-side football on Thursdays.",
    "Grows tomatoes on a tiny balcony.",
    "Cycles everywhere.",
    "Board games and long dinners.",
    "Photographs old doors.",
    "Parent of two, owner of one very loud cat.",
    "Still trying to finish a novel.",
    "Swims in cold water, on purpose.",
    "Knits badly but happily.",
    "Climbs on weekends.",
    "Chess in the park.",
    "Cooks for friends whenever possible.",
    "Birdwatcher in training.",
    "Learning Japanese.",
    "Fixes old bicycles.",
)
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_HANDLE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# Letters that Unicode decomposition does not reduce to ASCII.
_FOLD = str.maketrans({"ł": "l", "ø": "o", "æ": "ae", "ß": "ss", "ı": "i", "đ": "d", "œ": "oe", "þ": "th"})

PUBLIC_FEED_PEOPLE = 20
"""How many people the logged-out feed samples."""


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str
    handle: str
    city: str
    bio: str
    birth_year: int | None
    """None for accounts that signed up on the site and did not say."""
    email: str
    phone: str
    created: float
    """Account creation time, seconds since the epoch."""
    avatar: int
    """Which of the site's avatar images this person shows."""
    locale: str = ""
    """The Faker locale the name was drawn from (``fr_FR``): the demo's people lookup reads a
    language and a country from it. Empty for accounts that signed up during a run."""


@dataclass(frozen=True, slots=True)
class Post:
    author: int
    posted: float
    text: str


class Population:
    """``n`` generated people with ids 1..n, their follower graph and posts."""

    def __init__(self, seed: int, n: int) -> None:
        if n < 2:
            raise ValueError("the demo needs at least 2 people")
        self.seed = seed
        self.n = n
        pools = _Pools(seed)
        self._sentences = pools.sentences
        rng = random.Random(f"scrapewarden-demo-people-{seed}")
        self.people: list[Person] = []
        self.by_handle: dict[str, Person] = {}
        for person_id in range(1, n + 1):
            person = _make_person(person_id, rng, pools, self.by_handle)
            self.people.append(person)
            self.by_handle[person.handle] = person
        self.following, self.followers = _follow_graph(seed, n)
        # Handle and name words, lower-cased and also accent-folded, space-separated: a search
        # is then one substring scan ("jose" finds José, " sil" finds every word starting "sil").
        self.search_keys: list[str] = [search_key(p.handle, p.name) for p in self.people]
        sample = random.Random(f"scrapewarden-demo-public-feed-{seed}")
        self.public_feed_people: tuple[int, ...] = tuple(
            sample.sample(range(1, n + 1), min(PUBLIC_FEED_PEOPLE, n))
        )

    def get(self, person_id: int) -> Person | None:
        if 1 <= person_id <= self.n:
            return self.people[person_id - 1]
        return None

    def posts_of(self, person_id: int, count: int = 3) -> list[Post]:
        """The person's latest posts, newest first (derived from the seed on demand)."""
        rng = random.Random(f"scrapewarden-demo-posts-{self.seed}-{person_id}")
        posted = REFERENCE_TIME - rng.uniform(0, 2) * 86400
        posts = []
        for _ in range(count):
            posts.append(Post(person_id, posted, rng.choice(self._sentences)))
            posted -= rng.uniform(0.2, 9) * 86400
        return posts

    def common_first_names(self, count: int = 30) -> tuple[str, ...]:
        tally: dict[str, int] = {}
        for person in self.people:
            first = person.name.split(" ", 1)[0]
            tally[first] = tally.get(first, 0) + 1
        ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
        return tuple(name for name, _ in ranked[:count])


class _Pools:
    """Per-locale draws from Faker: the raw material people are composed from."""

    def __init__(self, seed: int) -> None:
        self.locales = [locale for locale, _ in _LOCALES]
        self.weights = [weight for _, weight in _LOCALES]
        self.first: dict[str, list[str]] = {}
        self.last: dict[str, list[str]] = {}
        self.cities: dict[str, list[str]] = {}
        self.phones: dict[str, list[str]] = {}
        for index, locale in enumerate(self.locales):
            fake = Faker(locale)
            fake.seed_instance(seed * 1000 + index)
            self.first[locale] = [fake.first_name() for _ in range(_POOL_NAMES)]
            self.last[locale] = [fake.last_name() for _ in range(_POOL_NAMES)]
            self.cities[locale] = [fake.city() for _ in range(_POOL_CITIES)]
            self.phones[locale] = [fake.phone_number() for _ in range(_POOL_PHONES)]
        english = Faker("en_US")
        english.seed_instance(seed)
        self.jobs = [english.job() for _ in range(_POOL_JOBS)]
        self.sentences = [english.sentence(nb_words=12) for _ in range(_POOL_SENTENCES)]


def fold(text: str) -> str:
    """Lower-case ASCII letters of ``text`` ("Łukasz Zięcik" -> "lukasz ziecik")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch == " "))


def search_key(handle: str, name: str) -> str:
    """Handle and name words with a leading space, so " " + q finds words starting with q."""
    return f" {handle} {name.casefold()} {fold(name)}"


def _handle_part(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch in _HANDLE_CHARS)[:14] or "user"


def _make_person(person_id: int, rng: random.Random, pools: _Pools, taken: dict[str, Person]) -> Person:
    locale = rng.choices(pools.locales, pools.weights)[0]
    first = rng.choice(pools.first[locale])
    last = rng.choice(pools.last[locale])
    city = rng.choice(pools.cities[locale])
    a, b = _handle_part(first.split(" ")[0]), _handle_part(last.split(" ")[-1])
    style = rng.randrange(4)
    if style == 0:
        base = f"{a}.{b}"
    elif style == 1:
        base = f"{a}{b}"
    elif style == 2:
        base = f"{a}_{b[:1]}"
    else:
        base = f"{a[:1]}{b}"
    handle = base if rng.random() < 0.3 else f"{base}{rng.randint(1, 99)}"
    while handle in taken:
        handle = f"{base}{rng.randint(1, 9999)}"
    job = rng.choice(pools.jobs)
    bio = f"{job} in {city}. {rng.choice(_INTERESTS)}"
    return Person(
        id=person_id,
        name=f"{first} {last}",
        handle=handle,
        city=city,
        bio=bio,
        birth_year=rng.randint(1950, 2007),
        email=f"{handle}@{rng.choice(_EMAIL_DOMAINS)}",
        phone=rng.choice(pools.phones[locale]),
        created=REFERENCE_TIME - rng.uniform(1, 1500) * 86400,
        avatar=rng.randrange(AVATARS),
        locale=locale,
    )


AVATARS = 8
"""Number of avatar images the site serves (``/static/img/avatar-<k>.svg``)."""


def _follow_graph(seed: int, n: int) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Who follows whom: each person follows 5-50 others, a fifth of them among a popular few.

    Index 0 is unused so that ``following[id]`` reads naturally.
    """
    rng = random.Random(f"scrapewarden-demo-graph-{seed}")
    popular = rng.sample(range(1, n + 1), max(1, min(200, n // 100)))
    following: list[tuple[int, ...]] = [()]
    followers_lists: list[list[int]] = [[] for _ in range(n + 1)]
    for person_id in range(1, n + 1):
        want = min(rng.randint(5, 50), n - 1)
        picked: dict[int, None] = {}  # insertion-ordered set of ints: deterministic
        while len(picked) < want:
            other = rng.choice(popular) if rng.random() < 0.2 else rng.randint(1, n)
            if other != person_id:
                picked[other] = None
        following.append(tuple(picked))
        for other in picked:
            followers_lists[other].append(person_id)
    return following, [tuple(f) for f in followers_lists]


_CACHE: dict[tuple[int, int], Population] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 4


def population(seed: int = 7, n: int = 20_000) -> Population:
    """The people for ``(seed, n)``, generated once per process."""
    key = (seed, n)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = Population(seed, n)
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = found
        return found


def site_info(seed: int = 7, people: int = 20_000, handles: int = 200) -> dict[str, Any]:
    """What an actor may know about the site: how many people, some handles, common first names.

    ``password`` is every generated account's password, so actors can log in as aged accounts.
    The scoring secret is ``demo.records.demo_secret(seed)``.
    """
    crowd = population(seed, people)
    step = max(1, crowd.n // handles)
    return {
        "people": crowd.n,
        "handles": tuple(crowd.people[i].handle for i in range(0, crowd.n, step))[:handles],
        "first_names": crowd.common_first_names(),
        "password": DEMO_PASSWORD,
    }
