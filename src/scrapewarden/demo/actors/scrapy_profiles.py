"""The Scrapy spider of scraper 9, and the runner that starts it in its own process.

Run as ``python -m scrapewarden.demo.actors.scrapy_profiles START_URL OUT.jsonl SETTINGS_JSON``
(see ``scrapy_spider.py``; ``SCRAPEWARDEN_STOP_AT`` in the settings is the wall-clock time at
which the crawl closes itself): Twisted's reactor cannot be restarted inside one process, so every
crawl is a child process of its own.

The spider starts at the home page and follows what a profile scraper wants: the feed (a
listing of people), profiles (``/users/<id>``, ``/@<handle>``), followers lists and their
pages. It does not score anything: a downloader middleware next to the downloader writes one
JSON line per HTTP response, before Scrapy's retry and redirect middlewares act on it, so
refusals that Scrapy retries are counted too. 200 answers keep only their record tokens
(scoring needs nothing else), refusals a prefix of their body (to tell a challenge from a
block).
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any, TextIO
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.http import Request, Response, TextResponse

from scrapewarden.demo.records import TOKEN_RE

FOLLOW = re.compile(r"^/(?:feed|users/\d+(?:/followers)?|@[^/?#]+)$")
REFUSAL_BODY_CHARS = 4000
SHUTDOWN_S = 1.0

RECORDER = "scrapewarden.demo.actors.scrapy_profiles.RecordEveryResponse"


class RecordEveryResponse:
    """Downloader middleware: one JSON line per response (or download error) to ``SCRAPEWARDEN_OUT``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RecordEveryResponse:
        path = crawler.settings.get("SCRAPEWARDEN_OUT")
        # Line-buffered: if the crawl is killed at its deadline, what came before is on disk.
        return cls(open(path, "a", buffering=1, encoding="utf-8"))

    def process_response(
        self, request: Request, response: Response, spider: scrapy.Spider | None = None
    ) -> Response:
        line: dict[str, Any] = {
            "url": response.url,
            "status": response.status,
            "latency_s": float(request.meta.get("download_latency", 0.0)),
        }
        text = response.text if isinstance(response, TextResponse) else ""
        if response.status == 200:
            line["tokens"] = " ".join(match.group(0) for match in TOKEN_RE.finditer(text))
        else:
            line["body"] = text[:REFUSAL_BODY_CHARS]
        self.out.write(json.dumps(line) + "\n")
        return response

    def process_exception(
        self, request: Request, exception: Exception, spider: scrapy.Spider | None = None
    ) -> None:
        self.out.write(json.dumps({"url": request.url, "error": type(exception).__name__}) + "\n")


class ProfileSpider(scrapy.Spider):
    name = "profiles"

    def __init__(self, start: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start]
        parts = urlsplit(start)
        self.origin = (parts.scheme, parts.netloc)

    def parse(self, response: Response, **kwargs: Any) -> Any:
        if response.status != 200 or not isinstance(response, TextResponse):
            return
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            parts = urlsplit(url)
            if (parts.scheme, parts.netloc) == self.origin and FOLLOW.match(parts.path):
                yield response.follow(url, callback=self.parse)


def main(argv: list[str]) -> None:
    start, out, settings_json = argv
    settings = json.loads(settings_json)
    settings["SCRAPEWARDEN_OUT"] = out
    # The actor's deadline, as wall-clock time: Scrapy's own start-up is over by now, so the
    # time left is measured here rather than when the actor started this process.
    # A second is kept for closing down, so the crawl ends before its deadline.
    stop_at = settings.pop("SCRAPEWARDEN_STOP_AT", None)
    if stop_at is not None:
        settings["CLOSESPIDER_TIMEOUT"] = max(0.5, float(stop_at) - time.time() - SHUTDOWN_S)
    settings.setdefault("DOWNLOADER_MIDDLEWARES", {})[RECORDER] = 990  # next to the downloader
    process = CrawlerProcess(settings)
    process.crawl(ProfileSpider, start=start)
    process.start()


if __name__ == "__main__":
    main(sys.argv[1:])
