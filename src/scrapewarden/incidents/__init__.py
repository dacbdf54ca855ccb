"""Incidents beyond detection: whose records were exposed, letter drafts, evidence bundles."""
