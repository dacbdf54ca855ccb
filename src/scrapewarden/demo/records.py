"""How the demo knows a personal record left the site intact.

Every place the demo site shows a person's personal data (profile page, JSON API, search
results, followers lists) carries that person's *record token* ``p<id>-<check>``, where
``check`` is a keyed hash of the id under the run's secret. A scoring client scans each response
body for tokens and keeps the ids whose check verifies: those records were received intact.
Decoys and refusal pages carry no valid token, so they count for nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re

TOKEN_RE = re.compile(r"\bp(\d{1,8})-([0-9a-f]{6})\b")


def demo_secret(seed: int) -> bytes:
    return hashlib.sha256(f"scrapewarden-demo-records-{seed}".encode()).digest()


def record_token(secret: bytes, person_id: int) -> str:
    check = hmac.new(secret, str(person_id).encode(), hashlib.sha256).hexdigest()[:6]
    return f"p{person_id}-{check}"


def records_in(body: str, secret: bytes) -> set[int]:
    """Ids of the people whose intact record appears in ``body``."""
    found = set()
    for match in TOKEN_RE.finditer(body):
        person_id = int(match.group(1))
        if record_token(secret, person_id) == match.group(0):
            found.add(person_id)
    return found
