"""Signing up and logging in to the demo site, as a browser's form would.

The demo site's generated people all have the password :data:`DEMO_PASSWORD` and are all long
past any new-account window, so any handle in ``Target.handles`` is an aged account to log in
as. Actors name the account by its handle, or by its index in ``Target.handles``.
"""

from __future__ import annotations

from .base import Target
from .browsers import Browser
from .client import Client, Reply

DEMO_PASSWORD = "demo-password"
SESSION_COOKIE = "sid"


def account_handle(target: Target, account: int | str) -> str | None:
    """``account`` itself if it is a handle, else the target's ``account``-th known handle."""
    if isinstance(account, str):
        return account or None
    if not target.handles:
        return None
    return target.handles[account % len(target.handles)]


async def log_in(
    client: Client,
    browser: Browser,
    handle: str,
    deadline: float,
    *,
    password: str = DEMO_PASSWORD,
    referer: str | None = None,
) -> Reply | None:
    """Open the login page, submit the form; the reply is the page the site redirected to."""
    page = await client.get("/login", browser.page(referer), deadline)
    if page is None:
        return None
    login_url = client.url("/login")
    return await client.request(
        "POST",
        "/login",
        browser.form_post(login_url, client.origin),
        deadline,
        data={"handle": handle, "password": password},
    )


async def sign_up(
    client: Client, browser: Browser, handle: str, name: str, password: str, deadline: float
) -> Reply | None:
    """Open the sign-up page and submit it."""
    page = await client.get("/signup", browser.page(None), deadline)
    if page is None:
        return None
    return await client.request(
        "POST",
        "/signup",
        browser.form_post(client.url("/signup"), client.origin),
        deadline,
        data={"handle": handle, "name": name, "password": password},
    )
