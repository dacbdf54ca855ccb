"""ASGI entry point. Run from the repository root:

uvicorn examples.django_app.asgi:application
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")

from django.core.asgi import get_asgi_application  # after the settings module is named

from scrapewarden import ScrapeWardenMiddleware

POLICY = Path(__file__).parent.parent / "policy.toml"

application = ScrapeWardenMiddleware(get_asgi_application(), policy=POLICY)
