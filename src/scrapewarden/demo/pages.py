"""HTML of the demo site: plain f-strings, every shown value passed through ``html.escape``.

What counts as a *record*: a person's details beyond a byline (city, bio, contact details).
Wherever those are shown (profile, search and follower cards) the person's record token sits
beside them in ``<span class="rid" hidden>``, so a scoring client can tell which records a page
gave away. A bare name-and-handle link (a post's byline, a friend link) is a mention, not a
record, and carries no token: otherwise every profile would leak its friends' records too and
the score would measure page design rather than protection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from .people import Person, Post

TRAP_PATH = "/.sw/trap"
"""Linked invisibly on every page; must be one of the demo policy's ``traps.paths``."""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _date(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return (
        f'<time datetime="{moment.isoformat(timespec="seconds")}" data-epoch="{epoch:.0f}">'
        f"{moment:%d %b %Y}</time>"
    )


def avatar(person: Person | None, size: str = "") -> str:
    index = person.avatar if person is not None else 0
    alt = f"{person.name}'s avatar" if person is not None else "avatar"
    cls = f"avatar {size}".strip()
    return f'<img class="{cls}" src="/static/img/avatar-{index}.svg" alt="{_e(alt)}" width="48" height="48">'


def layout(title: str, body: str, viewer: Person | None) -> str:
    """A whole page: head with the shared CSS and JS, top bar, content, hidden trap link."""
    if viewer is None:
        account = f'{avatar(None, "small")}<a href="/login">Log in</a><a href="/signup">Sign up</a>'
    else:
        account = (
            f'<a href="/users/{viewer.id}">{avatar(viewer, "small")}</a>'
            f'<a href="/@{_e(viewer.handle)}">@{_e(viewer.handle)}</a><a href="/logout">Log out</a>'
        )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · Circles</title>"
        '<link rel="stylesheet" href="/static/site.css">'
        '<link rel="icon" href="/static/img/icon.png" type="image/png">'
        '<script src="/static/app.js" defer></script></head><body>'
        '<header class="top"><a class="brand" href="/">'
        '<img src="/static/img/logo.svg" alt="" width="32" height="32">Circles</a>'
        f'<nav><a href="/feed">Feed</a><a href="/search">Search</a>{account}</nav></header>'
        f"<main>{body}</main>"
        "<footer>Circles is a demo social network made of generated people. "
        '<a href="/robots.txt">robots.txt</a>'
        # Invisible to people and disallowed in robots.txt: only a crawler ignoring both follows it.
        f'<a class="sw-hidden" href="{TRAP_PATH}" rel="nofollow" tabindex="-1" aria-hidden="true">archive</a>'
        "</footer></body></html>\n"
    )


def token_span(token: str) -> str:
    return f'<span class="rid" hidden>{_e(token)}</span>'


def mention(person: Person) -> str:
    """A name-and-handle link: not a record, so no token."""
    return (
        f'<a href="/users/{person.id}">{avatar(person, "small")}<span>{_e(person.name)}</span></a>'
        f' <span class="handle">@{_e(person.handle)}</span>'
    )


def person_card(person: Person, token: str) -> str:
    """A record in brief (search results, followers lists), with its token."""
    return (
        f'<div class="card person" data-id="{person.id}">{avatar(person)}<div>'
        f'<a class="who" href="/users/{person.id}">{_e(person.name)}</a> '
        f'<span class="handle">@{_e(person.handle)}</span>'
        f'<div class="muted">{_e(person.city)}</div><div>{_e(person.bio)}</div>'
        f"{token_span(token)}</div></div>"
    )


def _post(post: Post, author: Person) -> str:
    return (
        f'<div class="card post">{avatar(author)}<div><div>{mention(author)} · {_date(post.posted)}</div>'
        f"<p>{_e(post.text)}</p></div></div>"
    )


def landing(viewer: Person | None) -> str:
    if viewer is None:
        cta = '<p><a href="/signup">Create an account</a> or <a href="/login">log in</a>.</p>'
    else:
        cta = f"<p>Welcome back, {_e(viewer.name)}. See what your friends are up to.</p>"
    body = (
        f'<section class="card">{avatar(viewer, "big")}<div><h1>Circles</h1>'
        "<p>Keep up with the people you know.</p>"
        f"{cta}"
        '<p><a href="/feed">Read the feed</a> · <a href="/search">Find someone</a></p></div></section>'
    )
    return layout("Welcome", body, viewer)


def feed(items: Sequence[tuple[Post, Person]], viewer: Person | None) -> str:
    heading = "Your feed" if viewer is not None else "What people are saying"
    note = (
        ""
        if viewer is not None
        else '<p class="muted"><a href="/login">Log in</a> to see posts from people you follow.</p>'
    )
    posts = "".join(_post(post, author) for post, author in items) or '<p class="muted">Nothing yet.</p>'
    return layout("Feed", f"<h1>{heading}</h1>{note}{posts}", viewer)


def profile(
    person: Person,
    token: str,
    followers: int,
    following: int,
    friends: Sequence[Person],
    posts: Sequence[Post],
    viewer: Person | None,
) -> str:
    friend_links = "".join(f"<span>{mention(friend)}</span>" for friend in friends)
    body = (
        f'<section class="card profile" data-id="{person.id}">{avatar(person, "big")}<div>'
        f'<h1>{_e(person.name)}</h1><div class="handle">@{_e(person.handle)}</div>'
        f"<p>{_e(person.bio)}</p><dl>"
        f"<dt>City</dt><dd>{_e(person.city)}</dd>"
        f"<dt>Born</dt><dd>{person.birth_year}</dd>"
        f'<dt>Email</dt><dd><a href="mailto:{_e(person.email)}">{_e(person.email)}</a></dd>'
        f"<dt>Phone</dt><dd>{_e(person.phone)}</dd>"
        f"<dt>Joined</dt><dd>{_date(person.created)}</dd>"
        f'<dt>Followers</dt><dd><a href="/users/{person.id}/followers">{followers}</a></dd>'
        f"<dt>Following</dt><dd>{following}</dd></dl>"
        f"{token_span(token)}</div></section>"
        f'<h2>Friends</h2><div class="friends">{friend_links or "<span class=muted>None yet.</span>"}</div>'
        f"<h2>Posts</h2>{''.join(_post(post, person) for post in posts) or '<p class=muted>No posts.</p>'}"
    )
    return layout(person.name, body, viewer)


def followers(
    person: Person, cards: Sequence[str], page: int, pages: int, total: int, viewer: Person | None
) -> str:
    pager = '<div class="pager">'
    pager += (
        f'<a href="/users/{person.id}/followers?page={page - 1}" rel="prev">← Newer</a>'
        if page > 1
        else "<span></span>"
    )
    pager += (
        f'<a href="/users/{person.id}/followers?page={page + 1}" rel="next">Older →</a>'
        if page < pages
        else "<span></span>"
    )
    pager += "</div>"
    body = (
        f'<h1>People following <a href="/users/{person.id}">{_e(person.name)}</a></h1>'
        f'<p class="muted">{total} followers · page {page} of {max(pages, 1)}</p>'
        f"{''.join(cards) or '<p class=muted>No followers yet.</p>'}{pager}"
    )
    return layout(f"Followers of {person.name}", body, viewer)


def search(query: str, cards: Sequence[str], viewer: Person | None) -> str:
    form = (
        '<form class="stack" method="get" action="/search" role="search">'
        f'<input name="q" value="{_e(query)}" placeholder="Name or @handle" autofocus>'
        "<button>Search</button></form>"
    )
    if not query:
        results = '<p class="muted">Type a name or a handle.</p>'
    elif not cards:
        results = f'<p class="muted">Nobody matches “{_e(query)}”.</p>'
    else:
        results = f'<p class="muted">People matching “{_e(query)}”</p>{"".join(cards)}'
    return layout("Search", f"<h1>Find people</h1>{form}{results}", viewer)


def signup(error: str = "", name: str = "", handle: str = "") -> str:
    body = (
        "<h1>Create your account</h1>"
        f"{f'<p class=error>{_e(error)}</p>' if error else ''}"
        '<form class="stack" method="post" action="/signup">'
        f'<label>Name <input name="name" value="{_e(name)}" required maxlength="80"></label>'
        f'<label>Handle <input name="handle" value="{_e(handle)}" required maxlength="30"'
        ' pattern="[a-z0-9._]{3,30}"></label>'
        '<label>Password <input name="password" type="password" required minlength="8"></label>'
        "<button>Sign up</button></form>"
        '<p>Already here? <a href="/login">Log in</a>.</p>'
    )
    return layout("Sign up", body, None)


def login(error: str = "", handle: str = "") -> str:
    body = (
        "<h1>Log in</h1>"
        f"{f'<p class=error>{_e(error)}</p>' if error else ''}"
        '<form class="stack" method="post" action="/login">'
        f'<label>Handle <input name="handle" value="{_e(handle)}" required maxlength="30"></label>'
        '<label>Password <input name="password" type="password" required></label>'
        "<button>Log in</button></form>"
        '<p>New here? <a href="/signup">Sign up</a>.</p>'
    )
    return layout("Log in", body, None)


def not_found(viewer: Person | None, what: str = "That page does not exist.") -> str:
    return layout("Not found", f"<h1>Not found</h1><p>{_e(what)}</p>", viewer)


def bad_request(viewer: Person | None, what: str) -> str:
    return layout("Bad request", f"<h1>Bad request</h1><p>{_e(what)}</p>", viewer)


def trap(viewer: Person | None) -> str:
    return layout("Archive", "<h1>Archive</h1><p>Nothing to see here.</p>", viewer)
