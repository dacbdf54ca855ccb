"""No asset loading: page after page fetched without any of the CSS, scripts or images.

Browsers fetch a page's assets (or have them cached from an earlier visit); HTTP scraping
libraries fetch only the HTML. Weak alone — caches and text browsers exist — so the weight is low.
"""

from __future__ import annotations

from ..counters import ActorState
from ..decision import Evidence

MIN_PAGES = 10


def no_assets_evidence(actor: str, state: ActorState, weight: float) -> Evidence | None:
    if state.pages >= MIN_PAGES and state.assets == 0 and weight:
        return Evidence(
            "client.no_assets", weight, f"{actor}: {state.pages} pages and no assets loaded", actor
        )
    return None
