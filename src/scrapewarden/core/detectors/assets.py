"""No asset loading: page after page fetched without any of the CSS, scripts or images.

Browsers fetch a page's assets (or have them cached from an earlier visit); HTTP scraping
libraries fetch only the HTML. Weak alone — caches and text browsers exist — so the weight is low.
"""

from __future__ import annotations

from ..counters import ActorCounts
from ..decision import Evidence

MIN_PAGES = 10


def no_assets_evidence(actor: str, state: ActorCounts, weight: float) -> Evidence | None:
    return no_assets_from_counts(actor, state.pages, state.assets, weight)


def no_assets_from_counts(actor: str, pages: int, assets: int, weight: float) -> Evidence | None:
    if pages >= MIN_PAGES and assets == 0 and weight:
        return Evidence("client.no_assets", weight, f"{actor}: {pages} pages and no assets loaded", actor)
    return None


FLEET_MIN_PAGES = 30
FLEET_ASSET_SHARE = 20
"""A client build is asset-less when it fetched fewer than one asset per this many pages."""


def fleet_evidence(state: ActorCounts, weight: float) -> Evidence | None:
    """One fingerprint, many anonymous addresses, pages and (almost) no assets.

    Residential-proxy scrapers rotate the address every few requests but keep their software,
    so its fingerprint accumulates what no single address shows. A popular browser build shared
    by many people keeps loading assets (new visitors have empty caches), so it stays clear.
    """
    return fleet_from_counts(state.pages, state.assets, weight)


def fleet_from_counts(pages: int, assets: int, weight: float, actor: str = "fingerprint") -> Evidence | None:
    if pages >= FLEET_MIN_PAGES and assets * FLEET_ASSET_SHARE < pages and weight:
        return Evidence(
            "client.fleet_no_assets",
            weight,
            f"this client build fetched {pages} pages and {assets} assets across addresses",
            actor,
        )
    return None
