"""People directory on Flask, protected by scrapewarden.

Run from the repository root:

    flask --app examples.flask_app run
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, abort, jsonify, request

from scrapewarden import ScrapeWardenWSGIMiddleware

from .people import home_html, profile, profile_html, search

POLICY = Path(__file__).with_name("policy.toml")


def create_site() -> Flask:
    """The site itself, without protection (tests wrap it themselves)."""
    site = Flask(__name__)

    @site.get("/")
    def home() -> str:
        return home_html()

    @site.get("/users/<user_id>")
    def user(user_id: str) -> object:
        person = profile(user_id)
        if person is None:
            abort(404)
        if "text/html" in request.headers.get("Accept", ""):
            return profile_html(person)
        return jsonify(person)

    @site.get("/search")
    def find() -> object:
        return jsonify(search(request.args.get("q", "")))

    return site


app = create_site()
app.wsgi_app = ScrapeWardenWSGIMiddleware(app.wsgi_app, policy=POLICY)  # type: ignore[method-assign]
