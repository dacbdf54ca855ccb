"""The scenario suite's traffic mix: who comes to the site, built from one seeded generator.

Building the mix draws every address, browser and account from ``rng``, so two calls with
generators seeded alike give the same actors: that is how every regime sees the same traffic.
Program actors (Chromium, Scrapy, wget, httrack) join when ``config.programs`` is on and the
program is installed; a missing one is left out and named in the report by its absence.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .base import ActorResult, Target
from .good_bot import GoodBot
from .people import people_mix
from .scrapers import scrapers_mix

if TYPE_CHECKING:
    from ..scenarios import ScenarioConfig

ActorRun = Callable[[Target, float, random.Random], Awaitable["ActorResult | list[ActorResult]"]]


def traffic_mix(config: ScenarioConfig, rng: random.Random) -> list[tuple[str, ActorRun]]:
    actors: list[tuple[str, ActorRun]] = []
    people = people_mix(
        config.persons,
        rng,
        time_scale=config.time_scale,
        # People arrive over the first half of the run, not all in the first second.
        arrivals_over_s=config.duration / 2,
    )
    actors += [(person.name, person.run) for person in people]
    bot = GoodBot()
    actors.append((bot.name, bot.run))
    actors += [(scraper.name, scraper.run) for scraper in scrapers_mix(rng, time_scale=config.time_scale)]
    if config.programs:
        actors += _programs(config, rng)
    return actors


def _programs(config: ScenarioConfig, rng: random.Random) -> list[tuple[str, ActorRun]]:
    """Actors that are real programs, each only where it is installed."""
    from . import headless_scraper, scrapy_spider
    from .programs import browser_unavailable

    found: list[tuple[str, ActorRun]] = []
    if browser_unavailable() is None:
        from .browser_people import make_browser_people, run_browser_people

        count = config.browser_people
        seed = rng.getrandbits(32)

        async def browser_people(target: Target, deadline: float, r: random.Random) -> list[ActorResult]:
            people = make_browser_people(random.Random(seed), count, target, time_scale=config.time_scale)
            return await run_browser_people(people, target, deadline, rng=r)

        if count:
            found.append(("people in Chromium", browser_people))
        found.append(("scraper 8: headless Chromium", headless_scraper.run))
    if scrapy_spider.scrapy_unavailable() is None:
        found.append(("scraper 9: Scrapy spider", scrapy_spider.run))
    try:
        from . import mirror_tools
    except ImportError:
        return found
    found += [(name, run) for name, run in mirror_tools.available()]
    return found
