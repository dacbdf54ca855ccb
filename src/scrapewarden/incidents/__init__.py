"""Incidents on top of the state store: opening, joining, handling, each step audited; and
beyond detection: whose records were exposed, letter drafts, evidence bundles.

The model (lifecycle, evidence, correlation) is pure and lives in
:mod:`scrapewarden.core.incidents`; :mod:`.book` is the one place that reads and writes it.
Later parts (people affected, breach assessment, drafts, export) build on :class:`.book.IncidentBook`.
"""

from .book import IncidentBook, new_incident_id

__all__ = ["IncidentBook", "new_incident_id"]
