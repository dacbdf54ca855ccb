"""WSGI entry point. Run from the repository root, for example:

gunicorn examples.django_app.wsgi:application
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")

from django.core.wsgi import get_wsgi_application  # after the settings module is named

from scrapewarden import ScrapeWardenWSGIMiddleware

POLICY = Path(__file__).parent.parent / "policy.toml"

application = ScrapeWardenWSGIMiddleware(get_wsgi_application(), policy=POLICY)
